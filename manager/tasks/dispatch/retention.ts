/**
 * Retention of ended tasks: a finished or cancelled task carries its expiry (progress.ts,
 * run-cancel.ts) and the `retain` marker in the dispatchers' index; each tick stamps one page of
 * its subtasks, then of its chunks, with the same expiry, and removes the marker when all are
 * stamped. DynamoDB's TTL then deletes them (lazily); readers skip them from the expiry on.
 *
 * Cost: one UpdateItem per subtask and per chunk item, once per task (about the cost of writing
 * them at creation), spread at `STAMP_PAGE` items per task per tick.
 */
import { mapLimit } from '../../store.js';
import { ACTIVE_RETAIN, type TaskItem } from '../model.js';
import { endStamping, parseStampPosition, saveStampPosition, stampPage } from '../store/retention-store.js';
import { getTaskItems, queryTaskIdsByMarker } from '../store/task-store.js';
import type { DispatchEngine } from './engine.js';

/** Items stamped per task per tick. */
export const STAMP_PAGE = 200;
/** Ended tasks stamped per tick (the rest wait for the next ticks). */
const TASKS_PER_TICK = 4;

async function stampStep(engine: DispatchEngine, task: TaskItem, expiresAt: number): Promise<void> {
  const next = await stampPage(
    engine.ctx,
    task.taskId,
    expiresAt,
    parseStampPosition(task.sweepKey),
    STAMP_PAGE,
  );
  if (next) {
    await saveStampPosition(engine.ctx, task.taskId, next);
    return;
  }
  if (await endStamping(engine.ctx, task.taskId)) {
    engine.log.info({ taskId: task.taskId, expiresAt }, 'ended task: its items carry their expiry');
  }
}

/** One page for each of a few ended tasks; how many pages were stamped. */
export async function stampEndedTasks(engine: DispatchEngine): Promise<number> {
  const ids = await queryTaskIdsByMarker(engine.ctx, ACTIVE_RETAIN);
  if (ids.length === 0) return 0;
  const at = engine.now();
  const tasks = (await getTaskItems(engine.ctx, ids, { consistent: true })).filter(
    (t) =>
      t.active === ACTIVE_RETAIN &&
      t.expiresAt !== undefined &&
      // A chunk pass that began before the task ended may still write for up to its lease;
      // stamping after it cannot be undone by its whole-item writes.
      at - t.updatedAt >= 2 * engine.settings.leaseMs,
  );
  let pages = 0;
  await mapLimit(tasks.slice(0, TASKS_PER_TICK), 2, async (task) => {
    try {
      await stampStep(engine, task, task.expiresAt!);
      pages++;
    } catch (err) {
      engine.log.error({ err, taskId: task.taskId }, 'stamping an ended task failed; the next tick retries');
    }
  });
  return pages;
}
