/**
 * A real `fleetgate gateway` process with its store (AWS_REGION, as on ECS) through a recording proxy in front of dynalite, taken through what a gateway does
 * with DynamoDB: agents connect (status items), get the stored config at their first heartbeat,
 * return a task result (applied by the gateway's own result sink), get a tag, are shed by a
 * desired limit and disconnect; then the gateway stops (SIGTERM). Returns every DynamoDB call
 * the process made, as seen on the wire.
 */
import type { TestContext } from 'node:test';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { SCENARIOS } from '../../loadtest/sim/scenario.js';
import { newStats, SimAgent } from '../../loadtest/sim/sim-agent.js';
import { createConfigStore } from '../../manager/configs.js';
import { createManagerStore } from '../../manager/store.js';
import { createTagStore } from '../../manager/tags.js';
import { contextFrom, createDispatcher } from '../../manager/tasks/dispatcher.js';
import { createTaskService } from '../../manager/tasks/service.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { FLEET_SCOPE } from '../../platform/store/fleet-items.js';
import { tableName } from '../../platform/store/schema.js';
import { startTestDynamo } from './dynalite.js';
import { type DynamoCall, startDynamoRecorder } from './dynamo-recorder.js';
import { startFleetgateProcess, waitFor } from './gateway.js';
import { AK, SK } from './manager-harness.js';
import { FAST_DISPATCH } from './task-cluster.js';

/** Polls an async condition every 100 ms until it holds or `ms` pass. */
async function poll(fn: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stores a default config of one plugin, `collector`, which agents get at their first heartbeat. */
export async function storeDefaultCollector(db: { client: DynamoDBClient; prefix: string }): Promise<void> {
  await createConfigStore({ client: db.client, tablePrefix: db.prefix }).replace(
    'default',
    [
      {
        name: 'collector',
        type: 'go',
        signature: 'sig',
        version: '1.0.0.1',
        sha256: 'a'.repeat(64),
        download_url: ['http://example.invalid/collector'],
        detail: '',
      },
    ],
    'test',
  );
}

/**
 * Runs an Agent_Task (plugin `collector`, task `data`) for one agent through a dispatcher in this
 * process, as the Lambda's would, until the agent's result lands in its subtask; returns it.
 */
export async function runAgentTaskToResult(
  t: TestContext,
  db: { client: DynamoDBClient; prefix: string },
  agentId: string,
  data: string,
): Promise<Record<string, string>> {
  const ctx = contextFrom({ client: db.client, tablePrefix: db.prefix, logger: silentLogger() });
  const service = createTaskService(ctx, { aksk: [[AK, SK]] });
  const dispatcher = createDispatcher({ ...FAST_DISPATCH, ctx, aksk: [[AK, SK]], logger: silentLogger() });
  dispatcher.start();
  t.after(() => dispatcher.stop());
  const created = await service.create({
    type: 'Agent_Task',
    target: { id_list: [agentId] },
    data: { task: { name: 'collector', data, data_type: 5000 } },
    user: 'test',
  });
  await service.run({ task_id: created.task_id, user: 'test' });
  let result: Record<string, string> | undefined;
  await poll(
    async () => {
      result = (await service.subtasks(created.task_id, { limit: 10 })).items[0]?.task_result ?? undefined;
      return Boolean(result);
    },
    20_000,
    'the result record reached the subtask',
  );
  await dispatcher.stop();
  return result!;
}

/** Writes a gateway's desired connection limit, as the manager's load control does. */
export async function putDesiredLimit(
  doc: DynamoDBDocumentClient,
  prefix: string,
  gatewayId: string,
  limit: number,
): Promise<void> {
  await doc.send(
    new PutCommand({
      TableName: tableName(prefix, 'configs'),
      Item: { scope: FLEET_SCOPE.limit, name: gatewayId, limit, updatedAtMs: Date.now(), updatedBy: 'test' },
    }),
  );
}

export async function gatewayStoreCycle(t: TestContext): Promise<{ calls: DynamoCall[]; prefix: string }> {
  const db = await startTestDynamo();
  t.after(() => db.close());
  const wire = await startDynamoRecorder(db.dynamo.endpoint);
  t.after(() => wire.close());
  const doc = DynamoDBDocumentClient.from(db.client);
  await storeDefaultCollector(db);
  const gw = await startFleetgateProcess(
    t,
    'gateway',
    {
      FLEETGATE_ADVERTISE_HOST: '127.0.0.1',
      FLEETGATE_WORKERS: '0',
      // As on ECS: AWS's DynamoDB by region (no FLEETGATE_DYNAMODB_ENDPOINT, so no table
      // management), its address redirected by the SDK's own endpoint variable.
      AWS_REGION: 'eu-west-1',
      AWS_ENDPOINT_URL_DYNAMODB: wire.endpoint,
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      FLEETGATE_TABLE_PREFIX: db.prefix,
      FLEETGATE_SHED_RATE: '2',
      FLEETGATE_AKSK: `${AK}:${SK}`,
      // The tag watch's reads are among what it sends: every half second instead of every 20 s,
      // the same calls on the same tables, seen without waiting out the default period.
      FLEETGATE_TAG_REFRESH_MS: '500',
    },
    { readyMs: 30_000 },
  );
  const gatewayId = `127.0.0.1:${gw.port}`;
  const stats = newStats();
  const scenario = { ...SCENARIOS.steady!, eventsPerAgentPerS: 0, reconnectDelayMs: 60_000 };
  const agents = [0, 1, 2].map(
    (i) =>
      new SimAgent(`iam-gw-agent-${i}`, i, {
        tls: gw.tls,
        gateway: { host: '127.0.0.1', port: gw.port },
        scenario,
        stats,
      }),
  );
  t.after(() => {
    for (const a of agents) a.stop();
  });
  for (const a of agents) a.start();
  await waitFor(() => stats.configsApplied === 3, 15_000, 'configs pushed to the three agents');
  const item = async (id: string) =>
    (await doc.send(new GetCommand({ TableName: tableName(db.prefix, 'agents'), Key: { agentId: id } })))
      .Item;
  await poll(async () => (await item('iam-gw-agent-0'))?.gateway === gatewayId, 15_000, 'agent status');
  // A tag given to a connected agent: the gateway's tag watch reads the tag's members.
  await createTagStore(createManagerStore(db.client, db.prefix)).add('iam-tag', ['iam-gw-agent-0'], 'test');
  const tagsTable = tableName(db.prefix, 'tags');
  const membersRead = () => wire.calls.some((c) => c.tables.includes(tagsTable) && c.index === undefined);

  // A task from a dispatcher elsewhere; the result comes back through the gateway's result sink.
  // Answered with a status record (5100): the subtask is decided and its chunk marked dirty.
  await runAgentTaskToResult(t, db, 'iam-gw-agent-0', '{"result_data_type":5100}');

  // A desired limit of 1 sheds two agents; then every agent leaves.
  await putDesiredLimit(doc, db.prefix, gatewayId, 1);
  await waitFor(() => stats.connected === 1, 15_000, 'two agents shed');
  for (const a of agents) a.stop();
  await poll(
    async () =>
      (await Promise.all([0, 1, 2].map((i) => item(`iam-gw-agent-${i}`)))).every((x) => x?.online === false),
    20_000,
    'the disconnects written',
  );
  await poll(async () => membersRead(), 30_000, "the tag's members read (tag watch: every 500 ms here)");
  // SIGTERM: the gateway drains and withdraws its aggregate.
  const exited = new Promise<void>((resolve) => gw.child.once('exit', () => resolve()));
  gw.child.kill('SIGTERM');
  await exited;
  return { calls: [...wire.calls], prefix: db.prefix };
}
