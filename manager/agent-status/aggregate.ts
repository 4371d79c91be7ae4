/**
 * The gateway's aggregate (counts of its agents by status, version, platform and tag), published
 * every 30 s into `fleet#gateway` for the statistics, and the desired connection limit the
 * manager API stores for this gateway (`fleet#limit`), read back with each aggregate and every
 * few seconds (load control, gateway/agent/load-shedder.ts).
 */
import { type GatewayAggregate, getGatewayLimit, putGatewayAggregate } from '../store/fleet.js';
import { mapKey, platformOf } from './tracked-agent.js';
import type { TrackedAgent, WriterContext } from './types.js';

/** Most keys per count map in an aggregate (versions, platforms, tags). */
export const MAX_AGGREGATE_KEYS = 2000;

const bump = (m: Record<string, number>, key: string) => {
  m[key] = (m[key] ?? 0) + 1;
};

/** The counts over the agents connected (or connecting) here now. */
export function aggregateOf(
  agents: Iterable<TrackedAgent>,
  gateway: { gatewayId: string; controlAddr?: string | undefined },
  nowMs: number,
): GatewayAggregate {
  const a: GatewayAggregate = {
    gatewayId: gateway.gatewayId,
    updatedAtMs: nowMs,
    connected: 0,
    online: 0,
    running: 0,
    abnormal: 0,
    stale: 0,
    byVersion: {},
    byPlatform: {},
    byTag: {},
  };
  if (gateway.controlAddr) a.controlAddr = gateway.controlAddr;
  for (const agent of agents) {
    if (agent.phase !== 'connected' && agent.phase !== 'pending') continue;
    a.connected++;
    if (agent.stale) {
      a.stale++;
      continue;
    }
    a.online++;
    if (agent.state === 'abnormal') a.abnormal++;
    else a.running++;
    bump(a.byVersion, mapKey(agent.session.header.version));
    bump(a.byPlatform, platformOf(agent));
    for (const tag of agent.tags) bump(a.byTag, mapKey(tag));
  }
  return a;
}

/** The largest entries of a count map: keeps the aggregate item far below DynamoDB's 400 KB. */
export function topKeys(m: Record<string, number>): Record<string, number> {
  const entries = Object.entries(m);
  if (entries.length <= MAX_AGGREGATE_KEYS) return m;
  return Object.fromEntries(entries.sort((x, y) => y[1] - x[1]).slice(0, MAX_AGGREGATE_KEYS));
}

/** Writes the aggregate, its count maps cut to their largest entries; returns what was written. */
export async function publishAggregate(ctx: WriterContext, a: GatewayAggregate): Promise<GatewayAggregate> {
  a.byVersion = topKeys(a.byVersion);
  a.byPlatform = topKeys(a.byPlatform);
  a.byTag = topKeys(a.byTag);
  const load = await ctx.load?.().catch(() => undefined);
  if (load) a.load = load;
  await putGatewayAggregate(ctx.store, a);
  ctx.count('aggregate');
  return a;
}

/** This gateway's desired connection limit, as last read. */
export interface DesiredLimit {
  /** Reads it now. */
  refresh(): Promise<number | undefined>;
  /** Undefined when none is set or it expired (`expiresAtMs`, set by rebalance). */
  current(): number | undefined;
}

export function createDesiredLimit(ctx: WriterContext): DesiredLimit {
  let limit: number | undefined;
  let expiresAtMs: number | undefined;
  const current = () => {
    if (expiresAtMs !== undefined && ctx.now() >= expiresAtMs) return undefined;
    return limit;
  };
  return {
    async refresh() {
      const item = await getGatewayLimit(ctx.store, ctx.gatewayId);
      limit = item?.limit;
      expiresAtMs = item?.expiresAtMs;
      return current();
    },
    current,
  };
}
