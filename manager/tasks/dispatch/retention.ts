/**
 * Retention of ended tasks: a finished or cancelled task carries its expiry (progress.ts,
 * run-cancel.ts) and the `retain` marker in the dispatchers' index; one dispatcher at a time
 * (a lease on the task item) stamps a page of its subtasks, then of its chunks, with the same
 * expiry, at most once a second, and removes the marker when all are stamped. DynamoDB's TTL then
 * deletes them (lazily); readers skip them from the expiry on.
 *
 * Cost: one UpdateItem per subtask and per chunk item, once per task (about the cost of writing
 * them at creation), at STAMP_PAGE items per task per second: a million-agent task takes about
 * 2.8 hours, negligible against a retention of days, and light on the table while it runs.
 */
import { mapLimit } from '../../store.js';
import { ACTIVE_RETAIN, type TaskItem } from '../model.js';
import {
  claimStamping,
  endStamping,
  parseStampPosition,
  saveStampPosition,
  stampPage,
} from '../store/retention-store.js';
import { getTaskItems, queryTaskIdsByMarker } from '../store/task-store.js';
import type { DispatchEngine } from './engine.js';

/** Items stamped per task per round. */
export const STAMP_PAGE = 100;
/** Ended tasks one dispatcher stamps per round (the rest wait for the next rounds). */
const TASKS_PER_ROUND = 2;
/** A dispatcher stamps at most one round this often, however busy its ticks: retention can wait. */
export const STAMP_INTERVAL_MS = 1000;

async function stampStep(engine: DispatchEngine, task: TaskItem, expiresAt: number): Promise<void> {
  const { owner } = engine;
  const lease = { owner, now: engine.now(), leaseMs: engine.settings.leaseMs };
  if (!(await claimStamping(engine.ctx, task.taskId, lease))) return;
  const from = parseStampPosition(task.sweepKey);
  const next = await stampPage(engine.ctx, task.taskId, expiresAt, from, STAMP_PAGE);
  if (next) {
    await saveStampPosition(engine.ctx, task.taskId, owner, next);
    return;
  }
  if (await endStamping(engine.ctx, task.taskId)) {
    engine.log.info({ taskId: task.taskId, expiresAt }, 'ended task: its items carry their expiry');
  }
}

/** One page for each of a few ended tasks, at most every STAMP_INTERVAL_MS; how many pages were stamped. */
export async function stampEndedTasks(engine: DispatchEngine): Promise<number> {
  if (engine.now() - engine.retention.lastRoundAt < STAMP_INTERVAL_MS) return 0;
  engine.retention.lastRoundAt = engine.now();
  const ids = await queryTaskIdsByMarker(engine.ctx, ACTIVE_RETAIN);
  if (ids.length === 0) return 0;
  const at = engine.now();
  const items = await getTaskItems(engine.ctx, ids, {
    consistent: true,
    onMalformed: (err) => engine.log.error({ err }, 'task item refused: not stamped'),
  });
  const tasks = items.filter(
    (t) =>
      t.active === ACTIVE_RETAIN &&
      t.expiresAt !== undefined &&
      // A chunk pass that began before the task ended may still write for up to its lease;
      // stamping after it cannot be undone by its whole-item writes.
      at - t.updatedAt >= 2 * engine.settings.leaseMs &&
      // Another dispatcher is stamping it.
      (t.sweepOwner === undefined || t.sweepOwner === engine.owner || (t.sweepUntil ?? 0) < at),
  );
  let pages = 0;
  await mapLimit(tasks.slice(0, TASKS_PER_ROUND), 2, async (task) => {
    try {
      await stampStep(engine, task, task.expiresAt!);
      pages++;
    } catch (err) {
      engine.log.error({ err, taskId: task.taskId }, 'stamping an ended task failed; the next tick retries');
    }
  });
  return pages;
}
