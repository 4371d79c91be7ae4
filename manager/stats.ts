/**
 * Fleet statistics from what gateways publish (their `fleet#gateway` aggregates, every 30 s), the
 * sharded agents counter and the tag member counts: a handful of small Queries, never a Scan of
 * the agents table. Totals: `online` = connected agents with a heartbeat in the last 180 s on a
 * live gateway; `offline` = agents ever seen − online.
 */
import type { AgentReader } from './agents.js';
import { sumAgentCounters } from './store/fleet.js';
import type { ManagerStore } from './store.js';
import type { TagStore } from './tags.js';

export interface FleetStats {
  total: number;
  online: number;
  running: number;
  abnormal: number;
  offline: number;
  /** Connected agents with no heartbeat for 180 s (counted offline). */
  silent: number;
  gateways: Record<string, { connected: number; online: number; alive: boolean; updated_at: number }>;
  by_version: Record<string, number>;
  by_platform: Record<string, number>;
  by_tag: Record<string, { members: number; online: number }>;
  /** Oldest aggregate among the live gateways (ms): how fresh the numbers are. */
  as_of: number;
}

function add(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) if (typeof v === 'number') into[k] = (into[k] ?? 0) + v;
}

export async function fleetStats(
  store: ManagerStore,
  agents: AgentReader,
  tags: TagStore,
  nowMs: number,
): Promise<FleetStats> {
  const [gateways, everSeen, tagCounts] = await Promise.all([
    agents.gateways({ fresh: true }),
    sumAgentCounters(store),
    tags.counts(),
  ]);
  const s: FleetStats = {
    total: 0,
    online: 0,
    running: 0,
    abnormal: 0,
    offline: 0,
    silent: 0,
    gateways: {},
    by_version: {},
    by_platform: {},
    by_tag: {},
    as_of: nowMs,
  };
  const onlineByTag: Record<string, number> = {};
  let connected = 0;
  for (const g of gateways.values()) {
    s.gateways[g.gatewayId] = {
      connected: g.alive ? g.connected : 0,
      online: g.alive ? g.online : 0,
      alive: g.alive,
      updated_at: g.updatedAtMs,
    };
    if (!g.alive) continue;
    connected += g.connected;
    s.online += g.online;
    s.running += g.running;
    s.abnormal += g.abnormal;
    s.silent += g.stale;
    s.as_of = Math.min(s.as_of, g.updatedAtMs);
    add(s.by_version, g.byVersion);
    add(s.by_platform, g.byPlatform);
    add(onlineByTag, g.byTag);
  }
  s.total = Math.max(everSeen, connected);
  s.offline = s.total - s.online;
  for (const [tag, members] of tagCounts) s.by_tag[tag] = { members, online: onlineByTag[tag] ?? 0 };
  return s;
}
