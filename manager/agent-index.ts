/**
 * `GET /api/fleet/agents`: the operator console's agents table, paged, sorted and filtered by the
 * manager over an in-process index of compact rows (id, host name, addresses, status, version,
 * platform, gateway, tags, last heartbeat) — about 300 bytes an agent, 30 MB for 100,000.
 *
 * The index is built by one Scan of the agents table and one read of every tag membership, then
 * served stale-while-revalidate: a request older than `maxAgeMs` gets the index it has at once
 * and starts a rebuild (one at a time), so only the first request of a process waits for the
 * Scan and every page after it costs no store read. Statuses are computed at build time from the
 * gateways' aggregates, like the v1 listing's. `fresh=1` waits for a rebuild (after a change the
 * caller made itself, e.g. tagging from the console). The Scan is bounded by the manager's
 * scanLimit, as the v1 listing.
 */
import { agentStatus, elkeidDoc, ScanLimitError } from './agents.js';
import type { ManagerDeps } from './deps.js';
import { apiOk } from './envelope.js';
import { HttpError, type ManagerRoute } from './router.js';

export interface AgentRow {
  agent_id: string;
  hostname: string;
  ips: string[];
  status: 'running' | 'abnormal' | 'offline';
  version: string;
  platform: string;
  gateway: string;
  tags: string[];
  last_heartbeat_time: number | null;
}

export const AGENT_SORT_KEYS = [
  'agent_id',
  'hostname',
  'status',
  'version',
  'platform',
  'gateway',
  'last_heartbeat_time',
] as const;
type SortKey = (typeof AGENT_SORT_KEYS)[number];
const MAX_PAGE_SIZE = 500;
const MAX_FILTER_LENGTH = 128;

interface Index {
  rows: AgentRow[];
  builtAt: number;
}

const invalid = (message: string) => new HttpError(400, 5, message, 'invalid_parameter');

/** `fallback`: the item's own columns, for documents whose heartbeat detail lacks them. */
function rowOf(doc: Record<string, unknown>, fallback: Record<string, unknown>): AgentRow {
  const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  return {
    agent_id: String(doc.agent_id),
    hostname: String(doc.hostname ?? ''),
    ips: [...list(doc.intranet_ipv4), ...list(doc.extranet_ipv4), ...list(doc.intranet_ipv6)],
    status: doc.status as AgentRow['status'],
    version: String(doc.version ?? ''),
    platform: String(doc.platform ?? fallback.platform ?? ''),
    gateway: String(doc.fleet_gateway ?? ''), // the gateway holding the agent (not the heartbeat's default route)
    tags: list(doc.tags),
    last_heartbeat_time: typeof doc.last_heartbeat_time === 'number' ? doc.last_heartbeat_time : null,
  };
}

export function createAgentIndex(deps: ManagerDeps, o: { maxAgeMs?: number } = {}) {
  const maxAgeMs = o.maxAgeMs ?? 10_000;
  let current: Index | undefined;
  let building: Promise<Index> | undefined;

  async function build(): Promise<Index> {
    const [gateways, tags] = await Promise.all([deps.agents.gateways({ fresh: true }), deps.tags.all()]);
    const now = deps.now();
    const rows: AgentRow[] = [];
    try {
      await deps.agents.scan(
        (item) => {
          rows.push(
            rowOf(elkeidDoc(item, agentStatus(item, gateways, now), tags.get(item.agentId) ?? []), item),
          );
        },
        { maxItems: deps.scanLimit },
      );
    } catch (err) {
      if (err instanceof ScanLimitError) {
        throw new HttpError(400, 15, `more than ${deps.scanLimit} agents to index`, 'too_many');
      }
      throw err;
    }
    current = { rows, builtAt: now };
    return current;
  }

  function rebuild(): Promise<Index> {
    building ??= build().finally(() => {
      building = undefined;
    });
    return building;
  }

  /**
   * A build that starts after the caller's change: the one in flight may have read before it.
   * At most one Scan runs and one waits, however many ask.
   */
  let queued: Promise<Index> | undefined;
  function rebuildAfterCurrent(): Promise<Index> {
    if (!building) return rebuild();
    queued ??= building
      .catch(() => undefined)
      .then(() => {
        queued = undefined;
        return rebuild();
      });
    return queued;
  }

  return {
    /** The index: at once when there is one (rebuilt behind when old), else after the first build. */
    async get(fresh: boolean): Promise<Index> {
      if (!current) return rebuild();
      if (fresh) return rebuildAfterCurrent();
      if (deps.now() - current.builtAt > maxAgeMs) {
        rebuild().catch((err: unknown) => deps.logger.warn({ err }, 'agent index rebuild failed'));
      }
      return current;
    },
  };
}

interface Query {
  page: number;
  pageSize: number;
  sort: SortKey;
  order: 1 | -1;
  text: Partial<Record<'id' | 'hostname' | 'ip', string>>;
  exact: Partial<Record<'tag' | 'version' | 'status' | 'gateway', string>>;
  fresh: boolean;
}

function parseQuery(q: URLSearchParams): Query {
  const int = (name: string, def: number, max: number) => {
    const raw = q.get(name);
    if (raw === null || raw === '') return def;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw invalid(`${name} must be a positive integer`);
    return Math.min(n, max);
  };
  const sort = (q.get('sort') || 'agent_id') as SortKey;
  if (!AGENT_SORT_KEYS.includes(sort)) throw invalid(`sort must be one of ${AGENT_SORT_KEYS.join(', ')}`);
  const order = q.get('order') || 'asc';
  if (order !== 'asc' && order !== 'desc') throw invalid('order must be asc or desc');
  const text: Query['text'] = {};
  const exact: Query['exact'] = {};
  for (const key of ['id', 'hostname', 'ip', 'tag', 'version', 'status', 'gateway'] as const) {
    const v = q.get(key)?.trim();
    if (!v) continue;
    if (v.length > MAX_FILTER_LENGTH) throw invalid(`${key}: at most ${MAX_FILTER_LENGTH} characters`);
    if (key === 'id' || key === 'hostname' || key === 'ip') text[key] = v.toLowerCase();
    else exact[key] = v;
  }
  return {
    page: int('page', 1, Number.MAX_SAFE_INTEGER),
    pageSize: int('page_size', 100, MAX_PAGE_SIZE),
    sort,
    order: order === 'asc' ? 1 : -1,
    text,
    exact,
    fresh: q.get('fresh') === '1',
  };
}

function matches(r: AgentRow, q: Query): boolean {
  const { text, exact } = q;
  if (text.id && !r.agent_id.toLowerCase().includes(text.id)) return false;
  if (text.hostname && !r.hostname.toLowerCase().includes(text.hostname)) return false;
  if (text.ip && !r.ips.some((ip) => ip.toLowerCase().includes(text.ip!))) return false;
  if (exact.tag && !r.tags.includes(exact.tag)) return false;
  if (exact.version && r.version !== exact.version) return false;
  if (exact.status && r.status !== exact.status) return false;
  if (exact.gateway && r.gateway !== exact.gateway) return false;
  return true;
}

function compare(a: AgentRow, b: AgentRow, key: SortKey): number {
  const x = a[key] ?? '';
  const y = b[key] ?? '';
  if (typeof x === 'number' && typeof y === 'number') return x - y;
  return String(x) < String(y) ? -1 : String(x) > String(y) ? 1 : 0;
}

export function agentIndexRoute(index: ReturnType<typeof createAgentIndex>): ManagerRoute {
  return {
    method: 'GET',
    path: '/api/fleet/agents',
    access: 'read',
    api: 'fleet',
    summary: 'agents, paged, sorted and filtered by the manager over its agent index (refreshed every 10 s)',
    async handler(ctx) {
      const q = parseQuery(ctx.query);
      const { rows, builtAt } = await index.get(q.fresh);
      const matched = rows.filter((r) => matches(r, q));
      // Ties broken by agent ID so pages never overlap or skip.
      matched.sort((a, b) => q.order * (compare(a, b, q.sort) || compare(a, b, 'agent_id')));
      const start = (q.page - 1) * q.pageSize;
      return apiOk({
        total: matched.length,
        page: q.page,
        page_size: q.pageSize,
        items: matched.slice(start, start + q.pageSize),
        as_of: builtAt,
        indexed: rows.length,
      });
    },
  };
}
