/**
 * Agents as Elkeid lists them (`getStatus`, its `/:id` and `/filter` forms): pages of
 * `agent_heartbeat` documents by Scan, filtered with Elkeid's filter JSON and optionally sorted.
 */
import { type AgentItem, agentStatus, elkeidDoc, type GatewayInfo, ScanLimitError } from '../agents.js';
import type { ManagerDeps } from '../deps.js';
import { MgCode, mgFail, mgOk, modelPage, type PageRequest, parsePage } from '../envelope.js';
import { type Filter, matches } from '../filter.js';
import { HttpError, type ManagerRoute } from '../router.js';
import { sumAgentCounters } from '../store/fleet.js';
import { elkeidRoute, filterFromBody, isObject } from './elkeid-http.js';

/** Agent documents for a page of items: statuses from the gateway aggregates, tags per agent. */
async function docs(
  deps: ManagerDeps,
  items: AgentItem[],
  gateways: Map<string, GatewayInfo>,
  tagMap?: Map<string, string[]>,
) {
  const tags = tagMap ?? (await deps.tags.ofAgents(items.map((i) => i.agentId)));
  const now = deps.now();
  return items.map((i) => elkeidDoc(i, agentStatus(i, gateways, now), tags.get(i.agentId) ?? []));
}

function sortValue(doc: Record<string, unknown>, key: string): unknown {
  let v: unknown = doc;
  for (const part of key.split('.')) v = isObject(v) ? v[part] : undefined;
  return v;
}

function compareValues(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === undefined || a === null) return -1;
  if (b === undefined || b === null) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

/**
 * A page of agents matching `filter` (all when undefined), by Scan. Unsorted: only the page's
 * window is kept. Sorted: every match is kept (bounded by sortLimit), then sorted.
 */
async function pageOfAgents(deps: ManagerDeps, filter: Filter | undefined, page: PageRequest) {
  const gateways = await deps.agents.gateways();
  const now = deps.now();
  const needTags = filter?.keys.has('tags') ?? false;
  const tagMap = needTags ? await deps.tags.all() : undefined;
  const skip = (page.page - 1) * page.pageSize;
  const window: Record<string, unknown>[] = [];
  const sorted: Record<string, unknown>[] = [];
  let total = 0;
  try {
    await deps.agents.scan(
      (item) => {
        const doc = elkeidDoc(
          item,
          agentStatus(item, gateways, now),
          tagMap ? (tagMap.get(item.agentId) ?? []) : undefined,
        );
        if (filter && !matches(filter, doc)) return;
        total++;
        if (page.orderKey) {
          if (sorted.length >= deps.sortLimit) {
            throw new HttpError(
              200,
              MgCode.ExceedLimit,
              `more than ${deps.sortLimit} matches to sort; narrow the filter`,
            );
          }
          sorted.push(doc);
        } else if (total > skip && window.length < page.pageSize) {
          window.push(doc);
          // The plain list stops at its page; its total comes from the agents counter below.
          if (!filter && window.length === page.pageSize) return false;
        }
        return undefined;
      },
      { maxItems: deps.scanLimit },
    );
  } catch (err) {
    if (err instanceof ScanLimitError) {
      throw new HttpError(
        200,
        MgCode.ExceedLimit,
        `more than ${deps.scanLimit} agents to examine; narrow the request`,
      );
    }
    throw err;
  }
  if (!filter && !page.orderKey && window.length === page.pageSize) {
    // Stopped early: the total is the agents ever seen (one Query of the sharded counter),
    // never less than what was read.
    total = Math.max(await sumAgentCounters(deps.store), total);
  }
  let items = window;
  if (page.orderKey) {
    const key = page.orderKey;
    const dir = page.orderValue ?? 1;
    sorted.sort((a, b) => dir * compareValues(sortValue(a, key), sortValue(b, key)));
    items = sorted.slice(skip, skip + page.pageSize);
  }
  if (!tagMap) {
    const tags = await deps.tags.ofAgents(items.map((d) => String(d.agent_id)));
    for (const d of items) d.tags = tags.get(String(d.agent_id)) ?? [];
  }
  return modelPage(items, total, page);
}

export function elkeidAgentRoutes(deps: ManagerDeps): ManagerRoute[] {
  return [
    elkeidRoute({
      method: 'GET',
      path: '/api/v1/agent/getStatus',
      access: 'read',
      cost: 5,
      summary: 'agents, paged (ModelPage of agent_heartbeat documents)',
      handler: async (ctx) => mgOk(await pageOfAgents(deps, undefined, parsePage(ctx.query))),
    }),
    elkeidRoute({
      method: 'GET',
      path: '/api/v1/agent/getStatus/:id',
      access: 'read',
      summary: "one agent's heartbeat document",
      async handler(ctx) {
        const item = await deps.agents.get(ctx.params.id!);
        if (!item) return mgFail(MgCode.DbNoRowAffected, 'agent not found');
        const [doc] = await docs(deps, [item], await deps.agents.gateways());
        return mgOk(doc);
      },
    }),
    elkeidRoute({
      method: 'POST',
      path: '/api/v1/agent/getStatus/filter',
      access: 'read',
      audited: false,
      cost: 5,
      summary: 'agents matching a filter JSON, paged',
      handler: async (ctx) => mgOk(await pageOfAgents(deps, filterFromBody(ctx), parsePage(ctx.query))),
    }),
  ];
}
