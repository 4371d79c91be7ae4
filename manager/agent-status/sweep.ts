/**
 * The sweep (every second): compares the gateway's sessions with the connections tracked here.
 * A new session is tracked and its connection written; a session that ended is written as a
 * disconnect; a connected agent is observed: a significant heartbeat change is queued for the
 * next flush, a long silence is marked stale, and a due refresh rewrites the item and re-reads
 * its tags.
 */
import type { PutBatcher } from './put-batcher.js';
import type { StatusWrites } from './status-writes.js';
import type { TagCache } from './tag-cache.js';
import { signature, takeDetail, trackSession } from './tracked-agent.js';
import type { TrackedAgent, WritableSession, WriterContext } from './types.js';
import type { WriteQueue } from './write-queue.js';

/** The connections this gateway tracks, by session and by agent (the newest per agent). */
export interface ConnectionTable {
  readonly bySession: Map<WritableSession, TrackedAgent>;
  readonly byAgent: Map<string, TrackedAgent>;
}

export interface SweepParts {
  ctx: WriterContext;
  sessions: { all(): Iterable<WritableSession> };
  table: ConnectionTable;
  writes: StatusWrites;
  queue: WriteQueue;
  puts: PutBatcher;
  tags: TagCache;
  /** No heartbeat for this long = stale (offline). */
  staleAfterMs: number;
}

export interface Sweeper {
  sweep(): void;
  /** The session ended (or the gateway closes): its disconnect is written unless superseded. */
  gone(agent: TrackedAgent): void;
}

export function createSweeper(p: SweepParts): Sweeper {
  const { ctx, table } = p;
  let connSeq = 0;

  function track(session: WritableSession, at: number): TrackedAgent {
    const conn = `${ctx.gatewayId}#${at.toString(36)}#${(++connSeq).toString(36)}`;
    const agent = trackSession(session, conn, at);
    table.bySession.set(session, agent);
    const previous = table.byAgent.get(session.agentId);
    table.byAgent.set(session.agentId, agent);
    if (previous && previous !== agent) {
      // Replaced on this gateway (newest wins): the old session's writes stop here.
      table.bySession.delete(previous.session);
      previous.phase = 'superseded';
    }
    p.queue.enqueue(agent, p.writes.connect(agent), () => agent.phase === 'pending');
    return agent;
  }

  function observe(agent: TrackedAgent, at: number): void {
    const d = agent.session.detail;
    if (d !== undefined && d !== agent.detail) {
      takeDetail(agent, d);
      agent.hbSeenAtMs = at;
      if (agent.sig === '' || agent.stale || signature(agent.session, d) !== agent.sig)
        p.puts.schedule(agent);
    }
    if (!agent.stale && at - agent.hbSeenAtMs >= p.staleAfterMs) {
      agent.stale = true;
      p.queue.enqueue(agent, p.writes.stale(agent));
    }
    if (agent.detail !== undefined && !agent.stale && at >= agent.nextRefreshAtMs) {
      agent.nextRefreshAtMs = Number.POSITIVE_INFINITY; // set again when the write lands
      p.puts.schedule(agent);
      p.tags.reload(agent);
    }
  }

  function gone(agent: TrackedAgent): void {
    const was = agent.phase;
    agent.phase = 'gone';
    if (table.byAgent.get(agent.agentId) === agent) table.byAgent.delete(agent.agentId);
    if (was !== 'superseded') p.queue.enqueue(agent, p.writes.disconnect(agent), () => true);
  }

  return {
    gone,
    sweep() {
      const at = ctx.now();
      const live = new Set<TrackedAgent>();
      for (const session of p.sessions.all()) {
        const agent = table.bySession.get(session) ?? track(session, at);
        live.add(agent);
        if (agent.phase === 'connected') observe(agent, at);
      }
      for (const [session, agent] of table.bySession) {
        if (live.has(agent)) continue;
        table.bySession.delete(session);
        gone(agent);
      }
      ctx.stats.tracked = table.bySession.size;
      ctx.stats.queuedPuts = p.puts.size;
    },
  };
}
