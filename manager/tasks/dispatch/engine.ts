/**
 * What every part of the dispatcher shares, in one named object: the store context, who this
 * dispatcher is, its settings, the gateway call, the lease store, the config planner, and the
 * small caches and flags that live as long as the dispatcher. The parts (claim.ts, send.ts,
 * outcomes.ts, …) are plain functions over it.
 */

import type { BackoffOptions } from '../../../platform/backoff.js';
import type { Logger } from '../../../platform/obs/logger.js';
import type { ConfigPlanner } from '../config-plan.js';
import type { TaskContext } from '../context.js';
import type { CommandBatchFn } from '../gateway-client.js';
import type { LeaseStore } from '../lease.js';
import type { TaskMetrics } from '../metrics.js';
import type { ChunkHead, TaskItem } from '../model.js';
import type { MembersCache } from './members.js';

/** A time later than any other (no work due). */
export const NEVER = 8_640_000_000_000_000;

export interface DispatchSettings {
  leaseMs: number;
  backoff: BackoffOptions;
  /** Chunks processed at once. */
  parallel: number;
  /** A chunk due only for a recount waits this long after its last pass. */
  recountMs: number;
}

export interface DispatchHooks {
  /** Runs after a gateway answered, before anything is written (tests). */
  afterSend?: (info: { taskId: string; chunkId: string; controlAddr: string }) => void | Promise<void>;
}

export interface DispatchEngine {
  ctx: TaskContext;
  log: Logger;
  /** Unique per dispatcher: the lease owner. */
  owner: string;
  settings: DispatchSettings;
  now: () => number;
  random: () => number;
  send: CommandBatchFn;
  leases: LeaseStore;
  planner: ConfigPlanner;
  metrics: TaskMetrics;
  members: MembersCache;
  /** The counts last written per task, so an unchanged snapshot is not written again. */
  countsWritten: Map<string, string>;
  hooks: DispatchHooks;
  /** Set by `kill()`: nothing more is written. */
  lifecycle: { killed: boolean };
  /** When this dispatcher last stamped ended tasks (retention.ts). */
  retention: { lastRoundAt: number };
}

/** A chunk this dispatcher holds the lease of, for one pass. */
export interface ClaimedChunk {
  task: TaskItem;
  head: ChunkHead;
  /** The lease version: the fence sent to gateways and written on subtasks. */
  version: number;
  until: number;
  /** The head's `dirty` when claimed; written as `clean` when the pass ends. */
  seenDirty: number;
}

/** One agent's delivery outcome in a pass. */
export type Outcome = { kind: 'delivered' } | { kind: 'failed'; reason: string; final?: boolean };

/** How many of the chunk's agents the task has released so far (from the chunk's start). */
export function releasedIn(task: TaskItem, head: ChunkHead): number {
  return Math.max(0, Math.min(task.released, head.start + head.len) - head.start);
}
