/**
 * The dispatcher: every manager process (and the scheduled Lambda) runs one; they cooperate
 * through conditional writes on chunk heads only (lease.ts). Its parts live in dispatch/:
 * claim.ts (running tasks, due chunks, leases), progress.ts (counts, finish), grouping.ts (by
 * gateway and command), send.ts (signed batches, fence, lease renewal), retry.ts (backoff),
 * release.ts (counters in the lease release), summary-pass.ts / items-pass.ts (a pass over a
 * config/ctrl or an Agent_Task chunk), tick.ts, loop.ts (the timer). One tick:
 *
 *   Query tasks byActive → BatchGet the task items → per running task, Query its chunk heads
 *   (`h#…`, ~200 bytes each) → claim due chunks (≤ `concurrence` live leases per task) → per
 *   claimed chunk: members (cached), BatchGet subtasks + agent items → a config task writes its
 *   items into the agents' agent#<id> scopes first (write-ahead, config-plan.ts) → group the
 *   agents that need a delivery by (gateway control address, command) → one signed POST
 *   /command/batch per group
 *   with the chunk's fence and the agents' tokens → write the outcomes → release the lease with
 *   the chunk's recomputed counters, its next due time and the result mark it has seen.
 *
 * Outcomes: sent (or `duplicate`: the gateway already sent or saw answered that token) →
 * Agent_Config / Agent_Ctrl `result_succeed` at once (Elkeid counts a delivered config as done),
 * Agent_Task `succeed` = waiting for the agent's result record; not_connected / queue_full /
 * timed_out / closed / transport error / agent offline → `failed` with a retry time (exponential
 * backoff, full jitter) until `max_attempts`, then `result_failed` with the last reason. `fenced`
 * → this dispatcher lost the chunk: it writes nothing. An Agent_Task subtask still `succeed` past
 * its deadline → `result_failed` "Timeout waiting for agent response" (the chunk stays due at the
 * earliest deadline, so this sweep is part of the same loop).
 *
 * Writes: config/ctrl outcomes with BatchWriteItem (no result callback ever targets those
 * subtasks, so the lease holder is their only writer; the lease is renewed — a conditional write —
 * right before, so a holder that lost its lease stops there); Agent_Task outcomes with a
 * conditional UpdateItem `state NOT IN (result_succeed, result_failed)`, since the agent's result
 * may land first. Counters are recomputed from the chunk's subtasks on every pass (not ADDed), so
 * a crash between a subtask write and the release cannot skew them; result callbacks only bump the
 * head's `dirty`, which makes the chunk due for a recount.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Registry } from 'prom-client';
import { type BackoffOptions, DEFAULT_BACKOFF } from '../../platform/backoff.js';
import type { Logger } from '../../platform/obs/logger.js';
import { createAgentReader } from '../agents.js';
import { createManagerStore } from '../store.js';
import { createTagStore } from '../tags.js';
import { createConfigPlanner } from './config-plan.js';
import { type TaskContext, taskTables } from './context.js';
import type { DispatchEngine, DispatchHooks } from './dispatch/engine.js';
import { TickLoop } from './dispatch/loop.js';
import { MembersCache } from './dispatch/members.js';
import { type TickResult, tick } from './dispatch/tick.js';
import { type CommandBatchFn, createGatewayClient, GATEWAY_CALL_TIMEOUT_MS } from './gateway-client.js';
import { createTaskMetrics } from './metrics.js';
import { createDynamoLeaseStore } from './store/lease-store.js';
import type { TaskCounts } from './types.js';

export { NEVER } from './dispatch/engine.js';

export interface DispatcherOptions {
  /** Either a built context (the manager role) or a client and prefix (the Lambda entry). */
  ctx?: TaskContext;
  client?: DynamoDBClient;
  tablePrefix?: string;
  aksk: ReadonlyArray<readonly [string, string]>;
  logger: Logger;
  registry?: Registry;
  /** With `client`: days an ended task is kept. Default DEFAULT_TASK_RETENTION_DAYS. */
  taskRetentionDays?: number;
  /** Unique per dispatcher; default host:pid:random. */
  owner?: string;
  /** Default 10 000 ms. */
  leaseMs?: number;
  /** Timer period while some task is active. Default 250 ms. */
  busyMs?: number;
  /** Timer period with no active task. Default 1000 ms. */
  idleMs?: number;
  backoff?: BackoffOptions;
  /**
   * A chunk due only because results arrived (its `dirty` mark) waits this long after its last
   * pass, so a burst of 100 results is one recount, not 100. Default 1000 ms.
   */
  recountMs?: number;
  /** Chunks this dispatcher processes at once. Default 16. */
  parallelChunks?: number;
  /** The gateway call (tests substitute it); default signed fetch with a 15 s timeout. */
  send?: CommandBatchFn;
  /** Test hooks: `afterSend` runs after a gateway answered, before anything is written. */
  hooks?: DispatchHooks;
  now?: () => number;
  random?: () => number;
}

export interface Dispatcher {
  readonly owner: string;
  tick(): Promise<TickResult>;
  start(): void;
  /** Runs the next tick now instead of after the idle period (a task was just run). */
  wake(): void;
  /** Stops the timer and waits for the tick in progress (leases are released by it). */
  stop(): Promise<void>;
  /** Simulates a crash: stops at once, writes nothing more, releases no lease. */
  kill(): void;
}

/**
 * How long one gateway call of a dispatcher with `leaseMs` leases may wait: it must end well
 * inside the lease, or the holder loses the chunk while waiting; never longer than
 * GATEWAY_CALL_TIMEOUT_MS (the bound the dispatcher Lambda's reserve is built on).
 */
export function gatewayCallTimeoutMs(leaseMs: number): number {
  return Math.min(GATEWAY_CALL_TIMEOUT_MS, Math.max(1000, leaseMs - 3000));
}

function buildEngine(o: DispatcherOptions): DispatchEngine {
  const ctx = o.ctx ?? contextFrom(o);
  const leaseMs = o.leaseMs ?? 10_000;
  return {
    ctx,
    log: ctx.logger.child({ component: 'dispatcher' }),
    owner: o.owner ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    settings: {
      leaseMs,
      backoff: o.backoff ?? DEFAULT_BACKOFF,
      parallel: o.parallelChunks ?? 16,
      recountMs: o.recountMs ?? 1000,
    },
    now: o.now ?? ctx.now,
    random: o.random ?? Math.random,
    send: o.send ?? createGatewayClient({ aksk: o.aksk, timeoutMs: gatewayCallTimeoutMs(leaseMs) }),
    leases: createDynamoLeaseStore(ctx.store, ctx.tables.chunks),
    planner: createConfigPlanner(ctx),
    metrics: ctx.metrics,
    members: new MembersCache(ctx),
    countsWritten: new Map(),
    hooks: o.hooks ?? {},
    lifecycle: { killed: false },
    retention: { lastRoundAt: Number.NEGATIVE_INFINITY },
  };
}

export function createDispatcher(o: DispatcherOptions): Dispatcher {
  const engine = buildEngine(o);
  const runTick = () => tick(engine);
  const loop = new TickLoop({
    tick: runTick,
    log: engine.log,
    busyMs: o.busyMs ?? 250,
    idleMs: o.idleMs ?? 1000,
  });
  return {
    owner: engine.owner,
    tick: runTick,
    start: () => loop.start(),
    wake: () => loop.wake(),
    stop: () => loop.stop(),
    kill() {
      engine.lifecycle.killed = true;
      loop.kill();
    },
  };
}

/** A context from a bare client (the Lambda entry and tools). */
export function contextFrom(
  o: Pick<DispatcherOptions, 'client' | 'tablePrefix' | 'logger' | 'registry' | 'now' | 'taskRetentionDays'>,
): TaskContext {
  if (!o.client || o.tablePrefix === undefined)
    throw new Error('createDispatcher needs ctx, or client and tablePrefix');
  const store = createManagerStore(o.client, o.tablePrefix);
  const now = o.now ?? Date.now;
  return {
    store,
    tables: taskTables(store),
    agents: createAgentReader(store, { now, gatewayCacheMs: 1000 }),
    tags: createTagStore(store, { now }),
    logger: o.logger,
    metrics: createTaskMetrics(o.registry ?? new Registry()),
    now,
    ...(o.taskRetentionDays ? { retentionS: o.taskRetentionDays * 86_400 } : {}),
  };
}

export type { TaskCounts };
