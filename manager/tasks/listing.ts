/**
 * Reading tasks for the API: one task with counts summed from its chunk heads, pages of tasks
 * (newest first, each with its last counts snapshot), pages of a task's subtasks (config/ctrl
 * ones with their chunk head's state letter applied). Pages resume from an opaque cursor. A task
 * or subtask past its expiry (retention) is not shown: DynamoDB deletes it up to days later.
 */
import { ttlExpired } from '../../platform/store/schema.js';
import type { TaskContext } from './context.js';
import { TaskValidationError } from './errors.js';
import { isTaskId } from './ids.js';
import { emptyCounts, headId, LIST_PK, sumHeads } from './model.js';
import { findTask } from './run-cancel.js';
import { getHeadOverlays, queryHeads } from './store/chunk-store.js';
import { querySubtaskPage } from './store/subtask-store.js';
import { getTaskItems, queryTaskIdsByTime } from './store/task-store.js';
import type { SubtaskView, TaskView } from './types.js';
import { overlay, subtaskView, taskView } from './views.js';

const MAX_PAGE = 500;

type Key = Record<string, unknown>;

function encodeCursor(key: Key | undefined): string | undefined {
  return key ? Buffer.from(JSON.stringify(key)).toString('base64url') : undefined;
}

function decodeCursor(cursor: string | undefined): Key | undefined {
  if (!cursor) return undefined;
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Key;
  } catch {
    // fall through
  }
  throw new TaskValidationError('invalid cursor');
}

const pageLimit = (limit: number) => Math.max(1, Math.min(MAX_PAGE, limit));

export async function getTaskView(ctx: TaskContext, taskId: string): Promise<TaskView | undefined> {
  const t = await findTask(ctx, taskId);
  if (!t || t.listPk !== LIST_PK) return undefined;
  return taskView(t, sumHeads(await queryHeads(ctx, taskId), t.total, t.released));
}

export async function listTaskViews(
  ctx: TaskContext,
  o: { limit: number; cursor?: string },
): Promise<{ items: TaskView[]; cursor?: string }> {
  const page = await queryTaskIdsByTime(ctx, pageLimit(o.limit), decodeCursor(o.cursor));
  const tasks = await getTaskItems(ctx, page.ids, {
    onMalformed: (err) => ctx.logger.error({ err }, 'task item refused: not listed'),
  });
  const byId = new Map(tasks.map((t) => [t.taskId, t]));
  const items: TaskView[] = [];
  for (const id of page.ids) {
    const t = byId.get(id);
    if (t && !ttlExpired(t.expiresAt, ctx.now()))
      items.push(taskView(t, t.counts ?? { ...emptyCounts(t.total, t.released), created: t.total }));
  }
  const next = encodeCursor(page.lastKey);
  return next ? { items, cursor: next } : { items };
}

export async function listSubtaskViews(
  ctx: TaskContext,
  taskId: string,
  o: { limit: number; cursor?: string },
): Promise<{ items: SubtaskView[]; cursor?: string }> {
  if (!isTaskId(taskId)) return { items: [] };
  const page = await querySubtaskPage(ctx, taskId, pageLimit(o.limit), decodeCursor(o.cursor));
  // A task past its retention is gone, whatever of its items DynamoDB has not deleted yet.
  if (page.items.length > 0 && !(await findTask(ctx, taskId))) return { items: [] };
  // Config/ctrl subtasks: the state is in their chunk heads (model.ts); overlay it.
  const chunks = [...new Set(page.items.filter((x) => x.taskType !== 'Agent_Task').map((x) => x.chunk))];
  const heads = await getHeadOverlays(ctx, taskId, chunks);
  const items = page.items
    .filter((x) => !ttlExpired(x.expiresAt, ctx.now()))
    .map((x) => subtaskView(overlay(x, heads.get(headId(x.chunk)))));
  const next = encodeCursor(page.lastKey);
  return next ? { items, cursor: next } : { items };
}
