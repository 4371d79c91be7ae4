/**
 * Results by token (Elkeid §4.5 step 5, `PushSubTask`), posted by gateways to updateSubTask:
 *
 *   no token                        → ignored
 *   token unknown (Query byToken)   → unknown (counted; a replay after the task's subtasks are gone, or a forgery)
 *   data_type in statusTypes        → UpdateItem IF state NOT IN (result_succeed, result_failed):
 *     (Elkeid: 5100, 8010, 6000)      result_succeed if status == "succeed" else result_failed,
 *                                     msg, task_result; then ADD dirty on the chunk head so a
 *                                     dispatcher recounts it (and finishes the task when all final)
 *   other data types                → only task_result is stored (state unchanged)
 *
 * Idempotent: a replayed item finds the subtask final and changes nothing (the conditional write
 * fails, counted as `ignored`); a replayed non-status item rewrites the same task_result.
 * byToken is eventually consistent on DynamoDB (dynalite is not): a result is only `unknown`
 * through lag if it arrives before its subtask is visible in the index, but subtasks are written
 * at creation, before the task can run, so the lag would have to exceed create → run → delivery.
 */
import { QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { isConditionFailed, mapLimit } from '../store.js';
import type { TaskContext } from './context.js';
import { TOKEN_PATTERN } from './ids.js';
import { headId } from './model.js';
import type { ResultItem } from './types.js';

/** Elkeid's data types whose `status` decides the subtask (docs/elkeid-protocol.md §4.5 step 5). */
export const ELKEID_STATUS_TYPES: readonly string[] = ['5100', '8010', '6000'];

const MAX_FIELDS = 64;
const MAX_FIELD = 4096;

function boundedResult(item: ResultItem): Record<string, string> {
  const out: Record<string, string> = {};
  let n = 0;
  for (const [k, v] of Object.entries(item)) {
    if (n++ >= MAX_FIELDS) break;
    if (typeof v !== 'string' || k.length > 128) continue;
    out[k] = v.length > MAX_FIELD ? v.slice(0, MAX_FIELD) : v;
  }
  return out;
}

export interface ApplyOptions {
  statusTypes: ReadonlySet<string>;
}

export async function applyResults(
  ctx: TaskContext,
  items: readonly ResultItem[],
  o: ApplyOptions,
): Promise<{ applied: number; unknown: number; ignored: number }> {
  let applied = 0;
  let unknown = 0;
  let ignored = 0;
  await mapLimit(items, 16, async (item) => {
    const token = typeof item?.token === 'string' ? item.token : '';
    if (!TOKEN_PATTERN.test(token)) {
      ignored++;
      return;
    }
    const q = await ctx.store.doc.send(
      new QueryCommand({
        TableName: ctx.tables.subtasks,
        IndexName: 'byToken',
        KeyConditionExpression: '#k = :k',
        ExpressionAttributeNames: { '#k': 'token' },
        ExpressionAttributeValues: { ':k': token },
      }),
    );
    const key = q.Items?.[0];
    if (!key) {
      unknown++;
      return;
    }
    const result = boundedResult(item);
    const Key = { taskId: key.taskId, agentId: key.agentId };
    const dataType = String(item.data_type ?? '');
    try {
      if (o.statusTypes.has(dataType)) {
        const state = item.status === 'succeed' ? 'result_succeed' : 'result_failed';
        const r = await ctx.store.doc.send(
          new UpdateCommand({
            TableName: ctx.tables.subtasks,
            Key,
            UpdateExpression: 'SET #s = :s, #m = :m, #r = :r, #u = :u',
            // Only plugin tasks take results: config/ctrl commands carry no token to the agent, so a
            // result for one of those is forged (and their state lives in the chunk head).
            ConditionExpression: 'attribute_exists(#t) AND #k = :k AND #tt = :at AND NOT (#s IN (:rs, :rf))',
            ExpressionAttributeNames: {
              '#s': 'state',
              '#m': 'msg',
              '#r': 'result',
              '#u': 'updatedAt',
              '#t': 'taskId',
              '#k': 'token',
              '#tt': 'taskType',
            },
            ExpressionAttributeValues: {
              ':at': 'Agent_Task',
              ':s': state,
              ':m': typeof item.msg === 'string' ? item.msg.slice(0, MAX_FIELD) : '',
              ':r': result,
              ':u': ctx.now(),
              ':k': token,
              ':rs': 'result_succeed',
              ':rf': 'result_failed',
            },
            ReturnValues: 'ALL_NEW',
          }),
        );
        const chunk = Number(r.Attributes?.chunk ?? 0);
        await ctx.store.doc.send(
          new UpdateCommand({
            TableName: ctx.tables.chunks,
            Key: { taskId: key.taskId, chunkId: headId(chunk) },
            UpdateExpression: 'ADD #d :one',
            ConditionExpression: 'attribute_exists(#t)',
            ExpressionAttributeNames: { '#d': 'dirty', '#t': 'taskId' },
            ExpressionAttributeValues: { ':one': 1 },
          }),
        );
      } else {
        await ctx.store.doc.send(
          new UpdateCommand({
            TableName: ctx.tables.subtasks,
            Key,
            UpdateExpression: 'SET #r = :r',
            ConditionExpression: 'attribute_exists(#t) AND #k = :k',
            ExpressionAttributeNames: { '#r': 'result', '#t': 'taskId', '#k': 'token' },
            ExpressionAttributeValues: { ':r': result, ':k': token },
          }),
        );
      }
      applied++;
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      ignored++;
    }
  });
  ctx.metrics.results.inc({ outcome: 'applied' }, applied);
  ctx.metrics.results.inc({ outcome: 'unknown' }, unknown);
  ctx.metrics.results.inc({ outcome: 'ignored' }, ignored);
  if (unknown > 0) ctx.logger.warn({ unknown }, 'task results with unknown tokens');
  return { applied, unknown, ignored };
}
