/**
 * The task routes' input: Elkeid AgentTask documents and our own bodies checked and turned into
 * the engine's inputs (tasks/types.ts), page and filter requests, result items, audit details.
 * Limits: pages of at most 500, id_list within one DynamoDB item, result posts of 5000 items.
 */
import { MgCode, modelPage, type PageRequest, parsePage } from '../envelope.js';
import { type Filter, FilterError, parseFilter } from '../filter.js';
import { badRequest, type Ctx, HttpError } from '../router.js';
import type { CommandBody, CreateTaskInput, ResultItem, TaskTarget, TaskType } from '../tasks/types.js';

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

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function objectBody(ctx: Ctx): Record<string, unknown> {
  const b = ctx.body();
  if (!isObject(b)) throw badRequest('the body must be a JSON object');
  return b;
}

export function optionalString(b: Record<string, unknown>, k: string, max = 256): string | undefined {
  const v = b[k];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || v.length > max)
    throw badRequest(`${k} must be a string of at most ${max} characters`);
  return v;
}

export function optionalInt(
  b: Record<string, unknown>,
  k: string,
  min: number,
  max: number,
): number | undefined {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw badRequest(`${k} must be an integer from ${min} to ${max}`);
  }
  return v;
}

export function optionalNumber(b: Record<string, unknown>, k: string): number | undefined {
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

export function auditCreate(
  ctx: Ctx,
  input: CreateTaskInput,
  created: { task_id: string; count: number },
): void {
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

export function pageOf(ctx: Ctx): PageRequest {
  const p = parsePage(ctx.query);
  p.pageSize = Math.min(p.pageSize, MAX_TASK_PAGE_SIZE);
  return p;
}

export function filterOf(ctx: Ctx): { raw: unknown; filter: Filter } {
  const raw = ctx.req.body.length === 0 ? {} : ctx.body();
  try {
    return { raw, filter: parseFilter(raw) };
  } catch (err) {
    if (err instanceof FilterError) throw badRequest(err.message);
    throw err;
  }
}

export function sortAndPage<T>(items: T[], req: PageRequest) {
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

/** The `:id` of a task route, checked for shape. */
export function taskIdParam(ctx: Ctx): string {
  const id = ctx.params.id ?? '';
  if (!TASK_ID.test(id)) throw badRequest('task id is not valid');
  return id;
}
