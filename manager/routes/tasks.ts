/**
 * Task routes over the engine's TaskService (tasks/types.ts):
 *
 *   Elkeid v1 (docs/elkeid-protocol.md §4.4, §4.5), Elkeid's envelope and codes:
 *     POST /api/v1/agent/createTask/{config,task,ctrl,delConfig}   write     → {task_id, count}
 *     POST /api/v1/agent/controlTask          run | cancel         write     → {taskID, jobID, id_count} | {taskID}
 *     POST /api/v1/agent/quickTask/task?token=true&timeout=N        write     → token | ""
 *     POST /api/v1/agent/getTask/filter       ModelPage of tasks    read
 *     GET  /api/v1/agent/getTask/:id          the task              read
 *     GET  /api/v1/agent/getJob/:id           {info, stat, res}     read
 *     POST /api/v1/agent/getSubTask/filter    ModelPage of subtasks read      (the filter names task_id)
 *     GET  /api/v1/agent/getSubTask/:id       subtasks of a task    read
 *     POST /api/v1/agent/updateSubTask        [string map]          gateways (AK/SK) and writers
 *
 *   Our own (`/api/fleet/tasks…`, docs/openapi.yaml): create, list, get, run, cancel, subtasks.
 *
 * Engine errors map to codes: validation → 5 param invalid (the fan-out guard says how to confirm),
 * not found → 6, wrong state → 3 (v1; HTTP 200 with the envelope) or 400/404/409 (fleet).
 * Pages are capped at 500 items; filtered listings examine at most MAX_FILTER_SCAN items.
 */
import { ScanCommand, type ScanCommandOutput } from '@aws-sdk/lib-dynamodb';
import { tableName } from '../../platform/store/schema.js';
import type { ManagerDeps } from '../deps.js';
import { apiOk, MgCode, mgFail, mgOk, modelPage, type PageRequest, parsePage } from '../envelope.js';
import { type Filter, FilterError, matches, parseFilter } from '../filter.js';
import { badRequest, type Ctx, HttpError, type ManagerRoute } from '../router.js';
import {
  FanoutConfirmError,
  TaskNotFoundError,
  TaskStateError,
  TaskValidationError,
} from '../tasks/errors.js';
import type {
  CommandBody,
  CreateTaskInput,
  ResultItem,
  SubtaskView,
  TaskTarget,
  TaskType,
  TaskView,
} from '../tasks/types.js';
import { actor } from './elkeid.js';

/** Largest page of the task listings (Elkeid allows 5000; tasks and subtasks are bigger items). */
export const MAX_TASK_PAGE_SIZE = 500;
/** Most tasks or subtasks one filtered listing examines. */
export const MAX_FILTER_SCAN = 20_000;
/** Most result items one updateSubTask call carries (the AgentCenter sends 100). */
export const MAX_RESULT_ITEMS = 5000;
/** Agent IDs written into one audit entry (the count is always there). */
const AUDIT_AGENTS = 1000;
const MAX_ID_LIST = 100_000;
/**
 * Bytes of agent IDs one task's `id_list` may hold. The engine keeps the list on the task item,
 * and a DynamoDB item is at most 400 KB: beyond it the task's write fails after its subtasks were
 * written (a 500 and orphaned subtasks). 256 KiB leaves room for the rest of the item (data is
 * up to 64 KiB): about 7,000 IDs of 36 characters. Larger sets: a tag or a filter.
 */
export const MAX_ID_LIST_BYTES = 256 * 1024;
const TASK_ID = /^[\x21-\x7e]{1,64}$/;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

type Style = 'elkeid' | 'fleet';

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

async function engine<T>(style: Style, fn: () => Promise<T>): Promise<T> {
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
async function withCursor<T>(
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

function objectBody(ctx: Ctx): Record<string, unknown> {
  const b = ctx.body();
  if (!isObject(b)) throw badRequest('the body must be a JSON object');
  return b;
}

function optionalString(b: Record<string, unknown>, k: string, max = 256): string | undefined {
  const v = b[k];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || v.length > max)
    throw badRequest(`${k} must be a string of at most ${max} characters`);
  return v;
}

function optionalInt(b: Record<string, unknown>, k: string, min: number, max: number): number | undefined {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw badRequest(`${k} must be an integer from ${min} to ${max}`);
  }
  return v;
}

function optionalNumber(b: Record<string, unknown>, k: string): number | undefined {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`${k} must be a number`);
  return v;
}

/** Who a task is for: Elkeid's `tag`, `id_list`, `filter` (FilterQuery) of the AgentTask document. */
function targetOf(b: Record<string, unknown>): TaskTarget {
  const target: TaskTarget = {};
  const tag = optionalString(b, 'tag', 128);
  if (tag !== undefined) target.tag = tag;
  if (b.id_list !== undefined && b.id_list !== null) {
    const ids = b.id_list;
    if (!Array.isArray(ids) || ids.some((x) => typeof x !== 'string' || x.length === 0 || x.length > 128)) {
      throw badRequest('id_list must be an array of agent IDs');
    }
    if (ids.length > MAX_ID_LIST) {
      throw new HttpError(400, MgCode.ExceedLimit, `id_list: at most ${MAX_ID_LIST} agent IDs`, 'too_many');
    }
    // DynamoDB's size of a list of strings: each string's UTF-8 bytes plus one.
    let bytes = 0;
    for (const id of new Set(ids as string[])) bytes += Buffer.byteLength(id, 'utf8') + 1;
    if (bytes > MAX_ID_LIST_BYTES) {
      throw new HttpError(
        400,
        MgCode.ExceedLimit,
        `id_list: at most ${MAX_ID_LIST_BYTES / 1024} KiB of agent IDs (${ids.length} IDs take ${Math.ceil(bytes / 1024)} KiB); target larger sets with a tag or a filter`,
        'too_many',
      );
    }
    if (ids.length > 0) target.id_list = [...new Set(ids as string[])];
  }
  if (b.filter !== undefined && b.filter !== null) {
    try {
      const f = parseFilter(b.filter);
      if (f.elements.length > 0) target.filter = f;
    } catch (err) {
      if (err instanceof FilterError) throw badRequest(`filter: ${err.message}`);
      throw err;
    }
  }
  if (target.tag === undefined && target.id_list === undefined && target.filter === undefined) {
    throw badRequest('a task needs a target: tag, id_list or filter');
  }
  return target;
}

export type CreateAction = 'config' | 'task' | 'ctrl' | 'delConfig';

/** The engine's input from an Elkeid AgentTask document (plus our guard and idempotency fields). */
export function createInput(action: CreateAction, b: Record<string, unknown>, user: string): CreateTaskInput {
  const target = targetOf(b);
  let type: TaskType;
  let data: CommandBody;
  if (action === 'delConfig') {
    // Elkeid: `data` is the list of plugin names to remove.
    const names = b.data;
    if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== 'string' || n === '')) {
      throw badRequest('data must be a non-empty array of plugin names');
    }
    type = 'Agent_Config';
    data = { config: (names as string[]).map((name) => ({ name })) };
  } else {
    if (!isObject(b.data)) throw badRequest('data must be an object');
    const d = b.data as CommandBody;
    if (action === 'config') {
      type = 'Agent_Config';
      data = { config: d.config ?? [] };
    } else if (action === 'task') {
      if (!isObject(d.task)) throw badRequest('data.task is required');
      type = 'Agent_Task';
      data = { task: d.task };
    } else {
      // Elkeid's createTask/ctrl creates an Agent_Task from `data.task` (e.g. data_type 1060 to
      // elkeid-agent); with only `data.agent_ctrl` it is a control command.
      if (isObject(d.task)) {
        type = 'Agent_Task';
        data = { task: d.task };
      } else if (typeof d.agent_ctrl === 'number') {
        type = 'Agent_Ctrl';
        data = { agent_ctrl: d.agent_ctrl };
      } else {
        throw badRequest('data.task or data.agent_ctrl is required');
      }
    }
  }
  const input: CreateTaskInput = { type, action, target, data, user };
  const name = optionalString(b, 'task_name', 256);
  if (name !== undefined) input.task_name = name;
  const timeout = optionalInt(b, 'subtask_running_timeout', 1, 7 * 86_400);
  if (timeout !== undefined) input.subtask_running_timeout = timeout;
  const attempts = optionalInt(b, 'max_attempts', 1, 100);
  if (attempts !== undefined) input.max_attempts = attempts;
  const confirm = optionalInt(b, 'confirm_fanout', 0, Number.MAX_SAFE_INTEGER);
  if (confirm !== undefined) input.confirm_fanout = confirm;
  const requestId = optionalString(b, 'request_id', 128);
  if (requestId !== undefined) input.request_id = requestId;
  return input;
}

function auditCreate(ctx: Ctx, input: CreateTaskInput, created: { task_id: string; count: number }): void {
  ctx.audit.target = `task:${created.task_id}`;
  ctx.audit.agentCount = created.count;
  if (input.target.id_list) ctx.audit.agents = input.target.id_list.slice(0, AUDIT_AGENTS);
  ctx.audit.detail = {
    type: input.type,
    action: input.action,
    ...(input.target.tag !== undefined ? { tag: input.target.tag } : {}),
    ...(input.target.id_list ? { idList: input.target.id_list.length } : {}),
    ...(input.target.filter ? { filter: [...input.target.filter.keys] } : {}),
    count: created.count,
    ...(input.confirm_fanout !== undefined ? { confirmFanout: input.confirm_fanout } : {}),
  };
}

function pageOf(ctx: Ctx): PageRequest {
  const p = parsePage(ctx.query);
  p.pageSize = Math.min(p.pageSize, MAX_TASK_PAGE_SIZE);
  return p;
}

function filterOf(ctx: Ctx): { raw: unknown; filter: Filter } {
  const raw = ctx.req.body.length === 0 ? {} : ctx.body();
  try {
    return { raw, filter: parseFilter(raw) };
  } catch (err) {
    if (err instanceof FilterError) throw badRequest(err.message);
    throw err;
  }
}

function sortAndPage<T>(items: T[], req: PageRequest) {
  if (req.orderKey) {
    const k = req.orderKey;
    const dir = req.orderValue ?? 1;
    items.sort((a, b) => {
      const x = (a as Record<string, unknown>)[k];
      const y = (b as Record<string, unknown>)[k];
      if (x === y) return 0;
      if (x === undefined || x === null) return 1;
      if (y === undefined || y === null) return -1;
      return (x < y ? -1 : 1) * dir;
    });
  }
  const start = (req.page - 1) * req.pageSize;
  return modelPage(items.slice(start, start + req.pageSize), items.length, req);
}

/** `task_id` of a subtask filter: Elkeid's clients always pin it (`{"key":"task_id","rules":[{"operator":"$eq",…}]}`). */
export function taskIdOfFilter(raw: unknown): string | undefined {
  if (!isObject(raw) || !Array.isArray(raw.filter)) return undefined;
  for (const el of raw.filter) {
    if (!isObject(el) || el.key !== 'task_id' || !Array.isArray(el.rules)) continue;
    for (const rule of el.rules) {
      if (isObject(rule) && rule.operator === '$eq' && typeof rule.value === 'string') return rule.value;
    }
  }
  return undefined;
}

/** Elkeid's result items: a JSON array of string maps (numbers and booleans are taken as text). */
export function resultItems(body: unknown): ResultItem[] {
  if (!Array.isArray(body)) throw badRequest('the body must be a JSON array of result items');
  if (body.length > MAX_RESULT_ITEMS) {
    throw new HttpError(
      400,
      MgCode.ExceedLimit,
      `at most ${MAX_RESULT_ITEMS} result items per call`,
      'too_many',
    );
  }
  return body.map((item, i) => {
    if (!isObject(item)) throw badRequest(`item ${i} must be an object`);
    const out: ResultItem = {};
    for (const [k, v] of Object.entries(item)) {
      if (typeof v === 'string') out[k] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
      else if (v !== null && v !== undefined) throw badRequest(`item ${i}: ${k} must be a string`);
    }
    return out;
  });
}

export function taskRoutes(deps: ManagerDeps): ManagerRoute[] {
  const v1 = (route: Omit<ManagerRoute, 'api'>): ManagerRoute => ({ ...route, api: 'elkeid' });
  const fleet = (route: Omit<ManagerRoute, 'api'>): ManagerRoute => ({ ...route, api: 'fleet' });
  const tasks = () => deps.tasks;

  async function allTasks(style: Style): Promise<TaskView[]> {
    const out: TaskView[] = [];
    let cursor: string | undefined;
    do {
      const page = await engine(style, () =>
        tasks().list({ limit: MAX_TASK_PAGE_SIZE, ...(cursor ? { cursor } : {}) }),
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

  async function allSubtasks(style: Style, taskId: string, max = MAX_FILTER_SCAN): Promise<SubtaskView[]> {
    const out: SubtaskView[] = [];
    let cursor: string | undefined;
    do {
      const page = await engine(style, () =>
        tasks().subtasks(taskId, { limit: MAX_TASK_PAGE_SIZE, ...(cursor ? { cursor } : {}) }),
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

  const createRoute = (action: CreateAction): ManagerRoute =>
    v1({
      method: 'POST',
      path: `/api/v1/agent/createTask/${action}`,
      access: 'write',
      maxBodyBytes: 4 * 1024 * 1024,
      cost: 5,
      summary: `create a task (${action}): Elkeid AgentTask JSON {tag,id_list,filter,data,task_name,…} → {task_id,count}`,
      async handler(ctx) {
        const input = createInput(action, objectBody(ctx), actor(ctx));
        const created = await engine('elkeid', () => tasks().create(input));
        auditCreate(ctx, input, created);
        return mgOk({ task_id: created.task_id, count: created.count });
      },
    });

  async function runOrCancel(
    ctx: Ctx,
    style: Style,
    taskId: string,
    action: string,
    b: Record<string, unknown>,
  ): Promise<{ taskID: string; jobID?: string; id_count?: number }> {
    ctx.audit.target = `task:${taskId}`;
    if (action === 'cancel') {
      const r = await engine(style, () => tasks().cancel(taskId, actor(ctx)));
      ctx.audit.detail = { action };
      return r;
    }
    if (action !== 'run') throw badRequest('action must be run or cancel');
    const rolling = optionalNumber(b, 'rolling_percent');
    const runNumber = optionalInt(b, 'run_number', 1, Number.MAX_SAFE_INTEGER);
    const concurrence = optionalInt(b, 'concurrence', 1, 999);
    const r = await engine(style, () =>
      tasks().run({
        task_id: taskId,
        user: actor(ctx),
        ...(rolling !== undefined ? { rolling_percent: rolling } : {}),
        ...(runNumber !== undefined ? { run_number: runNumber } : {}),
        ...(concurrence !== undefined ? { concurrence } : {}),
      }),
    );
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

  function taskIdParam(ctx: Ctx): string {
    const id = ctx.params.id ?? '';
    if (!TASK_ID.test(id)) throw badRequest('task id is not valid');
    return id;
  }

  return [
    createRoute('config'),
    createRoute('task'),
    createRoute('ctrl'),
    createRoute('delConfig'),
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
        return mgOk(await runOrCancel(ctx, 'elkeid', taskId, action, b));
      },
    }),
    v1({
      method: 'POST',
      path: '/api/v1/agent/quickTask/task',
      access: 'write',
      maxBodyBytes: 1024 * 1024,
      summary: 'one command to one agent, answered synchronously: ?token=true&timeout=N, {agent_id, command}',
      async handler(ctx) {
        const b = objectBody(ctx);
        const agentId = optionalString(b, 'agent_id', 128);
        if (!agentId) throw badRequest('agent_id is required');
        if (!isObject(b.command)) throw badRequest('command must be an object');
        const token = ctx.query.get('token') === 'true';
        const rawTimeout = ctx.query.get('timeout');
        let timeoutSeconds: number | undefined;
        if (rawTimeout !== null && rawTimeout !== '') {
          timeoutSeconds = Number(rawTimeout);
          if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 600) {
            throw badRequest('timeout must be an integer number of seconds from 1 to 600');
          }
        }
        const r = await engine('elkeid', () =>
          tasks().quick({
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
        if (r.result === 'not_connected') {
          return mgFail(MgCode.DbNoRowAffected, null, { msg: 'agentID not found' });
        }
        return mgFail(MgCode.UnknownError, null, { msg: r.result });
      },
    }),
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
        const items = (await allTasks('elkeid')).filter((t) =>
          matches(filter, t as unknown as Record<string, unknown>),
        );
        return mgOk(sortAndPage(items, req));
      },
    }),
    v1({
      method: 'GET',
      path: '/api/v1/agent/getTask/:id',
      access: 'read',
      summary: 'one task',
      async handler(ctx) {
        const t = await engine('elkeid', () => tasks().get(taskIdParam(ctx)));
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
      async handler(ctx) {
        const jobId = ctx.params.id ?? '';
        if (!/^id-[A-Za-z_]+-\d{1,25}$/.test(jobId)) throw badRequest('job id is not valid');
        // Jobs are recorded on their task (`jobs`); tasks are few, so a filtered Scan finds it.
        let item: Record<string, unknown> | undefined;
        let start: Record<string, unknown> | undefined;
        do {
          const page: ScanCommandOutput = await deps.store.doc.send(
            new ScanCommand({
              TableName: tableName(deps.store.prefix, 'tasks'),
              FilterExpression: 'contains(#j, :id)',
              ExpressionAttributeNames: { '#j': 'jobs' },
              ExpressionAttributeValues: { ':id': jobId },
              ...(start ? { ExclusiveStartKey: start } : {}),
            }),
          );
          item = page.Items?.[0];
          start = page.LastEvaluatedKey;
        } while (!item && start);
        if (!item) return mgFail(MgCode.DbNoRowAffected, null, { msg: 'job not found' });
        const view = await engine('elkeid', () => tasks().get(String(item!.taskId)));
        if (!view) return mgFail(MgCode.DbNoRowAffected, null, { msg: 'job not found' });
        const newAt = Math.floor(Number(jobId.slice(jobId.lastIndexOf('-') + 1)) / 1e9);
        return mgOk({
          info: {
            id: jobId,
            name: view.task_type,
            task_id: view.task_id,
            con_num: typeof item.concurrence === 'number' ? item.concurrence : 0,
            timeout: 3600,
            new_at: newAt,
          },
          stat: view.counts,
          res: null,
        });
      },
    }),
    v1({
      method: 'POST',
      path: '/api/v1/agent/getSubTask/filter',
      access: 'read',
      audited: false,
      cost: 5,
      summary: 'subtasks matching a filter JSON that names the task (task_id $eq), paged (page_size ≤ 500)',
      async handler(ctx) {
        const { raw, filter } = filterOf(ctx);
        const taskId = taskIdOfFilter(raw);
        if (!taskId) {
          throw badRequest(
            'the filter must name the task: {"key":"task_id","rules":[{"operator":"$eq","value":…}]}',
          );
        }
        const req = pageOf(ctx);
        const items = (await allSubtasks('elkeid', taskId)).filter((s) =>
          matches(filter, s as unknown as Record<string, unknown>),
        );
        return mgOk(sortAndPage(items, req));
      },
    }),
    v1({
      method: 'GET',
      path: '/api/v1/agent/getSubTask/:id',
      access: 'read',
      cost: 5,
      summary: 'the subtasks of a task (`:id` = task_id), at most 20,000',
      handler: async (ctx) => mgOk(await allSubtasks('elkeid', taskIdParam(ctx))),
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
        const r = await engine('elkeid', () => tasks().applyResults(items));
        ctx.audit.target = 'subtasks';
        ctx.audit.detail = { items: items.length, ...r };
        return mgOk(r);
      },
    }),

    // Our own API.
    fleet({
      method: 'POST',
      path: '/api/fleet/tasks',
      access: 'write',
      maxBodyBytes: 4 * 1024 * 1024,
      cost: 5,
      summary:
        'create a task: {action: config|task|ctrl|delConfig, tag|id_list|filter, data, …} → {task_id, count}',
      async handler(ctx) {
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
        const created = await engine('fleet', () => tasks().create(input));
        auditCreate(ctx, input, created);
        return apiOk(created, 201);
      },
    }),
    fleet({
      method: 'GET',
      path: '/api/fleet/tasks',
      access: 'read',
      summary: 'tasks, newest first: ?limit=&cursor=',
      async handler(ctx) {
        const limitRaw = Number(ctx.query.get('limit') ?? 100);
        const limit =
          Number.isInteger(limitRaw) && limitRaw > 0 ? Math.min(limitRaw, MAX_TASK_PAGE_SIZE) : 100;
        const cursor = ctx.query.get('cursor') || undefined;
        return apiOk(
          await withCursor(deps, 'fleet', cursor, () =>
            tasks().list({ limit, ...(cursor ? { cursor } : {}) }),
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
        const t = await engine('fleet', () => tasks().get(taskIdParam(ctx)));
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
        const b = ctx.req.body.length === 0 ? {} : objectBody(ctx);
        const r = await runOrCancel(ctx, 'fleet', taskIdParam(ctx), 'run', b);
        return apiOk({ task_id: r.taskID, job_id: r.jobID, released: r.id_count });
      },
    }),
    fleet({
      method: 'POST',
      path: '/api/fleet/tasks/:id/cancel',
      access: 'write',
      summary: 'cancel a task: no new deliveries; batches in flight finish',
      async handler(ctx) {
        const r = await runOrCancel(ctx, 'fleet', taskIdParam(ctx), 'cancel', {});
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
        const limitRaw = Number(ctx.query.get('limit') ?? 100);
        const limit =
          Number.isInteger(limitRaw) && limitRaw > 0 ? Math.min(limitRaw, MAX_TASK_PAGE_SIZE) : 100;
        const cursor = ctx.query.get('cursor') || undefined;
        return apiOk(
          await withCursor(deps, 'fleet', cursor, () =>
            tasks().subtasks(id, { limit, ...(cursor ? { cursor } : {}) }),
          ),
        );
      },
    }),
  ];
}
