/**
 * The agents table's filters as Elkeid filter JSON for `POST /api/v1/agent/getStatus/filter`
 * (paged and sorted by the manager). Free text is matched as a literal substring.
 */
import type { Schemas } from './api/client';

export interface AgentFilters {
  id: string;
  hostname: string;
  ip: string;
  tag: string;
  version: string;
  status: string;
  gateway: string;
}

export const NO_FILTERS: AgentFilters = {
  id: '',
  hostname: '',
  ip: '',
  tag: '',
  version: '',
  status: '',
  gateway: '',
};

const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').slice(0, 100);

export function filterJson(f: AgentFilters): Schemas['Filter'] | undefined {
  const filter: Array<{
    key: string;
    rules: Array<{ operator: string; value: unknown }>;
    condition: string;
  }> = [];
  const rule = (key: string, operator: string, value: unknown) =>
    filter.push({ key, rules: [{ operator, value }], condition: '$and' });
  if (f.id.trim()) rule('agent_id', '$regex', literal(f.id.trim()));
  if (f.hostname.trim()) rule('hostname', '$regex', literal(f.hostname.trim()));
  if (f.ip.trim()) rule('intranet_ipv4', '$regex', literal(f.ip.trim()));
  if (f.tag.trim()) rule('tags', '$eq', f.tag.trim());
  if (f.version.trim()) rule('version', '$eq', f.version.trim());
  if (f.status) rule('status', '$eq', f.status);
  if (f.gateway.trim()) rule('gateway', '$eq', f.gateway.trim());
  return filter.length > 0 ? ({ filter, condition: '$and' } as Schemas['Filter']) : undefined;
}

export interface AgentDoc {
  agent_id: string;
  hostname?: string;
  status: 'running' | 'abnormal' | 'offline';
  version?: string;
  platform?: string;
  gateway?: string;
  intranet_ipv4?: string[];
  tags?: string[];
  last_heartbeat_time?: number;
  plugins?: Array<Record<string, unknown>>;
  [key: string]: unknown;
}

export interface ModelPage<T> {
  total: number;
  count: number;
  pages: number;
  page: number;
  page_size: number;
  items: T[];
}
