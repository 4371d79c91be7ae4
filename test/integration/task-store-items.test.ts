/**
 * The task repository parses what it reads (manager/tasks/store/parse.ts): a malformed task item
 * on dynalite is refused with an error naming the field, and it stops neither the dispatcher's
 * other tasks nor the listing of the others.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { contextFrom, createDispatcher } from '../../manager/tasks/dispatcher.js';
import { createTaskService } from '../../manager/tasks/service.js';
import { MalformedItemError } from '../../manager/tasks/store/parse.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { tableName } from '../../platform/store/schema.js';
import { startTestDynamo, type TestDynamo } from '../helpers/dynalite.js';
import { AK, SK } from '../helpers/manager-harness.js';

let db: TestDynamo;
before(async () => {
  db = await startTestDynamo();
});
after(async () => {
  await db.close();
});

test('a malformed task item is refused by name; the other tasks are dispatched and listed', async () => {
  const ctx = contextFrom({ client: db.client, tablePrefix: db.prefix, logger: silentLogger() });
  const service = createTaskService(ctx, { aksk: [[AK, SK]] });
  const good = await service.create({
    type: 'Agent_Task',
    target: { id_list: ['ghost-1'] },
    data: { task: { name: 'collector', data: '', data_type: 5000 } },
    user: 'op',
  });
  await service.run({ task_id: good.task_id, user: 'op' });
  // Another task's item as some other writer left it: `total` a string, in the dispatchers' index.
  const badId = '1700000000000000000abcdef';
  await DynamoDBDocumentClient.from(db.client).send(
    new PutCommand({
      TableName: tableName(db.prefix, 'tasks'),
      Item: {
        taskId: badId,
        taskType: 'Agent_Task',
        action: 'task',
        taskName: '',
        user: 'op',
        data: '{}',
        state: 'running',
        active: '1',
        listPk: 'task',
        total: 'many',
        released: 1,
        chunks: 1,
        concurrence: 1,
        maxAttempts: 1,
        timeoutS: 60,
        createdAt: 1,
        updatedAt: 1,
      },
    }),
  );
  await assert.rejects(
    service.get(badId),
    (err: unknown) =>
      err instanceof MalformedItemError &&
      /task 1700000000000000000abcdef: total is not a number/.test(err.message),
  );
  const listed = await service.list({ limit: 10 });
  assert.deepEqual(
    listed.items.map((t) => t.task_id),
    [good.task_id],
  );
  const dispatcher = createDispatcher({ ctx, aksk: [[AK, SK]], logger: silentLogger(), owner: 'd1' });
  const r = await dispatcher.tick();
  assert.equal(r.activeTasks, 1, 'the good task');
  assert.equal(r.chunks, 1, 'its chunk was claimed and passed');
  const [sub] = (await service.subtasks(good.task_id, { limit: 10 })).items;
  assert.equal(sub?.status, 'failed', 'the agent is offline: a retry is scheduled');
  assert.equal(sub?.attempts, 1);
});
