/**
 * Retention of tasks (docs/tasks.md, "Retention") through the real engine, gateways and agents on
 * dynalite: an ended task (finished, or cancelled) gets its expiry, its subtasks and chunks get
 * the same one; past it the task is gone from get, list, subtasks and results although its items
 * are still stored (DynamoDB deletes lazily, dynalite never), while a task still running never
 * expires, however old.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { ConfigItem } from '../../manager/tasks/types.js';
import { tableName } from '../../platform/store/schema.js';
import { startTaskCluster } from '../helpers/task-cluster.js';

const DAY_MS = 86_400_000;

async function until(ok: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const plugin: ConfigItem = {
  name: 'collector',
  type: 'tar.gz',
  version: '1.0.0',
  sha256: 'a'.repeat(64),
  download_url: ['https://dl.example/collector.tar.gz'],
};

test('an ended task is gone after its retention; a running one never expires', async (t) => {
  let offsetMs = 0;
  const c = await startTaskCluster(t, { gateways: 1, now: () => Date.now() + offsetMs });
  c.ctx.retentionS = 86_400;
  const doc = DynamoDBDocumentClient.from(c.db.client);
  const table = (key: 'tasks' | 'subtasks' | 'chunks') => tableName(c.db.prefix, key);
  const rawTask = async (taskId: string) =>
    (await doc.send(new GetCommand({ TableName: table('tasks'), Key: { taskId }, ConsistentRead: true })))
      .Item;
  const rawItems = async (key: 'subtasks' | 'chunks', taskId: string) =>
    (
      await doc.send(
        new QueryCommand({
          TableName: table(key),
          KeyConditionExpression: 'taskId = :t',
          ExpressionAttributeValues: { ':t': taskId },
          ConsistentRead: true,
        }),
      )
    ).Items ?? [];
  const ids = await c.addAgents('rt', 2, 0);
  c.dispatcher().start();

  // Ended: a config task (a delivery is its success) finishes; another task is cancelled.
  const done = await c.service.create({
    type: 'Agent_Config',
    target: { id_list: ids },
    data: { config: [plugin] },
    user: 'op',
  });
  await c.service.run({ task_id: done.task_id, user: 'op' });
  await until(
    async () => (await c.service.get(done.task_id))?.task_status === 'finished',
    30_000,
    'finished',
  );
  const cancelled = await c.service.create({
    type: 'Agent_Config',
    target: { id_list: ids },
    data: { config: [plugin] },
    user: 'op',
  });
  await c.service.cancel(cancelled.task_id, 'op');
  // Running: a plugin task whose agents answer with a record that is not a status type, so each
  // subtask waits for its result (up to 7 days).
  const running = await c.service.create({
    type: 'Agent_Task',
    target: { id_list: ids },
    data: { task: { name: 'collector', data: '', data_type: 5000 } },
    subtask_running_timeout: 7 * 86_400,
    user: 'op',
  });
  await c.service.run({ task_id: running.task_id, user: 'op' });
  await c.waitSubtasks(running.task_id, (s) => s.every((x) => x === 'succeed'), 30_000);
  const doneTokens = (await c.service.subtasks(done.task_id, { limit: 10 })).items.map((s) => s.token);
  const runningTokens = (await c.service.subtasks(running.task_id, { limit: 10 })).items.map((s) => s.token);

  // Each ended task carries its expiry, and so do all its subtasks and chunks once stamped.
  for (const { task_id } of [done, cancelled]) {
    await until(async () => (await rawTask(task_id))?.active === undefined, 30_000, `${task_id} stamped`);
    const expiresAt = (await rawTask(task_id))?.expiresAt as number;
    assert.ok(Math.abs(expiresAt - (Date.now() / 1000 + 86_400)) < 120, 'ended now + 1 day');
    const items = [...(await rawItems('subtasks', task_id)), ...(await rawItems('chunks', task_id))];
    assert.equal(items.length, 2 + 2, 'two subtasks, a chunk head and its members');
    for (const item of items) assert.equal(item.expiresAt, expiresAt, `${item.agentId ?? item.chunkId}`);
  }
  // Nothing of the running task expires.
  assert.equal((await rawTask(running.task_id))?.active, '1');
  assert.equal((await rawTask(running.task_id))?.expiresAt, undefined);
  for (const key of ['subtasks', 'chunks'] as const) {
    for (const item of await rawItems(key, running.task_id)) assert.equal(item.expiresAt, undefined);
  }
  assert.ok(await c.service.get(done.task_id), 'within its retention a finished task is shown');

  // Two days later.
  offsetMs = 2 * DAY_MS;
  for (const { task_id } of [done, cancelled]) {
    assert.equal(await c.service.get(task_id), undefined, 'get');
    assert.deepEqual((await c.service.subtasks(task_id, { limit: 10 })).items, [], 'subtasks');
    assert.ok(await rawTask(task_id), 'still stored: DynamoDB deletes expired items lazily');
  }
  const listed = (await c.service.list({ limit: 100 })).items.map((v) => v.task_id);
  assert.deepEqual(listed, [running.task_id], 'list');
  const late = await c.service.applyResults(
    doneTokens.map((token) => ({ token, data_type: '2001', status: 'succeed', msg: 'late' })),
  );
  assert.equal(late.applied, 0, 'a result for an expired subtask is not written');
  // The running task: shown, and its results still apply.
  assert.equal((await c.service.get(running.task_id))?.task_status, 'running');
  assert.equal((await c.service.subtasks(running.task_id, { limit: 10 })).items.length, 2);
  const fresh = await c.service.applyResults(
    runningTokens.map((token) => ({ token, data_type: '2001', status: 'succeed', msg: 'ok' })),
  );
  assert.equal(fresh.applied, 2);
});
