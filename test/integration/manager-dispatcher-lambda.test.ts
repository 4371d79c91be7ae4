/**
 * The dispatcher as a Lambda function (`manager/dispatcher-lambda.ts`), invoked with a real
 * EventBridge scheduled event (test/fixtures/eventbridge/) against dynalite: the store comes from
 * the environment, ticks run until no work remains, and none starts in the last 20 s of the
 * invocation's time (the reserve: one gateway call's timeout, 15 s, plus a margin; the function's
 * Terraform timeout leaves room for it, test/integration/infra-terraform.test.ts); a tick that
 * starts just before the reserve and meets a gateway that never answers still ends in time.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DeleteCommand, DynamoDBDocumentClient, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import {
  createDispatcherLambda,
  DEFAULT_RESERVE_MS,
  type DispatcherFactory,
  type DispatcherLambdaContext,
  dispatcherFromEnvironment,
  GATEWAY_CALL_TIMEOUT_MS,
  type ScheduledEvent,
  TICK_MARGIN_MS,
} from '../../manager/dispatcher-lambda.js';
import { contextFrom, gatewayCallTimeoutMs } from '../../manager/tasks/dispatcher.js';
import { GATEWAY_CALL_TIMEOUT_MS as CLIENT_DEFAULT_TIMEOUT_MS } from '../../manager/tasks/gateway-client.js';
import { createTaskService } from '../../manager/tasks/service.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { tableName } from '../../platform/store/schema.js';
import { runCtrlTask } from '../helpers/dispatcher-failure-log.js';
import { startTestDynamo, type TestDynamo } from '../helpers/dynalite.js';
import { AK, SK } from '../helpers/manager-harness.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'eventbridge');
const scheduled = JSON.parse(
  readFileSync(path.join(fixtures, 'scheduled-event.json'), 'utf8'),
) as ScheduledEvent;

let db: TestDynamo;
before(async () => {
  db = await startTestDynamo();
});
after(async () => {
  await db.close();
});

/** Lambda's context with a clock: `remaining` falls as real time passes. */
function contextWith(budgetMs: number): DispatcherLambdaContext {
  const end = Date.now() + budgetMs;
  return { getRemainingTimeInMillis: () => end - Date.now(), awsRequestId: 'req-1' };
}

/**
 * A stand-in for the engine's dispatcher doing real DynamoDB work: each tick takes one work item
 * (an item of the configs table in scope `work`) and deletes it; no item = no work.
 */
const queueDispatcher: DispatcherFactory = ({ client, tablePrefix, aksk }) => {
  assert.deepEqual(aksk, [[AK, SK]], 'the AK/SK of the environment reach the dispatcher');
  const doc = DynamoDBDocumentClient.from(client);
  const table = tableName(tablePrefix, 'configs');
  return {
    async tick() {
      const page = await doc.send(new ScanCommand({ TableName: table, Limit: 100 }));
      const item = page.Items?.find((i) => i.scope === 'work');
      if (!item) return { didWork: false };
      await doc.send(new DeleteCommand({ TableName: table, Key: { scope: item.scope, name: item.name } }));
      return { didWork: true };
    },
  };
};

async function putWork(n: number): Promise<void> {
  const doc = DynamoDBDocumentClient.from(db.client);
  for (let i = 0; i < n; i++) {
    await doc.send(
      new PutCommand({
        TableName: tableName(db.prefix, 'configs'),
        Item: { scope: 'work', name: `item-${i}` },
      }),
    );
  }
}

async function remainingWork(): Promise<number> {
  const doc = DynamoDBDocumentClient.from(db.client);
  const page = await doc.send(new ScanCommand({ TableName: tableName(db.prefix, 'configs') }));
  return (page.Items ?? []).filter((i) => i.scope === 'work').length;
}

const env = (): NodeJS.ProcessEnv => ({
  FLEETGATE_DYNAMODB_ENDPOINT: db.dynamo.endpoint,
  FLEETGATE_TABLE_PREFIX: db.prefix,
  FLEETGATE_AKSK: `${AK}:${SK}`,
  FLEETGATE_LOG_LEVEL: 'silent',
});

test('a scheduled event runs ticks against the store until no work remains', async () => {
  await putWork(7);
  const handler = await dispatcherFromEnvironment(env(), queueDispatcher);
  const r = await handler(scheduled, contextWith(60_000));
  assert.equal(r.stopped, 'idle');
  assert.equal(r.busyTicks, 7);
  assert.equal(r.ticks, 8, 'seven busy ticks and the idle one that ends the run');
  assert.equal(await remainingWork(), 0);
  // The next scheduled run finds nothing and returns after one tick.
  const again = await handler(scheduled, contextWith(60_000));
  assert.deepEqual([again.ticks, again.busyTicks, again.stopped], [1, 0, 'idle']);
});

test("the reserve covers one gateway call's timeout plus a margin", () => {
  // One constant (tasks/gateway-client.ts) is the client's default and the reserve's base.
  assert.equal(GATEWAY_CALL_TIMEOUT_MS, CLIENT_DEFAULT_TIMEOUT_MS, 'the default the reserve is built on');

  // The engine's dispatcher never waits longer than that for a gateway, however long its lease,
  // and ends its call well inside a shorter lease (3 s before it, at least 1 s).
  assert.equal(gatewayCallTimeoutMs(600_000), GATEWAY_CALL_TIMEOUT_MS);
  assert.equal(gatewayCallTimeoutMs(10_000), 7_000);
  assert.equal(gatewayCallTimeoutMs(2_000), 1_000);
  assert.ok(TICK_MARGIN_MS >= 1000);
  assert.equal(DEFAULT_RESERVE_MS, GATEWAY_CALL_TIMEOUT_MS + TICK_MARGIN_MS);
  assert.equal(DEFAULT_RESERVE_MS, 20_000);
});

/**
 * A gateway control API that takes the command batch and never answers: resolves, per request,
 * when the caller gives up (closes the connection).
 */
async function startSilentGateway(): Promise<{
  addr: string;
  hungUp: Promise<void>;
  close(): Promise<void>;
}> {
  let hangUp!: () => void;
  const hungUp = new Promise<void>((resolve) => {
    hangUp = resolve;
  });
  const server = http.createServer((req) => {
    req.resume();
    req.socket.on('close', () => hangUp());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    addr: `127.0.0.1:${port}`,
    hungUp,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

test('a tick started just before the reserve ends inside the invocation, even when its gateway never answers', async (t) => {
  // The engine's dispatcher as the exported handler builds it, with the reserve's budget: one
  // tick can start; its gateway call hangs. The run must return before the invocation's end
  // (Lambda would kill it there, leaving the chunk's lease to expire), so the engine's call
  // timeout must fit in the reserve.
  const gateway = await startSilentGateway();
  t.after(() => gateway.close());
  const agentId = 'silent-gateway-agent';
  const { service, taskId } = await runCtrlTask(db, agentId, gateway.addr);
  const handler = await dispatcherFromEnvironment(env());
  const context = contextWith(DEFAULT_RESERVE_MS + 200);
  const run = await handler(scheduled, context);
  await gateway.hungUp; // the call reached the gateway and was given up
  const left = context.getRemainingTimeInMillis();
  assert.ok(left > 0, `the run returned ${-left} ms after its invocation's end: ${JSON.stringify(run)}`);
  assert.equal(run.stopped, 'deadline', JSON.stringify(run));
  assert.ok(run.ticks >= 1, 'a tick started before the reserve');
  // The hung call ended as a failure, written before the run returned.
  const subs = await service.subtasks(taskId, { limit: 10 });
  assert.deepEqual(
    subs.items.map((s) => [s.agent_id, s.status]),
    [[agentId, 'result_failed']],
  );
});

test('no tick starts within the reserve (the last 20 s) of the invocation', async () => {
  let ticks = 0;
  const handler = createDispatcherLambda({
    logger: silentLogger(),
    dispatcher: {
      async tick() {
        ticks++;
        await new Promise((r) => setTimeout(r, 50));
        return { didWork: true };
      },
    },
  });
  // 400 ms of ticks before the reserve (the budget falls with real time).
  const budget = DEFAULT_RESERVE_MS + 400;
  const started = Date.now();
  const context = contextWith(budget);
  const r = await handler(scheduled, context);
  assert.equal(r.stopped, 'deadline');
  assert.ok(ticks >= 1, 'ticks ran while there was time');
  assert.equal(r.ticks, ticks);
  const left = context.getRemainingTimeInMillis();
  assert.ok(left > DEFAULT_RESERVE_MS - 100, `stopped with about the reserve left (${left} ms)`);
  assert.ok(
    left > GATEWAY_CALL_TIMEOUT_MS,
    'a tick that started last still has a whole gateway call before the end',
  );
  assert.ok(Date.now() - started < 1_000, 'stopped at the reserve, not at the end of the invocation');
  // Active tasks with nothing due: the run keeps looking until the deadline, not a busy loop.
  let looks = 0;
  const waiting = createDispatcherLambda({
    logger: silentLogger(),
    idlePauseMs: 100,
    dispatcher: {
      async tick() {
        looks++;
        return { didWork: false, activeTasks: 1 };
      },
    },
  });
  const w = await waiting(scheduled, contextWith(DEFAULT_RESERVE_MS + 550));
  assert.equal(w.stopped, 'deadline');
  assert.ok(
    looks >= 1 && looks <= 10,
    `looked ${looks} times in ~550 ms at 100 ms pauses, not in a busy loop`,
  );
  // Already inside the reserve (the old 5 s reserve would still tick here): no tick at all.
  const late = await handler(scheduled, contextWith(DEFAULT_RESERVE_MS - 1_000));
  assert.deepEqual([late.ticks, late.stopped], [0, 'deadline']);
  const withinCall = await handler(scheduled, contextWith(GATEWAY_CALL_TIMEOUT_MS + 1_000));
  assert.deepEqual([withinCall.ticks, withinCall.stopped], [0, 'deadline']);
  // An explicit reserve still wins.
  const short = createDispatcherLambda({
    logger: silentLogger(),
    reserveMs: 100,
    maxTicks: 1,
    dispatcher: { tick: async () => ({ didWork: true }) },
  });
  assert.deepEqual(
    [(await short(scheduled, contextWith(1_000))).ticks, (await short(scheduled, contextWith(50))).ticks],
    [1, 0],
  );
});

test('a broken environment or engine fails the cold start', async () => {
  const failing: DispatcherFactory = () => {
    throw new Error('engine unavailable');
  };
  await assert.rejects(dispatcherFromEnvironment(env(), failing), /engine unavailable/);
  await assert.rejects(
    dispatcherFromEnvironment({ ...env(), FLEETGATE_DYNAMODB_ENDPOINT: 'dynalite:4567' }, queueDispatcher),
    /FLEETGATE_DYNAMODB_ENDPOINT/,
  );
});

test('the exported handler drives the real engine from the environment', async () => {
  Object.assign(process.env, env());
  const { handler } = await import('../../manager/dispatcher-lambda.js');
  const ctx = contextFrom({ client: db.client, tablePrefix: db.prefix, logger: silentLogger() });
  const service = createTaskService(ctx, { aksk: [[AK, SK]] });
  // An agent no gateway holds, one attempt: the dispatcher's pass makes it result_failed.
  const created = await service.create({
    type: 'Agent_Ctrl',
    target: { id_list: ['lambda-offline-agent'] },
    data: { agent_ctrl: 1060 },
    max_attempts: 1,
    user: 'test',
  });
  await service.run({ task_id: created.task_id, user: 'test' });
  const r = await handler(scheduled, contextWith(60_000));
  assert.equal(r.stopped, 'idle');
  assert.ok(r.busyTicks >= 1, JSON.stringify(r));
  const subs = await service.subtasks(created.task_id, { limit: 10 });
  assert.deepEqual(
    subs.items.map((s) => [s.agent_id, s.status]),
    [['lambda-offline-agent', 'result_failed']],
  );
  assert.equal((await service.get(created.task_id))?.task_status, 'finished');
});
