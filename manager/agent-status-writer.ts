/**
 * The gateway side of agent status: keeps the `agents` table and the gateway's aggregate item
 * current without a write per heartbeat. It watches the session registry (a sweep every second;
 * nothing in the agent path changes) and writes:
 *
 *   event                                   write                                   when
 *   agent connected                         UpdateItem (newest connection wins)     next sweep (≤ 1 s)
 *   agent disconnected                      UpdateItem conditional on `conn`        next sweep
 *   first heartbeat, or a change of state,  full item, BatchWriteItem (25/request)  next flush (≤ 1 s)
 *     version, host, IPs or plugin set
 *   no heartbeat for 3 × 60 s               UpdateItem `stale` conditional on conn  next sweep
 *   nothing changed                         full item, BatchWriteItem               every 10 min + 0–60 s
 *   gateway aggregate (counts)              PutItem in configs `fleet#gateway`      every 30 s
 *
 * So steady state costs one write per agent per 10–11 minutes (docs/manager.md has the
 * arithmetic for a million agents), and every status change reaches the store within a couple of
 * seconds. Status as Elkeid defines it, faster: offline = disconnected, or no heartbeat for
 * 180 s, or its gateway stopped publishing (the reader checks the aggregate's age, 60 s);
 * abnormal = the heartbeat's `state` is `abnormal`; else running.
 *
 * Ordering: one agent's writes are serialised here; across gateways, a connection write only
 * lands if it is not older than the stored one (`connectedAtMs`), and the disconnect and stale
 * writes only apply to the connection that wrote them (`conn`), so an agent that moved to
 * another gateway is never marked offline by the old one. Gateway clocks must agree within the
 * agents' reconnect delay (5 s).
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Registry } from 'prom-client';
import type { GatewayLoad } from '../gateway/process/gateway-load.js';
import type { Logger } from '../platform/obs/logger.js';
import { aggregateOf, createDesiredLimit, publishAggregate } from './agent-status/aggregate.js';
import { createPutBatcher, createRefreshSchedule } from './agent-status/put-batcher.js';
import { createStatusWrites } from './agent-status/status-writes.js';
import { type ConnectionTable, createSweeper } from './agent-status/sweep.js';
import { createTagCache } from './agent-status/tag-cache.js';
import { createTimers } from './agent-status/timers.js';
import {
  createPendingWork,
  type HeartbeatWriterStats,
  type WritableSession,
  type WriterContext,
} from './agent-status/types.js';
import { createWriteQueue, createWriteSlots } from './agent-status/write-queue.js';
import { createWriteStats } from './agent-status/write-stats.js';
import type { ConnectionEvent } from './store/connection-history-store.js';
import { deleteGatewayAggregate, type GatewayAggregate } from './store/fleet.js';
import { createManagerStore } from './store.js';

export { MAX_AGGREGATE_KEYS } from './agent-status/aggregate.js';
export type { HeartbeatWriterStats, WritableSession } from './agent-status/types.js';
export type { GatewayAggregate } from './store/fleet.js';

export interface HeartbeatWriterOptions {
  client: DynamoDBClient;
  tablePrefix: string;
  /** This gateway's identity in the agents table and aggregates, e.g. `10.0.0.5:6751`. */
  gatewayId: string;
  /** `host:port` of this gateway's control API (what the manager will call). */
  controlAddr?: string;
  sessions: { all(): Iterable<WritableSession> };
  logger: Logger;
  registry?: Registry;
  /** Default 1000 ms. */
  sweepMs?: number;
  /** Default 1000 ms. */
  flushMs?: number;
  /** Unchanged agents are rewritten this often. Default 600 000 ms (10 min). */
  refreshMs?: number;
  /** Added at random to each refresh so a fleet started together spreads out. Default 60 000 ms. */
  refreshJitterMs?: number;
  /** No heartbeat for this long = offline. Default 180 000 ms (3 × Elkeid's 60 s period). */
  staleAfterMs?: number;
  /** Default 30 000 ms. */
  aggregateMs?: number;
  /** The desired connection limit (`fleet#limit`) is re-read this often (load control). Default 5000 ms. */
  limitMs?: number;
  /** Read each agent's tags at connect and refresh (for aggregates and `tagsOf`). Default true. */
  loadTags?: boolean;
  /**
   * Tag changes reach the connected agents' tags (MQData.Tag) within this (agent-status/tag-watch.ts).
   * Default 20 000 ms.
   */
  tagsMs?: number;
  /** Single-item writes in flight at once. Default 32. */
  maxInFlight?: number;
  /** Longest close() waits for pending writes. Default 10 000 ms. */
  closeTimeoutMs?: number;
  now?: () => number;
  random?: () => number;
  /** This gateway's ingest load, published with each aggregate (gateway/process/gateway-load.ts). */
  load?: () => Promise<GatewayLoad>;
  /** Each connect and disconnect this gateway records (the agent's connection history). */
  onConnection?: (e: ConnectionEvent) => void;
}

export interface HeartbeatWriter {
  /** Starts the sweep, flush and aggregate timers. */
  start(): void;
  /** One sweep now (what the timer does). */
  sweep(): void;
  /** Waits until every write decided so far is done (tests, shutdown). */
  settle(): Promise<void>;
  /** Writes this gateway's aggregate now. */
  publishAggregate(): Promise<GatewayAggregate>;
  aggregate(): GatewayAggregate;
  /** Comma-joined tags of a connected agent ('' when unknown): IngestPipeline's `tagsOf`. */
  tagsOf(agentId: string): string;
  /**
   * The connection limit the manager API stores for this gateway (read every `limitMs` and with
   * each aggregate); undefined when none is set or it expired (`expiresAtMs`, set by rebalance).
   * Enforced by gateway/agent/load-shedder.ts.
   */
  desiredLimit(): number | undefined;
  /** Reads the desired limit now (what the timer does). */
  refreshLimit(): Promise<number | undefined>;
  stats(): HeartbeatWriterStats;
  /**
   * Marks every agent still tracked as disconnected (the gateway is going away), writes it, and
   * removes this gateway's aggregate so statistics drop it at once. Call after the gateway drained.
   */
  close(): Promise<void>;
}

/** The options with their defaults filled in. */
function withDefaults(o: HeartbeatWriterOptions) {
  return {
    sweepMs: o.sweepMs ?? 1000,
    flushMs: o.flushMs ?? 1000,
    refreshMs: o.refreshMs ?? 600_000,
    refreshJitterMs: o.refreshJitterMs ?? 60_000,
    staleAfterMs: o.staleAfterMs ?? 180_000,
    aggregateMs: o.aggregateMs ?? 30_000,
    limitMs: o.limitMs ?? 5000,
    loadTags: o.loadTags ?? true,
    tagsMs: o.tagsMs ?? 20_000,
    maxInFlight: o.maxInFlight ?? 32,
    closeTimeoutMs: o.closeTimeoutMs ?? 10_000,
  };
}

export function createHeartbeatWriter(o: HeartbeatWriterOptions): HeartbeatWriter {
  const opts = withDefaults(o);
  const counts = createWriteStats(o.registry);
  const ctx: WriterContext = {
    store: createManagerStore(o.client, o.tablePrefix),
    gatewayId: o.gatewayId,
    log: o.logger.child({ component: 'agent-status-writer', gateway: o.gatewayId }),
    now: o.now ?? Date.now,
    stats: counts.stats,
    count: counts.count,
    load: o.load,
    onConnection: o.onConnection,
  };
  const table: ConnectionTable = { bySession: new Map(), byAgent: new Map() };
  const pending = createPendingWork();
  const slots = createWriteSlots(opts.maxInFlight);
  const queue = createWriteQueue(ctx, slots, pending);
  const refresh = createRefreshSchedule(opts.refreshMs, opts.refreshJitterMs, o.random ?? Math.random);
  const puts = createPutBatcher(ctx, slots, refresh);
  const tags = createTagCache(ctx, pending, opts.loadTags);
  const writes = createStatusWrites(ctx, tags, puts.schedule);
  const sweeper = createSweeper({
    ctx,
    sessions: o.sessions,
    table,
    writes,
    queue,
    puts,
    tags,
    staleAfterMs: opts.staleAfterMs,
  });
  const limit = createDesiredLimit(ctx);
  const timers = createTimers(ctx.log);
  let closed = false;

  const aggregate = () => aggregateOf(table.byAgent.values(), o, ctx.now());

  async function publish(): Promise<GatewayAggregate> {
    const a = await publishAggregate(ctx, aggregate());
    await limit.refresh();
    return a;
  }

  async function settle(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      await puts.flush();
      if (pending.size === 0 && puts.size === 0) return;
      await pending.settled();
      if (puts.size > 0 && puts.allBusy()) await new Promise((r) => setTimeout(r, 5));
    }
  }

  function start(): void {
    if (timers.running || closed) return;
    timers.every(opts.sweepMs, sweeper.sweep);
    timers.every(opts.flushMs, () => pending.track(puts.flush()));
    timers.every(opts.aggregateMs, () => pending.track(publish()));
    if (opts.limitMs < opts.aggregateMs) timers.every(opts.limitMs, () => pending.track(limit.refresh()));
    if (opts.loadTags) {
      const poll = () => tags.poll(() => table.byAgent.values());
      poll();
      timers.every(opts.tagsMs, poll);
    }
    pending.track(publish()).catch((err: unknown) => ctx.log.warn({ err }, 'first aggregate failed'));
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    timers.stop();
    for (const [session, agent] of table.bySession) {
      table.bySession.delete(session);
      sweeper.gone(agent);
    }
    // Bounded: with the store down, retries would otherwise hold the shutdown for ~30 s.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      settle(),
      new Promise((r) => {
        timer = setTimeout(r, opts.closeTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    queue.abandon();
    await deleteGatewayAggregate(ctx.store, o.gatewayId).catch((err: unknown) =>
      ctx.log.warn({ err }, 'could not remove the gateway aggregate'),
    );
  }

  return {
    start,
    sweep: sweeper.sweep,
    settle,
    publishAggregate: publish,
    aggregate,
    tagsOf: (agentId) => table.byAgent.get(agentId)?.tags.join(',') ?? '',
    desiredLimit: limit.current,
    refreshLimit: limit.refresh,
    stats: () => ({
      ...ctx.stats,
      writes: { ...ctx.stats.writes },
      queuedPuts: puts.size,
      tracked: table.bySession.size,
    }),
    close,
  };
}
