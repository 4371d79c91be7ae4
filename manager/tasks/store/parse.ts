/**
 * Checking parsers for the items the task repository reads (shapes in ../model.ts). DynamoDB is
 * schemaless, so an item is whatever some writer put there: each field is checked for its type
 * and a malformed item is refused with a MalformedItemError naming the table, the key and the
 * field, instead of being cast and failing later far from the cause.
 */

import type { ChunkHead, ChunkMembers, HeadOverlay, SubtaskItem, TaskItem } from '../model.js';
import type { SubtaskState, TaskCounts, TaskType } from '../types.js';

export class MalformedItemError extends Error {
  override readonly name = 'MalformedItemError';
}

const TASK_TYPES: ReadonlySet<string> = new Set(['Agent_Config', 'Agent_Task', 'Agent_Ctrl']);
const TASK_STATES: ReadonlySet<string> = new Set(['created', 'running', 'finished', 'cancelled']);
const SUBTASK_STATES: ReadonlySet<string> = new Set([
  'created',
  'running',
  'succeed',
  'failed',
  'result_succeed',
  'result_failed',
]);
const COUNT_KEYS = [
  'total',
  'released',
  'created',
  'running',
  'succeed',
  'failed',
  'result_succeed',
  'result_failed',
] as const;

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Typed field access over one raw item; every getter throws MalformedItemError on a wrong type. */
export class FieldReader {
  readonly raw: Record<string, unknown>;
  readonly #what: string;

  constructor(raw: unknown, what: string) {
    if (!isRecord(raw)) throw new MalformedItemError(`${what}: not an item`);
    this.raw = raw;
    this.#what = what;
  }

  #bad(key: string, want: string): MalformedItemError {
    return new MalformedItemError(`${this.#what}: ${key} is not ${want}`);
  }

  str(key: string): string {
    const v = this.raw[key];
    if (typeof v !== 'string') throw this.#bad(key, 'a string');
    return v;
  }

  num(key: string): number {
    const v = this.raw[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.#bad(key, 'a number');
    return v;
  }

  optStr(key: string): string | undefined {
    return this.raw[key] === undefined ? undefined : this.str(key);
  }

  optNum(key: string): number | undefined {
    return this.raw[key] === undefined ? undefined : this.num(key);
  }

  optBool(key: string): boolean | undefined {
    const v = this.raw[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw this.#bad(key, 'a boolean');
    return v;
  }

  /** A list of strings; absent = empty. */
  strings(key: string): string[] {
    const v = this.raw[key];
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
      throw this.#bad(key, 'a list of strings');
    return v as string[];
  }

  oneOf<T extends string>(key: string, allowed: ReadonlySet<string>): T {
    const v = this.str(key);
    if (!allowed.has(v)) throw this.#bad(key, `one of ${[...allowed].join(', ')}`);
    return v as T;
  }

  optStringMap(key: string): Record<string, string> | undefined {
    const v = this.raw[key];
    if (v === undefined) return undefined;
    if (!isRecord(v) || !Object.values(v).every((x) => typeof x === 'string'))
      throw this.#bad(key, 'a map of strings');
    return v as Record<string, string>;
  }

  optCounts(key: string): TaskCounts | undefined {
    const v = this.raw[key];
    if (v === undefined) return undefined;
    if (!isRecord(v)) throw this.#bad(key, 'task counts');
    const n = (k: (typeof COUNT_KEYS)[number]): number => {
      const x = v[k];
      if (typeof x !== 'number') throw this.#bad(`${key}.${k}`, 'a number');
      return x;
    };
    return {
      total: n('total'),
      released: n('released'),
      created: n('created'),
      running: n('running'),
      succeed: n('succeed'),
      failed: n('failed'),
      result_succeed: n('result_succeed'),
      result_failed: n('result_failed'),
    };
  }
}

/** Copies the defined values of `optional` onto `base` (the items omit absent attributes). */
function withDefined<T extends object>(base: T, optional: { [K in keyof T]?: T[K] | undefined }): T {
  for (const [k, v] of Object.entries(optional))
    if (v !== undefined) (base as Record<string, unknown>)[k] = v;
  return base;
}

export function parseTaskItem(raw: unknown): TaskItem {
  const f = new FieldReader(raw, `task ${String((raw as { taskId?: unknown } | null)?.taskId)}`);
  const base: TaskItem = {
    taskId: f.str('taskId'),
    taskType: f.oneOf<TaskType>('taskType', TASK_TYPES),
    action: f.str('action'),
    taskName: f.str('taskName'),
    user: f.str('user'),
    tag: f.optStr('tag') ?? '',
    idList: f.strings('idList'),
    data: f.str('data'),
    state: f.oneOf<TaskItem['state']>('state', TASK_STATES),
    listPk: f.str('listPk'),
    total: f.num('total'),
    released: f.num('released'),
    chunks: f.num('chunks'),
    concurrence: f.num('concurrence'),
    maxAttempts: f.num('maxAttempts'),
    timeoutS: f.num('timeoutS'),
    jobs: f.strings('jobs'),
    createdAt: f.num('createdAt'),
    updatedAt: f.num('updatedAt'),
  };
  return withDefined(base, {
    filter: f.optStr('filter'),
    active: f.optStr('active'),
    counts: f.optCounts('counts'),
    quick: f.optBool('quick'),
    requestId: f.optStr('requestId'),
    expiresAt: f.optNum('expiresAt'),
    sweepKey: f.optStr('sweepKey'),
    sweepOwner: f.optStr('sweepOwner'),
    sweepUntil: f.optNum('sweepUntil'),
  });
}

export function parseSubtaskItem(raw: unknown): SubtaskItem {
  const r = raw as { taskId?: unknown; agentId?: unknown } | null;
  const f = new FieldReader(raw, `subtask ${String(r?.taskId)}/${String(r?.agentId)}`);
  const base: SubtaskItem = {
    taskId: f.str('taskId'),
    agentId: f.str('agentId'),
    idx: f.num('idx'),
    chunk: f.num('chunk'),
    token: f.optStr('token') ?? '',
    taskType: f.oneOf<TaskType>('taskType', TASK_TYPES),
    state: f.oneOf<SubtaskState>('state', SUBTASK_STATES),
    attempts: f.num('attempts'),
    insertAt: f.num('insertAt'),
    updatedAt: f.num('updatedAt'),
  };
  return withDefined(base, {
    gateway: f.optStr('gateway'),
    msg: f.optStr('msg'),
    retryAt: f.optNum('retryAt'),
    deliveredAt: f.optNum('deliveredAt'),
    fence: f.optNum('fence'),
    result: f.optStringMap('result'),
    expiresAt: f.optNum('expiresAt'),
  });
}

export function parseChunkHead(raw: unknown): ChunkHead {
  const r = raw as { taskId?: unknown; chunkId?: unknown } | null;
  const f = new FieldReader(raw, `chunk ${String(r?.taskId)}/${String(r?.chunkId)}`);
  const rawState = f.optStr('state');
  if (rawState !== undefined && rawState !== 'done')
    throw new MalformedItemError(`chunk ${String(r?.taskId)}/${String(r?.chunkId)}: state is not "done"`);
  const state = rawState === undefined ? undefined : ('done' as const);
  const base: ChunkHead = {
    taskId: f.str('taskId'),
    chunkId: f.str('chunkId'),
    start: f.num('start'),
    len: f.num('len'),
    leaseVersion: f.optNum('leaseVersion') ?? 0,
  };
  const gw = f.raw.gw === undefined ? undefined : f.strings('gw');
  return withDefined(base, {
    state,
    leaseOwner: f.optStr('leaseOwner'),
    leaseUntil: f.optNum('leaseUntil'),
    nextAt: f.optNum('nextAt'),
    handled: f.optNum('handled'),
    st: f.optStr('st'),
    gw,
    passAt: f.optNum('passAt'),
    dirty: f.optNum('dirty'),
    clean: f.optNum('clean'),
    nCreated: f.optNum('nCreated'),
    nRunning: f.optNum('nRunning'),
    nSucceed: f.optNum('nSucceed'),
    nFailed: f.optNum('nFailed'),
    nResultSucceed: f.optNum('nResultSucceed'),
    nResultFailed: f.optNum('nResultFailed'),
    expiresAt: f.optNum('expiresAt'),
  });
}

/** The part of a head a subtask view overlays (projection chunkId, start, st, gw). */
export function parseHeadOverlay(raw: unknown): HeadOverlay {
  const f = new FieldReader(raw, 'chunk head');
  const gw = f.raw.gw === undefined ? undefined : f.strings('gw');
  return withDefined({ chunkId: f.str('chunkId'), start: f.num('start') } as HeadOverlay, {
    st: f.optStr('st'),
    gw,
  });
}

export function parseMembers(raw: unknown): ChunkMembers {
  const f = new FieldReader(raw, 'chunk members');
  return { agentIds: f.strings('agentIds'), tokens: f.strings('tokens') };
}

/** Where an agent is now, as the dispatcher reads it (agents table, projection). */
export interface AgentPlacement {
  agentId: string;
  online?: boolean;
  gateway?: string;
  controlAddr?: string;
}

export function parseAgentPlacement(raw: unknown): AgentPlacement {
  const f = new FieldReader(raw, 'agent');
  // Other writers own the agents table: an attribute of another type means "unknown", not corrupt.
  const out: AgentPlacement = { agentId: f.str('agentId') };
  if (typeof f.raw.online === 'boolean') out.online = f.raw.online;
  if (typeof f.raw.gateway === 'string') out.gateway = f.raw.gateway;
  if (typeof f.raw.controlAddr === 'string') out.controlAddr = f.raw.controlAddr;
  return out;
}
