/**
 * Calls into the task engine from the routes: engine errors rendered in the route's style
 * (Elkeid's envelope and codes, or our HTTP statuses), whole listings for filtered views, and
 * run/cancel with their audit details.
 */
import type { ManagerDeps } from '../deps.js';
import { MgCode } from '../envelope.js';
import { FilterError } from '../filter.js';
import { badRequest, type Ctx, HttpError } from '../router.js';
import {
  FanoutConfirmError,
  TaskNotFoundError,
  TaskStateError,
  TaskValidationError,
} from '../tasks/errors.js';
import type { SubtaskView, TaskService, TaskView } from '../tasks/types.js';
import { actor } from './elkeid.js';
import { MAX_FILTER_SCAN, MAX_TASK_PAGE_SIZE, optionalInt, optionalNumber } from './task-input.js';

export type Style = 'elkeid' | 'fleet';

/** An engine error as the route's style renders it. */
function mapError(err: unknown, style: Style): never {
  if (err instanceof FanoutConfirmError) {
    throw new HttpError(
      400,
      MgCode.ParamInvalid,
      `fan-out guard: the target resolves to ${err.count} agents; repeat the request with "confirm_fanout": ${err.count} to confirm`,
      'fanout_unconfirmed',
    );
  }
  if (err instanceof TaskValidationError)
    throw new HttpError(400, MgCode.ParamInvalid, err.message, 'invalid_parameter');
  if (err instanceof FilterError)
    throw new HttpError(400, MgCode.ParamInvalid, err.message, 'invalid_parameter');
  if (err instanceof TaskNotFoundError)
    throw new HttpError(404, MgCode.DbNoRowAffected, err.message, 'not_found');
  if (err instanceof TaskStateError) {
    throw new HttpError(style === 'fleet' ? 409 : 400, MgCode.DbOperateError, err.message, 'conflict');
  }
  throw err;
}

export async function engine<T>(style: Style, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    mapError(err, style);
  }
}

/**
 * A listing from a client's `cursor`: the engine only checks that it decodes to an object, so a
 * forged or stale one (`e30` = `{}`) reaches DynamoDB as ExclusiveStartKey, which refuses it with a
 * ValidationException. That is the client's input, not our failure: 400, not 500.
 */
export async function withCursor<T>(
  deps: Pick<ManagerDeps, 'logger'>,
  style: Style,
  cursor: string | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await engine(style, fn);
  } catch (err) {
    if (cursor !== undefined && (err as { name?: unknown } | null)?.name === 'ValidationException') {
      deps.logger.info({ err: (err as Error).message }, 'task listing: cursor refused by the store');
      throw new HttpError(400, MgCode.ParamInvalid, 'invalid cursor', 'invalid_parameter');
    }
    throw err;
  }
}

/** Every task (for a filtered view), at most MAX_FILTER_SCAN. */
export async function allTasks(tasks: TaskService, style: Style): Promise<TaskView[]> {
  const out: TaskView[] = [];
  let cursor: string | undefined;
  do {
    const page = await engine(style, () =>
      tasks.list({ limit: MAX_TASK_PAGE_SIZE, ...(cursor ? { cursor } : {}) }),
    );
    out.push(...page.items);
    cursor = page.cursor;
    if (out.length > MAX_FILTER_SCAN) {
      throw new HttpError(
        400,
        MgCode.ExceedLimit,
        `more than ${MAX_FILTER_SCAN} tasks to examine`,
        'too_many',
      );
    }
  } while (cursor);
  return out;
}

/** Every subtask of a task, at most `max`. */
export async function allSubtasks(
  tasks: TaskService,
  style: Style,
  taskId: string,
  max = MAX_FILTER_SCAN,
): Promise<SubtaskView[]> {
  const out: SubtaskView[] = [];
  let cursor: string | undefined;
  do {
    const page = await engine(style, () =>
      tasks.subtasks(taskId, { limit: MAX_TASK_PAGE_SIZE, ...(cursor ? { cursor } : {}) }),
    );
    out.push(...page.items);
    cursor = page.cursor;
    if (out.length > max) {
      throw new HttpError(
        400,
        MgCode.ExceedLimit,
        `the task has more than ${max} subtasks: page through getSubTask/filter or /api/fleet/tasks/{id}/subtasks`,
        'too_many',
      );
    }
  } while (cursor);
  return out;
}

/** controlTask / our run and cancel: the engine call and its audit details. */
export async function runOrCancel(
  tasks: TaskService,
  ctx: Ctx,
  style: Style,
  call: { taskId: string; action: string; body: Record<string, unknown> },
): Promise<{ taskID: string; jobID?: string; id_count?: number }> {
  const { taskId, action, body: b } = call;
  ctx.audit.target = `task:${taskId}`;
  if (action === 'cancel') {
    const r = await engine(style, () => tasks.cancel(taskId, actor(ctx)));
    ctx.audit.detail = { action };
    return r;
  }
  if (action !== 'run') throw badRequest('action must be run or cancel');
  const rolling = optionalNumber(b, 'rolling_percent');
  const runNumber = optionalInt(b, 'run_number', 1, Number.MAX_SAFE_INTEGER);
  const concurrence = optionalInt(b, 'concurrence', 1, 999);
  const options = {
    ...(rolling !== undefined ? { rolling_percent: rolling } : {}),
    ...(runNumber !== undefined ? { run_number: runNumber } : {}),
    ...(concurrence !== undefined ? { concurrence } : {}),
  };
  const r = await engine(style, () => tasks.run({ task_id: taskId, user: actor(ctx), ...options }));
  ctx.audit.agentCount = r.id_count;
  ctx.audit.detail = {
    action,
    jobId: r.jobID,
    released: r.id_count,
    ...(rolling !== undefined ? { rollingPercent: rolling } : {}),
    ...(runNumber !== undefined ? { runNumber } : {}),
    ...(concurrence !== undefined ? { concurrence } : {}),
  };
  return r;
}
