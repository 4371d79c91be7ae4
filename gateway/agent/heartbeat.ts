/**
 * Agent (1000) and plugin (1001) heartbeats turned into the detail maps that Elkeid's
 * `/conn/stat` returns and its Manager stores (docs/elkeid-protocol.md §2.4).
 */
import type { Fields } from './item.js';

export const DT_AGENT_HEARTBEAT = 1000;
export const DT_PLUGIN_HEARTBEAT = 1001;

/** Fields that look numeric but must stay strings (versions, serials, names). */
const AGENT_STRING_FIELDS = new Set([
  'platform_version',
  'version',
  'host_serial',
  'host_id',
  'host_model',
  'host_vendor',
  'cpu_name',
]);
const PLUGIN_STRING_FIELDS = new Set(['pversion']);

export type Detail = Record<string, unknown>;

function numericOrString(value: string): number | string {
  if (value.trim() === '') return value;
  const n = Number(value);
  return Number.isFinite(n) ? n : value;
}

function convert(fields: Fields, keepAsString: ReadonlySet<string>): Detail {
  const out: Detail = Object.create(null);
  for (const key of Object.keys(fields)) {
    const v = fields[key]!;
    out[key] = keepAsString.has(key) ? v : numericOrString(v);
  }
  return out;
}

export interface AgentHeader {
  intranetIPv4: string[];
  extranetIPv4: string[];
  intranetIPv6: string[];
  extranetIPv6: string[];
  hostname: string;
  version: string;
  product: string;
}

export function agentDetail(
  fields: Fields,
  ctx: { agentId: string; peer: string; connectedAt: number; header: AgentHeader; nowSeconds: number },
): Detail {
  const d = convert(fields, AGENT_STRING_FIELDS);
  d.agent_id = ctx.agentId;
  d.agent_addr = ctx.peer;
  d.create_at = ctx.connectedAt;
  d.intranet_ipv4 = ctx.header.intranetIPv4;
  d.extranet_ipv4 = ctx.header.extranetIPv4;
  d.intranet_ipv6 = ctx.header.intranetIPv6;
  d.extranet_ipv6 = ctx.header.extranetIPv6;
  d.version = ctx.header.version;
  d.hostname = ctx.header.hostname;
  d.product = ctx.header.product;
  d.last_heartbeat_time = ctx.nowSeconds;
  return d;
}

/** Returns undefined when the plugin heartbeat lacks `name` (Elkeid requires it). */
export function pluginDetail(fields: Fields, nowSeconds: number): Detail | undefined {
  if (!fields.name) return undefined;
  const d = convert(fields, PLUGIN_STRING_FIELDS);
  d.last_heartbeat_time = nowSeconds;
  return d;
}
