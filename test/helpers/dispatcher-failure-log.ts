/**
 * What the task dispatcher logs, as JSON lines, in two runs against dynalite, built as the
 * dispatcher Lambda builds it (manager/dispatcher-lambda.ts: `createDispatcher` over a client and
 * prefix): `failure`, a task whose agent's gateway refuses the connection (the command batch
 * fails); `routine`, a task whose agent no gateway holds (an expected outcome, no failure).
 * Alarms on the dispatcher's log group are checked against these lines.
 */
import net from 'node:net';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { contextFrom, createDispatcher } from '../../manager/tasks/dispatcher.js';
import { createTaskService } from '../../manager/tasks/service.js';
import type { TaskService } from '../../manager/tasks/types.js';
import { createLogger, silentLogger } from '../../platform/obs/logger.js';
import { tableName } from '../../platform/store/schema.js';
import { startTestDynamo, type TestDynamo } from './dynalite.js';
import { AK, SK } from './manager-harness.js';

type Line = Record<string, unknown>;

/** A port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * An Agent_Ctrl task (one attempt) for one agent, run: with `controlAddr` the agent is online on
 * the gateway whose control API listens there, else no gateway holds it.
 */
export async function runCtrlTask(
  db: TestDynamo,
  agentId: string,
  controlAddr: string | undefined,
): Promise<{ service: TaskService; taskId: string }> {
  if (controlAddr) {
    await DynamoDBDocumentClient.from(db.client).send(
      new PutCommand({
        TableName: tableName(db.prefix, 'agents'),
        Item: { agentId, online: true, controlAddr, gateway: controlAddr },
      }),
    );
  }
  const ctx = contextFrom({ client: db.client, tablePrefix: db.prefix, logger: silentLogger() });
  const service = createTaskService(ctx, { aksk: [[AK, SK]] });
  const created = await service.create({
    type: 'Agent_Ctrl',
    target: { id_list: [agentId] },
    data: { agent_ctrl: 1060 },
    max_attempts: 1,
    user: 'test',
  });
  await service.run({ task_id: created.task_id, user: 'test' });
  return { service, taskId: created.task_id };
}

async function runOnce(db: TestDynamo, agentId: string, controlAddr: string | undefined): Promise<Line[]> {
  const { service, taskId } = await runCtrlTask(db, agentId, controlAddr);
  const lines: Line[] = [];
  const logger = createLogger('info', {
    write: (s: string) => {
      for (const l of s.split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Line);
    },
  });
  const dispatcher = createDispatcher({
    client: db.client,
    tablePrefix: db.prefix,
    aksk: [[AK, SK]],
    logger,
  });
  for (let i = 0; i < 20 && (await service.get(taskId))?.task_status !== 'finished'; i++) {
    await dispatcher.tick();
  }
  await dispatcher.stop();
  return lines;
}

export async function dispatcherFailureLog(): Promise<{ failure: Line[]; routine: Line[] }> {
  const db = await startTestDynamo();
  try {
    const failure = await runOnce(db, 'unreachable-gateway-agent', `127.0.0.1:${await closedPort()}`);
    const routine = await runOnce(db, 'offline-agent', undefined);
    return { failure, routine };
  } finally {
    await db.close();
  }
}
