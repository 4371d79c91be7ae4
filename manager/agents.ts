/**
 * The manager's read side of the `agents` table (written by the gateways' HeartbeatWriter):
 * an agent's status, its Elkeid `agent_heartbeat`-shaped document, and listing by Scan for the
 * operator endpoints (getStatus list and filter, tagging by IP or filter). Lists are an operator
 * action, never a hot path: their cost grows with the fleet (docs/manager.md).
 */

import { type AgentItem, getAgentItem, scanAgentItems } from './store/agents.js';
import { type GatewayInfo, parseGatewayAggregate, readGatewayAggregates } from './store/fleet.js';
import type { ManagerStore } from './store.js';

export type { AgentItem } from './store/agents.js';
export { GATEWAY_DEAD_AFTER_MS, type GatewayInfo } from './store/fleet.js';

export type AgentStatus = 'running' | 'abnormal' | 'offline';

/** Safety net: no heartbeat written for this long = offline even if no stale mark arrived. */
export const HEARTBEAT_WRITTEN_MAX_AGE_S = 900;

export function agentStatus(
  item: AgentItem,
  gateways: ReadonlyMap<string, GatewayInfo>,
  nowMs: number,
): AgentStatus {
  if (item.online !== true) return 'offline';
  if (item.stale === true) return 'offline';
  const gw = typeof item.gateway === 'string' ? gateways.get(item.gateway) : undefined;
  if (!gw?.alive) return 'offline';
  if (typeof item.hbAt === 'number' && nowMs / 1000 - item.hbAt > HEARTBEAT_WRITTEN_MAX_AGE_S)
    return 'offline';
  return item.state === 'abnormal' ? 'abnormal' : 'running';
}

function parseJson<T>(v: unknown, fallback: T): T {
  if (typeof v !== 'string') return fallback;
  try {
    return JSON.parse(v) as T;
  } catch {
    return fallback;
  }
}

/** The strings of a stored list attribute (ipv4, ipv6); [] when it is not a list. */
export function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/**
 * Elkeid's `agent_heartbeat` document (the §2.4 detail map plus `plugins`, `tags`,
 * `source_ip`/`source_port` of the gateway, first/last heartbeat times), with our `status`,
 * `online` and `fleet_gateway` fields added. The heartbeat's own `gateway` (the agent host's
 * default route) is kept as the agent sent it. `last_heartbeat_time` is the last heartbeat *written*,
 * refreshed every ~10 minutes while nothing changes: use `status` for liveness.
 */
export function elkeidDoc(
  item: AgentItem,
  status: AgentStatus,
  tags: readonly string[] | undefined,
): Record<string, unknown> {
  const hb = parseJson<Record<string, unknown>>(item.hb, {});
  const doc: Record<string, unknown> = { ...hb };
  const ipv4 = stringList(item.ipv4);
  const ipv6 = stringList(item.ipv6);
  doc.agent_id = item.agentId;
  doc.hostname ??= item.hostname ?? '';
  doc.version ??= item.version ?? '';
  doc.product ??= item.product ?? '';
  doc.intranet_ipv4 ??= ipv4;
  doc.extranet_ipv4 ??= [];
  doc.intranet_ipv6 ??= ipv6;
  doc.extranet_ipv6 ??= [];
  doc.plugins = parseJson<unknown[]>(item.plugins, []);
  if (tags) doc.tags = [...tags];
  const gw =
    typeof item.gateway === 'string'
      ? item.gateway
      : typeof item.lastGateway === 'string'
        ? item.lastGateway
        : '';
  // `host:port`, or `host:port/p<i>` from one of several gateway processes sharing that port.
  const addr = gw.replace(/\/p\d+$/, '');
  const colon = addr.lastIndexOf(':');
  doc.source_ip = colon > 0 ? addr.slice(0, colon) : addr;
  doc.source_port = colon > 0 ? Number(addr.slice(colon + 1)) : 0;
  if (typeof item.firstSeenMs === 'number') doc.first_heartbeat_time = Math.floor(item.firstSeenMs / 1000);
  if (typeof item.hbAt === 'number') doc.last_heartbeat_time = item.hbAt;
  doc.status = status;
  doc.online = status !== 'offline';
  // Not `gateway`: that is the agent's default route in its heartbeat (Elkeid filters on it).
  doc.fleet_gateway = gw;
  if (typeof item.connectedAtMs === 'number') doc.connected_at = Math.floor(item.connectedAtMs / 1000);
  if (typeof item.disconnectedAtMs === 'number')
    doc.disconnected_at = Math.floor(item.disconnectedAtMs / 1000);
  return doc;
}

export interface AgentReader {
  get(agentId: string): Promise<AgentItem | undefined>;
  /** Calls `visit` for every agent item, page by page; stops early when it returns `false`. Returns the items read. */
  scan(visit: (item: AgentItem) => unknown, opts?: { maxItems?: number }): Promise<number>;
  /** Gateways by id, from their aggregates (cached ~2 s). */
  gateways(opts?: { fresh?: boolean }): Promise<Map<string, GatewayInfo>>;
}

export class ScanLimitError extends Error {}

/** Longest a scan holds the event loop between two yields (plus one visit). */
const SCAN_SLICE_MS = 10;

/** A gateway's aggregate item read back (store/fleet.ts parseGatewayAggregate). */
export const toGatewayInfo = parseGatewayAggregate;

export function createAgentReader(
  store: ManagerStore,
  opts: { now?: () => number; gatewayCacheMs?: number } = {},
): AgentReader {
  const now = opts.now ?? Date.now;
  const cacheMs = opts.gatewayCacheMs ?? 2000;
  let cached: { at: number; value: Map<string, GatewayInfo> } | undefined;
  return {
    async get(agentId) {
      if (agentId.length === 0 || agentId.length > 128) return undefined;
      return getAgentItem(store, agentId);
    },
    async scan(visit, o = {}) {
      const max = o.maxItems ?? Number.POSITIVE_INFINITY;
      let read = 0;
      // Visits can be costly (a filter's $regex over each document): hand the event loop back
      // every few ms so agents' streams and health checks are served during a long scan.
      let sliceStart = performance.now();
      await scanAgentItems(store, async (items) => {
        for (const item of items) {
          read++;
          if (read > max) throw new ScanLimitError(`more than ${max} agents to examine`);
          if (visit(item) === false) return false;
          if (performance.now() - sliceStart > SCAN_SLICE_MS) {
            await new Promise((resolve) => setImmediate(resolve));
            sliceStart = performance.now();
          }
        }
        return undefined;
      });
      return read;
    },
    async gateways(o = {}) {
      const t = now();
      if (!o.fresh && cached && t - cached.at < cacheMs) return cached.value;
      const value = await readGatewayAggregates(store, t);
      cached = { at: t, value };
      return value;
    },
  };
}
