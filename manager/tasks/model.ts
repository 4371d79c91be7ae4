/**
 * The stored shape of tasks, subtasks and chunks (tables of platform/store/schema.ts), and the
 * pure rules over them: which states are final, how a subtask counts for Elkeid's task numbers.
 *
 *   tasks     taskId                      definition, state, `released`, `active` (sparse GSI byActive),
 *                                         `listPk` (sparse GSI byTime, newest first), counts snapshot
 *             `req#<request_id>`          idempotency record → the task created for that request
 *   subtasks  (taskId, agentId)           idx, chunk, token, state, attempts, gateway, msg, result, times
 *   chunks    (taskId, `h#<chunk>`)       head: start, len, lease (owner, until, version = fence),
 *                                         due time, result marks (dirty/clean), counters by state;
 *                                         config/ctrl tasks also `st` (one state letter per agent)
 *                                         and `gw` (the gateway of each agent's delivery)
 *             (taskId, `m#<chunk>`)       members: the chunk's agent ids and tokens in index order (immutable)
 *
 * Config and ctrl tasks keep each agent's state in its chunk head (`st`): a delivery is then one
 * letter in the head's conditional release instead of a subtask write per agent, and the
 * subtask item is written only for agents that failed an attempt (attempts, retry time, reason).
 * Their subtask views overlay the head (service.ts). No result ever targets those subtasks, so
 * the lease holder is the only writer of their state. Agent_Task subtasks keep their state in
 * their items: results update them concurrently.
 *
 * Heads and members are separate items so that the dispatcher's per-tick Query of a task's heads
 * reads ~200 bytes per chunk instead of the agent lists.
 */
import { CHUNK_HEAD_SUMMARY_FIELDS } from '../../platform/store/schema.js';
import type { SubtaskState, TaskCounts, TaskType } from './types.js';

export const CHUNK_SIZE = 100;
export const LIST_PK = 'task';

/** `active` of a running task (what dispatchers claim from, sparse index byActive). */
export const ACTIVE_RUNNING = '1';
/** `active` of an ended task whose subtasks and chunks still need their expiry (dispatch/retention.ts). */
export const ACTIVE_RETAIN = 'retain';

/** The letters of a chunk head's `st`, and back. */
export const ST_LETTER = { created: 'c', failed: 'f', result_succeed: 'S', result_failed: 'F' } as const;
export const ST_STATE: Record<string, SubtaskState> = {
  c: 'created',
  f: 'failed',
  S: 'result_succeed',
  F: 'result_failed',
};

export const FINAL: ReadonlySet<SubtaskState> = new Set(['result_succeed', 'result_failed']);

export const SUBTASK_STATES: readonly SubtaskState[] = [
  'created',
  'running',
  'succeed',
  'failed',
  'result_succeed',
  'result_failed',
];

/** Chunk counter attribute per subtask state (top-level numbers: SET by the lease holder). */
export const COUNTER_ATTR: Record<SubtaskState, string> = {
  created: 'nCreated',
  running: 'nRunning',
  succeed: 'nSucceed',
  failed: 'nFailed',
  result_succeed: 'nResultSucceed',
  result_failed: 'nResultFailed',
};

/** What a tick and a task view read of a head: everything but the per-agent `st` and `gw`. */
export const HEAD_SUMMARY_ATTRS = ['taskId', 'chunkId', ...CHUNK_HEAD_SUMMARY_FIELDS] as const;

export const headId = (chunk: number) => `h#${String(chunk).padStart(7, '0')}`;
export const membersId = (chunk: number) => `m#${String(chunk).padStart(7, '0')}`;
export const chunkOfId = (id: string) => Number(id.slice(2));
export const requestKey = (requestId: string) => `req#${requestId}`;

export interface TaskItem {
  taskId: string;
  taskType: TaskType;
  action: string;
  taskName: string;
  user: string;
  tag: string;
  idList: string[];
  /** The filter as posted (JSON text), for the view. */
  filter?: string;
  /** The command body as posted (CommandBody JSON text; config items unmerged). */
  data: string;
  state: 'created' | 'running' | 'finished' | 'cancelled';
  /**
   * "1" (ACTIVE_RUNNING) while dispatchers should deliver it; "retain" (ACTIVE_RETAIN) once ended,
   * until its items carry their expiry; absent otherwise (sparse index byActive).
   */
  active?: string;
  listPk: string;
  total: number;
  released: number;
  chunks: number;
  concurrence: number;
  maxAttempts: number;
  /** Seconds an Agent_Task subtask may wait for its result after delivery. */
  timeoutS: number;
  jobs: string[];
  counts?: TaskCounts;
  quick?: boolean;
  requestId?: string;
  createdAt: number;
  updatedAt: number;
  /** Epoch seconds after which the item is gone (the table's TTL attribute); set on a final state. */
  expiresAt?: number;
  /** Retention stamping in progress (store/retention-store.ts): where it resumes. */
  sweepKey?: string;
  /** The dispatcher stamping the task's items, and until when (a lease). */
  sweepOwner?: string;
  sweepUntil?: number;
}

export interface SubtaskItem {
  taskId: string;
  agentId: string;
  idx: number;
  chunk: number;
  token: string;
  taskType: TaskType;
  state: SubtaskState;
  attempts: number;
  gateway?: string;
  msg?: string;
  /** When the next attempt is due (ms), after a failed one. */
  retryAt?: number;
  /** Agent_Task: delivered at (ms); the result is due by `deliveredAt + timeoutS`. */
  deliveredAt?: number;
  /** The lease version (fence) of the last dispatcher write. */
  fence?: number;
  result?: Record<string, string>;
  insertAt: number;
  updatedAt: number;
  /** Epoch seconds (TTL), stamped once the task is final. */
  expiresAt?: number;
}

export interface ChunkHead {
  taskId: string;
  chunkId: string;
  start: number;
  len: number;
  /** "done" when every agent of the chunk is final. */
  state?: 'done';
  leaseOwner?: string;
  leaseUntil?: number;
  leaseVersion: number;
  /** Earliest time (ms) the chunk has work: a retry or a result deadline. */
  nextAt?: number;
  /** The task's `released` when the chunk was last processed: new releases make it due again. */
  handled?: number;
  /** Config/ctrl tasks: one letter per agent of the chunk (ST_LETTER). */
  st?: string;
  /** Config/ctrl tasks: the gateway control address of each agent's last attempt ('' before). */
  gw?: string[];
  /** When the last pass released the lease (ms). */
  passAt?: number;
  /** Bumped (ADD) by result callbacks; a holder that saw `dirty` writes `clean` = it. */
  dirty?: number;
  clean?: number;
  nCreated?: number;
  nRunning?: number;
  nSucceed?: number;
  nFailed?: number;
  nResultSucceed?: number;
  nResultFailed?: number;
  /** Epoch seconds (TTL), stamped once the task is final. */
  expiresAt?: number;
}

/** The head fields a subtask view overlays on config/ctrl subtasks (service.ts `overlay`). */
export type HeadOverlay = Pick<ChunkHead, 'chunkId' | 'start' | 'st' | 'gw'>;

/** A chunk's members item `m#<n>`: agent ids and tokens in index order (immutable). */
export interface ChunkMembers {
  agentIds: string[];
  tokens: string[];
}

export function emptyCounts(total = 0, released = 0): TaskCounts {
  return {
    total,
    released,
    created: 0,
    running: 0,
    succeed: 0,
    failed: 0,
    result_succeed: 0,
    result_failed: 0,
  };
}

export function countsOfHead(h: Partial<ChunkHead>): Record<SubtaskState, number> {
  return {
    created: h.nCreated ?? 0,
    running: h.nRunning ?? 0,
    succeed: h.nSucceed ?? 0,
    failed: h.nFailed ?? 0,
    result_succeed: h.nResultSucceed ?? 0,
    result_failed: h.nResultFailed ?? 0,
  };
}

/** Sums chunk heads into the task's counts (a chunk never counted yet counts as all created). */
export function sumHeads(heads: readonly Partial<ChunkHead>[], total: number, released: number): TaskCounts {
  const out = emptyCounts(total, released);
  for (const h of heads) {
    const c = countsOfHead(h);
    const counted = Object.values(c).reduce((a, b) => a + b, 0);
    if (counted === 0) c.created = h.len ?? 0;
    for (const s of SUBTASK_STATES) out[s] += c[s];
  }
  return out;
}

/** True when a subtask needs no more work from the dispatcher (final, or waiting for its result). */
export function settled(s: Pick<SubtaskItem, 'state'>): boolean {
  return FINAL.has(s.state) || s.state === 'succeed';
}
