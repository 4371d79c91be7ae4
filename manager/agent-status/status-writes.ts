/**
 * The three single-item writes of an agent connection (store/agent-status.ts has the
 * conditions): connect (newest connection wins; a new agent is counted once), disconnect, and
 * the stale mark after a long silence.
 */

import { markStale, recordConnect, recordDisconnect } from '../store/agent-status.js';
import { countNewAgent } from '../store/fleet.js';
import type { TagCache } from './tag-cache.js';
import type { TrackedAgent, WriterContext } from './types.js';

/** The counter's ADD is not idempotent: a long timeout instead of an SDK retry (store/fleet.ts). */
const COUNTER_TIMEOUT_MS = 10_000;

export interface StatusWrites {
  connect(agent: TrackedAgent): () => Promise<void>;
  disconnect(agent: TrackedAgent): () => Promise<void>;
  stale(agent: TrackedAgent): () => Promise<void>;
}

export function createStatusWrites(
  ctx: WriterContext,
  tags: TagCache,
  schedulePut: (agent: TrackedAgent) => void,
): StatusWrites {
  /** First time this agent is seen anywhere: one sharded counter increment for the totals. */
  async function countNew(agent: TrackedAgent, at: number): Promise<void> {
    try {
      await countNewAgent(ctx.store, agent.agentId, at, COUNTER_TIMEOUT_MS);
      ctx.count('counter');
    } catch (err) {
      ctx.stats.errors++;
      ctx.log.warn({ err }, 'agent counter update failed');
    }
  }

  return {
    connect: (agent) => async () => {
      if (agent.phase === 'gone') return;
      // The same stamp on every retry, so a retry of an attempt that had in fact been applied
      // recognises its own firstSeenMs and still counts the new agent.
      const at = agent.stamp;
      const h = agent.session.header;
      const r = await recordConnect(ctx.store, {
        agentId: agent.agentId,
        gatewayId: ctx.gatewayId,
        conn: agent.conn,
        connectedAtMs: agent.connectedAtMs,
        hostname: h.hostname,
        version: h.version,
        product: h.product,
        ipv4: [...h.intranetIPv4, ...h.extranetIPv4],
        ipv6: [...h.intranetIPv6, ...h.extranetIPv6],
        at,
      });
      if (r.superseded) {
        // A newer connection of this agent (another gateway) is already recorded.
        agent.phase = 'superseded';
        return;
      }
      ctx.count('connect');
      ctx.onConnection?.({
        agentId: agent.agentId,
        kind: 'connect',
        gateway: ctx.gatewayId,
        atMs: at,
        peer: agent.session.peer,
      });
      agent.connectWritten = true;
      const previous = r.previousFirstSeenMs;
      agent.firstSeenMs = typeof previous === 'number' ? previous : at;
      // New agent: no firstSeenMs before, or the one an earlier attempt of this very connection
      // wrote (a retry after a timed-out attempt that had in fact been applied sees its own stamp).
      if (previous === undefined || previous === at) await countNew(agent, at);
      if (agent.phase === 'pending') agent.phase = 'connected';
      await tags.load(agent);
      if (agent.detail !== undefined) schedulePut(agent);
    },

    disconnect: (agent) => async () => {
      if (!agent.connectWritten) return;
      await agent.putInFlight;
      const d = { agentId: agent.agentId, conn: agent.conn, gatewayId: ctx.gatewayId, at: ctx.now() };
      if (await recordDisconnect(ctx.store, d)) ctx.count('disconnect');
      ctx.onConnection?.({
        agentId: agent.agentId,
        kind: 'disconnect',
        gateway: ctx.gatewayId,
        atMs: d.at,
        peer: agent.session.peer,
      });
    },

    stale: (agent) => async () => {
      if (agent.phase !== 'connected') return;
      try {
        if (await markStale(ctx.store, { agentId: agent.agentId, conn: agent.conn, at: ctx.now() })) {
          ctx.count('stale');
        } else {
          agent.phase = 'superseded';
        }
      } catch (err) {
        agent.stale = false; // retried by a later sweep
        throw err;
      }
    },
  };
}
