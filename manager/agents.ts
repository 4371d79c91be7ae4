/**
 * The manager's read side of the `agents` table (written by the gateways' HeartbeatWriter):
 * an agent's status, its Elkeid `agent_heartbeat`-shaped document, and listing by Scan for the
 * operator endpoints (getStatus list and filter, tagging by IP or filter). Lists are an operator
 * action, never a hot path: their cost grows with the fleet (docs/manager.md).
 */
import { GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { GatewayLoad } from '../gateway/process/gateway-load.js';
import { FLEET_SCOPE, queryScope } from '../platform/store/fleet-items.js';
import { parseGatewayLoad } from './gateway-load-view.js';
import type { ManagerStore } from './store.js';

export type AgentStatus = 'running' | 'abnormal' | 'offline';

/** A gateway that has not published its aggregate for this long is gone: its agents are offline. */
export const GATEWAY_DEAD_AFTER_MS = 60_000;
/** Safety net: no heartbeat written for this long = offline even if no stale mark arrived. */
export const HEARTBEAT_WRITTEN_MAX_AGE_S = 900;

export type AgentItem = Record<string, unknown> & { agentId: string };

export interface GatewayInfo {
  gatewayId: string;
  controlAddr?: string;
  updatedAtMs: number;
  alive: boolean;
  connected: number;
  online: number;
  running: number;
  abnormal: number;
  stale: number;
  byVersion: Record<string, number>;
  byPlatform: Record<string, number>;
  byTag: Record<string, number>;
  /** The gateway's ingest load, when it publishes one. */
  load?: GatewayLoad;
}

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
  const ipv4 = Array.isArray(item.ipv4) ? (item.ipv4 as string[]) : [];
  const ipv6 = Array.isArray(item.ipv6) ? (item.ipv6 as string[]) : [];
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
  const colon = gw.lastIndexOf(':');
  doc.source_ip = colon > 0 ? gw.slice(0, colon) : gw;
  doc.source_port = colon > 0 ? Number(gw.slice(colon + 1)) : 0;
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

export function toGatewayInfo(item: Record<string, unknown>, nowMs: number): GatewayInfo {
  const num = (v: unknown) => (typeof v === 'number' ? v : 0);
  const rec = (v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, number>)
      : ({} as Record<string, number>);
  const updatedAtMs = num(item.updatedAtMs);
  const g: GatewayInfo = {
    gatewayId: String(item.gatewayId ?? item.name),
    updatedAtMs,
    alive: nowMs - updatedAtMs < GATEWAY_DEAD_AFTER_MS,
    connected: num(item.connected),
    online: num(item.online),
    running: num(item.running),
    abnormal: num(item.abnormal),
    stale: num(item.stale),
    byVersion: rec(item.byVersion),
    byPlatform: rec(item.byPlatform),
    byTag: rec(item.byTag),
  };
  if (typeof item.controlAddr === 'string') g.controlAddr = item.controlAddr;
  const load = parseGatewayLoad(item.load);
  if (load) g.load = load;
  return g;
}

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
      const r = await store.doc.send(new GetCommand({ TableName: store.t.agents, Key: { agentId } }));
      return r.Item as AgentItem | undefined;
    },
    async scan(visit, o = {}) {
      const max = o.maxItems ?? Number.POSITIVE_INFINITY;
      let read = 0;
      // Visits can be costly (a filter's $regex over each document): hand the event loop back
      // every few ms so agents' streams and health checks are served during a long scan.
      let sliceStart = performance.now();
      let start: Record<string, unknown> | undefined;
      do {
        const page = await store.doc.send(
          new ScanCommand({ TableName: store.t.agents, ...(start ? { ExclusiveStartKey: start } : {}) }),
        );
        for (const item of page.Items ?? []) {
          read++;
          if (read > max) throw new ScanLimitError(`more than ${max} agents to examine`);
          if (visit(item as AgentItem) === false) return read;
          if (performance.now() - sliceStart > SCAN_SLICE_MS) {
            await new Promise((resolve) => setImmediate(resolve));
            sliceStart = performance.now();
          }
        }
        start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
      } while (start);
      return read;
    },
    async gateways(o = {}) {
      const t = now();
      if (!o.fresh && cached && t - cached.at < cacheMs) return cached.value;
      const items = await queryScope(store.doc, store.prefix, FLEET_SCOPE.gateway);
      const value = new Map(items.map((i) => [String(i.name), toGatewayInfo(i, t)]));
      cached = { at: t, value };
      return value;
    },
  };
}
