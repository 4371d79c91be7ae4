/**
 * The task state machine's operator transitions:
 *
 *   run     UpdateItem IF state IN (created, running) AND released = :seen
 *           SET released += n, state running, active "1" (byActive), concurrence, jobs += job
 *   cancel  UpdateItem IF state IN (created, running)  SET state cancelled, active "retain",
 *           expiresAt (no new claims; a chunk pass in flight finishes its batch)
 *
 * A run that finds `released` changed under it (another run) reads the task again and retries,
 * with a full-jitter backoff (platform/backoff.ts), five attempts in all.
 */
import { retryWithBackoff } from '../../platform/backoff.js';
import { ttlExpired } from '../../platform/store/schema.js';
import { expiryOf, type TaskContext } from './context.js';
import { TaskNotFoundError, TaskStateError, TaskValidationError } from './errors.js';
import { isTaskId } from './ids.js';
import type { TaskItem } from './model.js';
import { cancelTaskItem, getTaskItem, releaseTaskAgents } from './store/task-store.js';
import type { RunInput } from './types.js';

const RUN_ATTEMPTS = 5;

class RunConflict extends Error {
  override readonly name = 'RunConflict';
}

/**
 * The task, unless the id is not a task id, no such task exists, or its retention ended (an
 * expired item is gone for readers, whenever DynamoDB actually deletes it).
 */
export async function findTask(ctx: TaskContext, taskId: string): Promise<TaskItem | undefined> {
  if (!isTaskId(taskId)) return undefined;
  const task = await getTaskItem(ctx, taskId);
  return task && !ttlExpired(task.expiresAt, ctx.now()) ? task : undefined;
}

function checkRunInput(input: RunInput): number {
  const pct = input.rolling_percent;
  if (pct !== undefined && !(pct > 0 && pct <= 1))
    throw new TaskValidationError('rolling_percent must be in (0, 1]');
  if (input.run_number !== undefined && (!Number.isInteger(input.run_number) || input.run_number < 1)) {
    throw new TaskValidationError('run_number must be a positive integer');
  }
  const concurrence = input.concurrence ?? 100;
  if (!Number.isInteger(concurrence) || concurrence < 1 || concurrence > 999) {
    throw new TaskValidationError('concurrence must be 1..999');
  }
  return concurrence;
}

export async function runTask(
  ctx: TaskContext,
  input: RunInput,
): Promise<{ taskID: string; jobID: string; id_count: number }> {
  const concurrence = checkRunInput(input);
  const attempt = async () => {
    const t = await findTask(ctx, input.task_id);
    if (!t) throw new TaskNotFoundError(`task ${input.task_id} not found`);
    if (t.state !== 'created' && t.state !== 'running') throw new TaskStateError(`task is ${t.state}`);
    const n = input.run_number ?? Math.max(1, Math.floor(t.total * (input.rolling_percent ?? 1)));
    const released = Math.min(t.total, t.released + n);
    const now = ctx.now();
    const jobId = `id-${t.taskType}-${BigInt(now) * 1_000_000n}`;
    const run = { taskId: t.taskId, seenReleased: t.released, released, concurrence, jobId, now };
    if (!(await releaseTaskAgents(ctx, run)))
      throw new RunConflict(`task ${t.taskId} changed during the run`);
    ctx.logger.info({ taskId: t.taskId, released, of: t.total, user: input.user }, 'task run');
    ctx.onRun?.();
    return { taskID: t.taskId, jobID: jobId, id_count: released - t.released };
  };
  return retryWithBackoff(attempt, {
    attempts: RUN_ATTEMPTS,
    baseMs: 10,
    capMs: 200,
    retryable: (err) => err instanceof RunConflict,
  }).catch((err: unknown) => {
    if (err instanceof RunConflict) throw new TaskStateError(err.message);
    throw err;
  });
}

export async function cancelTask(
  ctx: TaskContext,
  taskId: string,
  user: string,
): Promise<{ taskID: string }> {
  const t = await findTask(ctx, taskId);
  if (!t) throw new TaskNotFoundError(`task ${taskId} not found`);
  const now = ctx.now();
  if (!(await cancelTaskItem(ctx, taskId, now, expiryOf(ctx, now)))) {
    throw new TaskStateError(`task is ${(await findTask(ctx, taskId))?.state ?? 'gone'}`);
  }
  ctx.logger.info({ taskId, user }, 'task cancelled');
  return { taskID: taskId };
}
