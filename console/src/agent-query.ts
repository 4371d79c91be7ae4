/**
 * The agents table's filters (sent to `GET /api/fleet/agents`), and the agent documents of
 * Elkeid's v1 listings (the task target preview, the agent page).
 */

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
