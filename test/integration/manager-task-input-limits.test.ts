/**
 * Bad input to the task routes over the real engine and dynalite is the client's error, never a
 * 500: a forged listing cursor (the engine passes any JSON object on to DynamoDB as
 * ExclusiveStartKey) is 400; an `id_list` too large for the task item (DynamoDB's 400 KB item
 * limit; the engine wrote the subtasks first, then failed on the task) is code 15 before anything
 * is written, while the largest allowed list makes a task.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_ID_LIST_BYTES } from '../../manager/routes/tasks.js';
import { startTestManager } from '../helpers/manager-harness.js';

const TASK = { task: { name: 'collector', data: '{}', data_type: 5100 } };
const uuids = (n: number, p: string) =>
  Array.from({ length: n }, (_, i) => `${p}0000000-0000-4000-8000-${String(i).padStart(12, '0')}`);

test('task routes: forged cursors are 400, oversized id_lists code 15 with nothing written', async (t) => {
  const m = await startTestManager(t);
  const op = await m.user('op', 'operator');

  // `e30` is base64url of `{}`, `eyJhIjoxfQ` of `{"a":1}`: objects, but no key of the table.
  for (const cursor of ['e30', 'eyJhIjoxfQ']) {
    const list = await m.call('GET', `/api/fleet/tasks?cursor=${cursor}`, { token: op });
    assert.equal(list.status, 400, list.text);
    assert.equal(list.json.error, 'invalid_parameter');
    const subs = await m.call('GET', `/api/fleet/tasks/1700000000000000000abcdef/subtasks?cursor=${cursor}`, {
      token: op,
    });
    assert.equal(subs.status, 400, subs.text);
  }

  // 36-character IDs: 12,000 take ~434 KiB (over DynamoDB's item limit: a 500 and orphaned subtasks
  // without the check), 7,000 ~253 KiB (a task).
  const big = uuids(12_000, 'b');
  const refused = await m.call('POST', '/api/v1/agent/createTask/task', {
    token: op,
    body: { id_list: big, confirm_fanout: big.length, data: TASK },
  });
  assert.equal(refused.status, 200);
  assert.equal(refused.json.code, 15, refused.text);
  assert.match(String(refused.json.data), /tag or a filter/);
  const fleet = await m.call('POST', '/api/fleet/tasks', {
    token: op,
    body: { action: 'task', id_list: big, confirm_fanout: big.length, data: TASK },
  });
  assert.equal(fleet.status, 400, fleet.text);
  assert.equal((await m.call('GET', '/api/fleet/tasks', { token: op })).json.items.length, 0);

  const fits = uuids(7000, 'a');
  assert.ok(fits.reduce((n, id) => n + id.length + 1, 0) <= MAX_ID_LIST_BYTES);
  const made = await m.call('POST', '/api/v1/agent/createTask/task', {
    token: op,
    body: { id_list: fits, confirm_fanout: fits.length, data: TASK },
  });
  assert.equal(made.json.code, 0, made.text);
  assert.equal(made.json.data.count, 7000);
  const listed = await m.call('GET', '/api/fleet/tasks', { token: op });
  assert.deepEqual(
    listed.json.items.map((x: { task_id: string }) => x.task_id),
    [made.json.data.task_id],
  );
});
