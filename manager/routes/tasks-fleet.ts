/**
 * Our own task API (`/api/fleet/tasks…`, docs/openapi.yaml): create, list, get, run, cancel,
 * subtasks, in our envelope with HTTP statuses (400 / 404 / 409).
 */
import type { ManagerDeps } from '../deps.js';
import { apiOk, MgCode } from '../envelope.js';
import { type Ctx, HttpError, type ManagerRoute } from '../router.js';
import { actor } from './elkeid.js';
import { engine, runOrCancel, withCursor } from './task-engine-calls.js';
import { auditCreate, createInput, MAX_TASK_PAGE_SIZE, objectBody, taskIdParam } from './task-input.js';

const fleet = (route: Omit<ManagerRoute, 'api'>): ManagerRoute => ({ ...route, api: 'fleet' });

/** `?limit=&cursor=` of a listing: limit 1..500 (default 100). */
function listingQuery(ctx: Ctx): { limit: number; cursor: string | undefined } {
  const limitRaw = Number(ctx.query.get('limit') ?? 100);
  const limit = Number.isInteger(limitRaw) && limitRaw > 0 ? Math.min(limitRaw, MAX_TASK_PAGE_SIZE) : 100;
  return { limit, cursor: ctx.query.get('cursor') || undefined };
}

async function createHandler(deps: ManagerDeps, ctx: Ctx) {
  const b = objectBody(ctx);
  const action = b.action;
  if (action !== 'config' && action !== 'task' && action !== 'ctrl' && action !== 'delConfig') {
    throw new HttpError(
      400,
      MgCode.ParamInvalid,
      'action must be config, task, ctrl or delConfig',
      'invalid_parameter',
    );
  }
  const input = createInput(action, b, actor(ctx));
  const created = await engine('fleet', () => deps.tasks.create(input));
  auditCreate(ctx, input, created);
  return apiOk(created, 201);
}

export function fleetTaskRoutes(deps: ManagerDeps): ManagerRoute[] {
  return [
    fleet({
      method: 'POST',
      path: '/api/fleet/tasks',
      access: 'write',
      maxBodyBytes: 4 * 1024 * 1024,
      cost: 5,
      summary:
        'create a task: {action: config|task|ctrl|delConfig, tag|id_list|filter, data, …} → {task_id, count}',
      handler: (ctx) => createHandler(deps, ctx),
    }),
    fleet({
      method: 'GET',
      path: '/api/fleet/tasks',
      access: 'read',
      summary: 'tasks, newest first: ?limit=&cursor=',
      async handler(ctx) {
        const { limit, cursor } = listingQuery(ctx);
        return apiOk(
          await withCursor(deps, 'fleet', cursor, () =>
            deps.tasks.list({ limit, ...(cursor ? { cursor } : {}) }),
          ),
        );
      },
    }),
    fleet({
      method: 'GET',
      path: '/api/fleet/tasks/:id',
      access: 'read',
      summary: 'one task with its counts',
      async handler(ctx) {
        const t = await engine('fleet', () => deps.tasks.get(taskIdParam(ctx)));
        if (!t) throw new HttpError(404, MgCode.DbNoRowAffected, 'task not found', 'not_found');
        return apiOk(t);
      },
    }),
    fleet({
      method: 'POST',
      path: '/api/fleet/tasks/:id/run',
      access: 'write',
      maxBodyBytes: 4096,
      summary: 'release (more of) a task: {rolling_percent | run_number, concurrence}',
      async handler(ctx) {
        const body = ctx.req.body.length === 0 ? {} : objectBody(ctx);
        const r = await runOrCancel(deps.tasks, ctx, 'fleet', {
          taskId: taskIdParam(ctx),
          action: 'run',
          body,
        });
        return apiOk({ task_id: r.taskID, job_id: r.jobID, released: r.id_count });
      },
    }),
    fleet({
      method: 'POST',
      path: '/api/fleet/tasks/:id/cancel',
      access: 'write',
      summary: 'cancel a task: no new deliveries; batches in flight finish',
      async handler(ctx) {
        const r = await runOrCancel(deps.tasks, ctx, 'fleet', {
          taskId: taskIdParam(ctx),
          action: 'cancel',
          body: {},
        });
        return apiOk({ task_id: r.taskID, task_status: 'cancelled' });
      },
    }),
    fleet({
      method: 'GET',
      path: '/api/fleet/tasks/:id/subtasks',
      access: 'read',
      summary: "a task's subtasks: ?limit=&cursor=",
      async handler(ctx) {
        const id = taskIdParam(ctx);
        const { limit, cursor } = listingQuery(ctx);
        return apiOk(
          await withCursor(deps, 'fleet', cursor, () =>
            deps.tasks.subtasks(id, { limit, ...(cursor ? { cursor } : {}) }),
          ),
        );
      },
    }),
  ];
}
