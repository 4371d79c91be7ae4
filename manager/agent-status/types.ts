/** The status writer's public shapes and the per-agent state its parts share (agent-status-writer.ts). */
import type { AgentHeader, Detail } from '../../gateway/agent/heartbeat.js';
import type { GatewayLoad } from '../../gateway/process/gateway-load.js';
import type { Logger } from '../../platform/obs/logger.js';
import type { ConnectionEvent } from '../store/connection-history-store.js';
import type { ManagerStore } from '../store.js';

/** What the writer reads of a gateway session (gateway/agent/sessions.ts AgentSession). */
export interface WritableSession {
  readonly agentId: string;
  readonly peer: string;
  /** Unix seconds. */
  readonly connectedAt: number;
  readonly header: AgentHeader;
  readonly detail: Detail | undefined;
  readonly plugins: ReadonlyMap<string, Detail>;
}

export interface HeartbeatWriterStats {
  tracked: number;
  writes: {
    connect: number;
    disconnect: number;
    stale: number;
    put: number;
    aggregate: number;
    counter: number;
  };
  batches: number;
  errors: number;
  queuedPuts: number;
}

export type WriteKind = keyof HeartbeatWriterStats['writes'];

/**
 * Where a tracked connection stands: `pending` until its connection write lands, `connected`
 * after, `superseded` when a newer connection of the agent (here or on another gateway) took
 * over, `gone` once the session ended.
 */
export type Phase = 'pending' | 'connected' | 'superseded' | 'gone';

/** One agent connection this gateway tracks, and what was last written for it. */
export interface TrackedAgent {
  readonly session: WritableSession;
  readonly agentId: string;
  /** This connection's id in the store: disconnect and stale writes apply only to it. */
  readonly conn: string;
  readonly connectedAtMs: number;
  phase: Phase;
  connectWritten: boolean;
  /** When the session was first seen here (ms); written as firstSeenMs of a new agent. */
  readonly stamp: number;
  firstSeenMs: number;
  detail: Detail | undefined;
  hbSeenAtMs: number;
  /** Significant fields as last written; '' before the first full write. */
  sig: string;
  stale: boolean;
  state: 'running' | 'abnormal';
  nextRefreshAtMs: number;
  queuedPut: boolean;
  /** Single-item writes of this agent running now (a batch put waits for them). */
  busy: number;
  putInFlight: Promise<void> | undefined;
  /** The agent's single-item writes, one after another. */
  chain: Promise<void>;
  tags: string[];
}

/** What every part of the writer uses: the store, who we are, the clock, counts and the log. */
export interface WriterContext {
  readonly store: ManagerStore;
  readonly gatewayId: string;
  readonly log: Logger;
  readonly now: () => number;
  readonly stats: HeartbeatWriterStats;
  /** Counts `n` writes of `kind` (stats and the metric). */
  count(kind: WriteKind, n?: number): void;
  /** This gateway's ingest load, published with each aggregate (gateway/process/gateway-load.ts). */
  readonly load?: (() => Promise<GatewayLoad>) | undefined;
  /** Each connect and disconnect this gateway records (the agent's connection history). */
  readonly onConnection?: ((e: ConnectionEvent) => void) | undefined;
}

/** Promises of background work, so settle() and close() can wait for all of it. */
export interface PendingWork {
  track<T>(p: Promise<T>): Promise<T>;
  readonly size: number;
  /** Waits for what is pending now. */
  settled(): Promise<void>;
}

export function createPendingWork(): PendingWork {
  const pending = new Set<Promise<unknown>>();
  return {
    track(p) {
      pending.add(p);
      p.finally(() => pending.delete(p)).catch(() => {});
      return p;
    },
    get size() {
      return pending.size;
    },
    async settled() {
      await Promise.allSettled([...pending]);
    },
  };
}
