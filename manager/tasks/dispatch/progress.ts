/**
 * A running task's progress: its counts summed from the chunk heads, written when they changed;
 * when every released agent is final and all are released, the task becomes `finished`, with
 * its expiry (its subtasks and chunks get the same one next, retention.ts).
 */
import { expiryOf } from '../context.js';
import type { ChunkHead, TaskItem } from '../model.js';
import { sumHeads } from '../model.js';
import { writeTaskProgress } from '../store/task-store.js';
import type { DispatchEngine } from './engine.js';

export async function recordProgress(
  engine: DispatchEngine,
  task: TaskItem,
  heads: readonly ChunkHead[],
): Promise<void> {
  const counts = sumHeads(heads, task.total, task.released);
  const finish = task.released >= task.total && heads.every((h) => h.state === 'done');
  const key = JSON.stringify(counts);
  if (!finish && engine.countsWritten.get(task.taskId) === key) return;
  const now = engine.now();
  const written = await writeTaskProgress(engine.ctx, task.taskId, counts, {
    now,
    finishExpiresAt: finish ? expiryOf(engine.ctx, now) : undefined,
  });
  if (!written) return;
  engine.countsWritten.set(task.taskId, key);
  if (finish) {
    engine.countsWritten.delete(task.taskId);
    engine.log.info({ taskId: task.taskId, counts }, 'task finished');
  }
}
