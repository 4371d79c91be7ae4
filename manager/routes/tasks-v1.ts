/**
 * The task routes of Elkeid's v1 API (docs/elkeid-protocol.md §4.4, §4.5), in Elkeid's envelope
 * and codes:
 *
 *     POST /api/v1/agent/createTask/{config,task,ctrl,delConfig}   write     → {task_id, count}
 *     POST /api/v1/agent/controlTask          run | cancel         write     → {taskID, jobID, id_count} | {taskID}
 *     POST /api/v1/agent/quickTask/task?token=true&timeout=N        write     → token | ""
 *     POST /api/v1/agent/getTask/filter       ModelPage of tasks    read
 *     GET  /api/v1/agent/getTask/:id          the task              read
 *     GET  /api/v1/agent/getJob/:id           {info, stat, res}     read
 *     POST /api/v1/agent/getSubTask/filter    ModelPage of subtasks read      (the filter names task_id)
 *     GET  /api/v1/agent/getSubTask/:id       subtasks of a task    read
 *     POST /api/v1/agent/updateSubTask        [string map]          gateways (AK/SK) and writers
 */
import type { ManagerDeps } from '../deps.js';
import { MgCode, mgFail, mgOk } from '../envelope.js';
import { matches } from '../filter.js';
import { badRequest, type Ctx, type ManagerRoute } from '../router.js';
import { taskTables } from '../tasks/context.js';
import { findTaskByJob } from '../tasks/store/task-store.js';
import type { CommandBody } from '../tasks/types.js';
import { actor } from './elkeid.js';
import { allSubtasks, allTasks, engine, runOrCancel } from './task-engine-calls.js';
import {
  auditCreate,
  type CreateAction,
  createInput,
  filterOf,
  isObject,
  objectBody,
  optionalString,
  pageOf,
  resultItems,
  sortAndPage,
  taskIdOfFilter,
  taskIdParam,
} from './task-input.js';

/** A view as the document a filter matches against. */
const asDocument = (view: object): Record<string, unknown> => Object.fromEntries(Object.entries(view));

const v1 = (route: Omit<ManagerRoute, 'api'>): ManagerRoute => ({ ...route, api: 'elkeid' });

function createRoute(deps: ManagerDeps, action: CreateAction): ManagerRoute {
  return v1({
    method: 'POST',
    path: `/api/v1/agent/createTask/${action}`,
    access: 'write',
    maxBodyBytes: 4 * 1024 * 1024,
    cost: 5,
    summary: `create a task (${action}): Elkeid AgentTask JSON {tag,id_list,filter,data,task_name,…} → {task_id,count}`,
    async handler(ctx) {
      const input = createInput(action, objectBody(ctx), actor(ctx));
      const created = await engine('elkeid', () => deps.tasks.create(input));
      auditCreate(ctx, input, created);
      return mgOk({ task_id: created.task_id, count: created.count });
    },
  });
}

/** The quickTask timeout query parameter: seconds, 1..600, or undefined. */
function quickTimeout(ctx: Ctx): number | undefined {
  const raw = ctx.query.get('timeout');
  if (raw === null || raw === '') return undefined;
  const seconds = Number(raw);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 600) {
    throw badRequest('timeout must be an integer number of seconds from 1 to 600');
  }
  return seconds;
}

async function quickTaskHandler(deps: ManagerDeps, ctx: Ctx) {
  const b = objectBody(ctx);
  const agentId = optionalString(b, 'agent_id', 128);
  if (!agentId) throw badRequest('agent_id is required');
  if (!isObject(b.command)) throw badRequest('command must be an object');
  const token = ctx.query.get('token') === 'true';
  const timeoutSeconds = quickTimeout(ctx);
  const r = await engine('elkeid', () =>
    deps.tasks.quick({
      agent_id: agentId,
      command: b.command as CommandBody,
      token,
      user: actor(ctx),
      ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
    }),
  );
  ctx.audit.target = `agent:${agentId}`;
  ctx.audit.agents = [agentId];
  ctx.audit.agentCount = 1;
  ctx.audit.detail = { token, result: r.result };
  if (r.result === 'sent' || r.result === 'duplicate') return mgOk(token ? r.token : '');
  if (r.result === 'not_connected') return mgFail(MgCode.DbNoRowAffected, null, { msg: 'agentID not found' });
  return mgFail(MgCode.UnknownError, null, { msg: r.result });
}

/** getJob: a run of a task (the jobID controlTask returned) as Elkeid's {info, stat, res}. */
async function getJobHandler(deps: ManagerDeps, ctx: Ctx) {
  const jobId = ctx.params.id ?? '';
  if (!/^id-[A-Za-z_]+-\d{1,25}$/.test(jobId)) throw badRequest('job id is not valid');
  // Jobs are recorded on their task (`jobs`).
  const job = await findTaskByJob({ store: deps.store, tables: taskTables(deps.store) }, jobId);
  if (!job) return mgFail(MgCode.DbNoRowAffected, null, { msg: 'job not found' });
  const view = await engine('elkeid', () => deps.tasks.get(job.taskId));
  if (!view) return mgFail(MgCode.DbNoRowAffected, null, { msg: 'job not found' });
  const newAt = Math.floor(Number(jobId.slice(jobId.lastIndexOf('-') + 1)) / 1e9);
  return mgOk({
    info: {
      id: jobId,
      name: view.task_type,
      task_id: view.task_id,
      con_num: job.concurrence,
      timeout: 3600,
      new_at: newAt,
    },
    stat: view.counts,
    res: null,
  });
}

async function subtaskFilterHandler(deps: ManagerDeps, ctx: Ctx) {
  const { raw, filter } = filterOf(ctx);
  const taskId = taskIdOfFilter(raw);
  if (!taskId) {
    throw badRequest(
      'the filter must name the task: {"key":"task_id","rules":[{"operator":"$eq","value":…}]}',
    );
  }
  const req = pageOf(ctx);
  const items = (await allSubtasks(deps.tasks, 'elkeid', taskId)).filter((s) =>
    matches(filter, asDocument(s)),
  );
  return mgOk(sortAndPage(items, req));
}

function readRoutes(deps: ManagerDeps): ManagerRoute[] {
  return [
    v1({
      method: 'POST',
      path: '/api/v1/agent/getTask/filter',
      access: 'read',
      audited: false,
      cost: 5,
      summary: 'tasks matching a filter JSON, paged (page_size ≤ 500), newest first unless order_key',
      async handler(ctx) {
        const { filter } = filterOf(ctx);
        const req = pageOf(ctx);
        const items = (await allTasks(deps.tasks, 'elkeid')).filter((t) => matches(filter, asDocument(t)));
        return mgOk(sortAndPage(items, req));
      },
    }),
    v1({
      method: 'GET',
      path: '/api/v1/agent/getTask/:id',
      access: 'read',
      summary: 'one task',
      async handler(ctx) {
        const t = await engine('elkeid', () => deps.tasks.get(taskIdParam(ctx)));
        if (!t) return mgFail(MgCode.DbNoRowAffected, null, { msg: 'task not found' });
        return mgOk(t);
      },
    }),
    v1({
      method: 'GET',
      path: '/api/v1/agent/getJob/:id',
      access: 'read',
      cost: 5,
      summary: 'a run of a task (the jobID controlTask returned): {info, stat, res}',
      handler: (ctx) => getJobHandler(deps, ctx),
    }),
    v1({
      method: 'POST',
      path: '/api/v1/agent/getSubTask/filter',
      access: 'read',
      audited: false,
      cost: 5,
      summary: 'subtasks matching a filter JSON that names the task (task_id $eq), paged (page_size ≤ 500)',
      handler: (ctx) => subtaskFilterHandler(deps, ctx),
    }),
    v1({
      method: 'GET',
      path: '/api/v1/agent/getSubTask/:id',
      access: 'read',
      cost: 5,
      summary: 'the subtasks of a task (`:id` = task_id), at most 20,000',
      handler: async (ctx) => mgOk(await allSubtasks(deps.tasks, 'elkeid', taskIdParam(ctx))),
    }),
  ];
}

function writeRoutes(deps: ManagerDeps): ManagerRoute[] {
  return [
    v1({
      method: 'POST',
      path: '/api/v1/agent/controlTask',
      access: 'write',
      maxBodyBytes: 4096,
      summary: 'run (rolling_percent | run_number, concurrence) or cancel a task',
      async handler(ctx) {
        const b = objectBody(ctx);
        const taskId = optionalString(b, 'task_id', 64);
        if (!taskId) throw badRequest('task_id is required');
        const action = typeof b.action === 'string' ? b.action : '';
        return mgOk(await runOrCancel(deps.tasks, ctx, 'elkeid', { taskId, action, body: b }));
      },
    }),
    v1({
      method: 'POST',
      path: '/api/v1/agent/quickTask/task',
      access: 'write',
      maxBodyBytes: 1024 * 1024,
      summary: 'one command to one agent, answered synchronously: ?token=true&timeout=N, {agent_id, command}',
      handler: (ctx) => quickTaskHandler(deps, ctx),
    }),
    v1({
      method: 'POST',
      path: '/api/v1/agent/updateSubTask',
      access: 'callback-write',
      maxBodyBytes: 8 * 1024 * 1024,
      summary:
        'task results from a gateway (AK/SK): a JSON array of string maps with token, status, msg, data_type',
      async handler(ctx) {
        const items = resultItems(ctx.body());
        const r = await engine('elkeid', () => deps.tasks.applyResults(items));
        ctx.audit.target = 'subtasks';
        ctx.audit.detail = { items: items.length, ...r };
        return mgOk(r);
      },
    }),
  ];
}

/** The v1 task routes, in the order they are listed above. */
export function elkeidTaskRoutes(deps: ManagerDeps): ManagerRoute[] {
  const [controlTask, quickTask, updateSubTask] = writeRoutes(deps);
  return [
    ...(['config', 'task', 'ctrl', 'delConfig'] as const).map((action) => createRoute(deps, action)),
    controlTask!,
    quickTask!,
    ...readRoutes(deps),
    updateSubTask!,
  ];
}
