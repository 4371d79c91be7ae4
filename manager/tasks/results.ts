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
import { mapLimit } from '../store.js';
import type { TaskContext } from './context.js';
import { TOKEN_PATTERN } from './ids.js';
import { markChunkDirty } from './store/chunk-store.js';
import { applyStatusResult, findSubtaskByToken, storeResultFields } from './store/subtask-store.js';
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

type Applied = 'applied' | 'unknown' | 'ignored';

/** One result item: applied to its subtask, unknown (no subtask has the token), or ignored. */
async function applyOne(ctx: TaskContext, item: ResultItem, o: ApplyOptions): Promise<Applied> {
  const token = typeof item?.token === 'string' ? item.token : '';
  if (!TOKEN_PATTERN.test(token)) return 'ignored';
  const key = await findSubtaskByToken(ctx, token);
  if (!key) return 'unknown';
  const result = boundedResult(item);
  // A subtask past its retention is gone (DynamoDB deletes it lazily): nothing is written to it.
  const nowS = Math.floor(ctx.now() / 1000);
  if (!o.statusTypes.has(String(item.data_type ?? ''))) {
    return (await storeResultFields(ctx, key, token, result, nowS)) ? 'applied' : 'ignored';
  }
  const chunk = await applyStatusResult(ctx, {
    key,
    token,
    state: item.status === 'succeed' ? 'result_succeed' : 'result_failed',
    msg: typeof item.msg === 'string' ? item.msg.slice(0, MAX_FIELD) : '',
    result,
    at: ctx.now(),
    nowS,
  });
  if (chunk === undefined) return 'ignored';
  // A dispatcher recounts the chunk (and finishes the task when all are final).
  return (await markChunkDirty(ctx, key.taskId, chunk, { mustExist: true })) ? 'applied' : 'ignored';
}

export async function applyResults(
  ctx: TaskContext,
  items: readonly ResultItem[],
  o: ApplyOptions,
): Promise<{ applied: number; unknown: number; ignored: number }> {
  const counts = { applied: 0, unknown: 0, ignored: 0 };
  await mapLimit(items, 16, async (item) => {
    counts[await applyOne(ctx, item, o)]++;
  });
  ctx.metrics.results.inc({ outcome: 'applied' }, counts.applied);
  ctx.metrics.results.inc({ outcome: 'unknown' }, counts.unknown);
  ctx.metrics.results.inc({ outcome: 'ignored' }, counts.ignored);
  if (counts.unknown > 0) ctx.logger.warn({ unknown: counts.unknown }, 'task results with unknown tokens');
  return counts;
}
