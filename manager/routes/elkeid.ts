/**
 * The Elkeid-compatible v1 agent endpoints (docs/elkeid-protocol.md §4.4) that do not need task
 * dispatch, with Elkeid's envelope, codes, paging and filter JSON, so existing scripts keep
 * working. Differences, all toward safety: every route needs credentials (Elkeid leaves
 * getConfig/:id and queryInfo open; here a gateway signs them with AK/SK), tags are refused when
 * they contain a comma, and a plugin name must match `^[a-z0-9_-]+$`.
 *
 * Task routes (createTask/*, controlTask, quickTask, getTask, getSubTask, getJob,
 * updateSubTask) are in routes/tasks.ts.
 */
import {
  type AgentItem,
  agentStatus,
  elkeidDoc,
  type GatewayInfo,
  ScanLimitError,
  stringList as storedStrings,
} from '../agents.js';
import { ConfigError, defaultScope, parseConfigList } from '../configs.js';
import type { ManagerDeps } from '../deps.js';
import { MgCode, mgFail, mgOk, modelPage, type PageRequest, parsePage } from '../envelope.js';
import { type Filter, FilterError, matches, parseFilter } from '../filter.js';
import { verifyPassword } from '../passwords.js';
import { elkeidLevel } from '../roles.js';
import { badRequest, type Ctx, HttpError, type ManagerRoute } from '../router.js';
import { sumAgentCounters } from '../store/fleet.js';
import { isTag, MAX_TAG_TARGETS } from '../tags.js';
import { USERNAME_PATTERN } from '../users.js';

export const MAX_ID_LIST = 5000;
/** A hash that verifyPassword spends the same time on when the user does not exist. */
const DUMMY_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function stringList(v: unknown, name: string, max = MAX_ID_LIST): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x.length === 0 || x.length > 128)) {
    throw badRequest(`${name} must be an array of strings`);
  }
  if (v.length > max)
    throw new HttpError(400, MgCode.ExceedLimit, `${name}: at most ${max} entries`, 'too_many');
  return v as string[];
}

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

function filterFromBody(ctx: Ctx): Filter {
  const raw = ctx.req.body.length === 0 ? {} : ctx.body();
  try {
    return parseFilter(raw);
  } catch (err) {
    if (err instanceof FilterError) throw badRequest(err.message);
    throw err;
  }
}

/** Agent IDs whose intranet or extranet addresses include one of the lists' (Elkeid's addTags by IP). */
async function agentsByIp(deps: ManagerDeps, ipv4: string[], ipv6: string[]): Promise<string[]> {
  if (ipv4.length === 0 && ipv6.length === 0) return [];
  const want4 = new Set(ipv4);
  const want6 = new Set(ipv6);
  const out: string[] = [];
  await deps.agents.scan(
    (item) => {
      const a4 = storedStrings(item.ipv4);
      const a6 = storedStrings(item.ipv6);
      if (a4.some((ip) => want4.has(ip)) || a6.some((ip) => want6.has(ip))) out.push(item.agentId);
    },
    { maxItems: deps.scanLimit },
  );
  return out;
}

async function tagTargets(deps: ManagerDeps, ctx: Ctx): Promise<{ tag: string; ids: string[] }> {
  const body = ctx.body();
  if (!isObject(body)) throw badRequest('the body must be an object');
  if (!isTag(body.tag)) throw badRequest('tag must be 1-64 characters without commas');
  const ids = new Set(stringList(body.id_list, 'id_list', MAX_TAG_TARGETS));
  for (const id of await agentsByIp(
    deps,
    stringList(body.ipv4_list, 'ipv4_list'),
    stringList(body.ipv6_list, 'ipv6_list'),
  )) {
    ids.add(id);
  }
  if (ids.size > MAX_TAG_TARGETS)
    throw new HttpError(200, MgCode.ExceedLimit, `at most ${MAX_TAG_TARGETS} agents per call`);
  return { tag: body.tag, ids: [...ids] };
}

async function matchingIds(deps: ManagerDeps, filter: Filter): Promise<string[]> {
  const gateways = await deps.agents.gateways();
  const now = deps.now();
  const tagMap = filter.keys.has('tags') ? await deps.tags.all() : undefined;
  const ids: string[] = [];
  await deps.agents.scan(
    (item) => {
      const doc = elkeidDoc(
        item,
        agentStatus(item, gateways, now),
        tagMap ? (tagMap.get(item.agentId) ?? []) : undefined,
      );
      if (matches(filter, doc)) ids.push(item.agentId);
    },
    { maxItems: deps.scanLimit },
  );
  return ids;
}

export function elkeidRoutes(deps: ManagerDeps): ManagerRoute[] {
  const r = (route: Omit<ManagerRoute, 'api'>): ManagerRoute => ({ ...route, api: 'elkeid' });
  return [
    r({
      method: 'POST',
      path: '/api/v1/user/login',
      access: 'public',
      summary: 'sign in: {"username","password"} → {"token"}',
      maxBodyBytes: 16 * 1024,
      async handler(ctx) {
        const body = ctx.body();
        if (!isObject(body) || typeof body.username !== 'string' || typeof body.password !== 'string') {
          throw badRequest('username and password are required');
        }
        const username = body.username;
        ctx.audit.actor = `user:${username.slice(0, 64)}`;
        const ip = ctx.req.remoteAddress;
        const a = deps.loginLimiter.take(`${username.slice(0, 64)}|${ip}`);
        const b = deps.loginLimiter.take(`ip|${ip}`, 0.2);
        if (!a.ok || !b.ok) {
          const retry = !a.ok ? a.retryAfterS : !b.ok ? b.retryAfterS : 60;
          ctx.audit.detail = { result: 'rate_limited' };
          return mgFail(
            MgCode.ExceedLimit,
            { retry_after: retry },
            { status: 429, headers: { 'retry-after': String(retry) } },
          );
        }
        const user = USERNAME_PATTERN.test(username)
          ? await deps.users.get(username, { fresh: true })
          : undefined;
        const good = await verifyPassword(body.password, user?.passwordHash ?? DUMMY_HASH);
        if (!user || !good || user.disabledAt !== undefined) {
          ctx.audit.detail = { result: 'failed' };
          return mgFail(MgCode.AuthFailed, 'wrong username or password');
        }
        const { token, claims } = deps.tokens.issue(user.username, deps.now(), user.accountId);
        ctx.audit.detail = { result: 'ok', sid: claims.sid, expires: claims.exp };
        return mgOk({ token, expire_at: Math.floor(claims.exp / 1000) });
      },
    }),
    r({
      method: 'GET',
      path: '/api/v1/user/logout',
      access: 'user',
      audited: true,
      summary: 'sign out: every session token of the user issued so far stops working',
      async handler(ctx) {
        if (ctx.principal?.kind === 'user') await deps.users.revokeTokens(ctx.principal.id, deps.now());
        return mgOk(null);
      },
    }),
    r({
      method: 'GET',
      path: '/api/v1/user/info',
      access: 'user',
      summary: 'the signed-in user: name, Elkeid level, role',
      async handler(ctx) {
        const p = ctx.principal!;
        const username = p.kind === 'apikey' ? (p.owner ?? '') : p.id;
        return mgOk({ username, level: elkeidLevel(p.role!), role: p.role, via: p.kind });
      },
    }),
    r({
      method: 'GET',
      path: '/api/v1/agent/getStatus',
      access: 'read',
      cost: 5,
      summary: 'agents, paged (ModelPage of agent_heartbeat documents)',
      handler: async (ctx) => mgOk(await pageOfAgents(deps, undefined, parsePage(ctx.query))),
    }),
    r({
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
    r({
      method: 'POST',
      path: '/api/v1/agent/getStatus/filter',
      access: 'read',
      audited: false,
      cost: 5,
      summary: 'agents matching a filter JSON, paged',
      handler: async (ctx) => mgOk(await pageOfAgents(deps, filterFromBody(ctx), parsePage(ctx.query))),
    }),
    r({
      method: 'GET',
      path: '/api/v1/agent/getConfig/:id',
      access: 'callback',
      summary: "the agent's effective plugin config (default ⊕ tags ⊕ agent)",
      async handler(ctx) {
        const id = ctx.params.id!;
        const list = await deps.configs.effective(id, await deps.tags.ofAgent(id));
        return mgOk(list ?? []);
      },
    }),
    r({
      method: 'GET',
      path: '/api/v1/agent/getDefaultConfig',
      access: 'read',
      summary: 'the default plugin config',
      handler: async () => mgOk((await deps.configs.get(defaultScope, { fresh: true })) ?? []),
    }),
    r({
      method: 'POST',
      path: '/api/v1/agent/updateDefaultConfig',
      access: 'write',
      summary: 'replace the default plugin config: {"type","config":[AgentConfigMsg]}',
      async handler(ctx) {
        const body = ctx.body();
        if (!isObject(body)) throw badRequest('the body must be an object');
        let list: ReturnType<typeof parseConfigList>;
        try {
          list = parseConfigList(body.config, { full: true });
        } catch (err) {
          if (err instanceof ConfigError) throw badRequest(err.message);
          throw err;
        }
        await deps.configs.replace(defaultScope, list, actor(ctx));
        ctx.audit.target = defaultScope;
        ctx.audit.detail = { config: list.map((c) => `${c.name}@${c.version}`) };
        return mgOk({ type: typeof body.type === 'string' ? body.type : 'agent_config', config: list });
      },
    }),
    r({
      method: 'POST',
      path: '/api/v1/agent/queryInfo',
      access: 'callback',
      audited: false,
      summary: 'tags of agents (what gateways attach to records): {"id_list"} → {id:{tags,...}}',
      async handler(ctx) {
        const body = ctx.body();
        if (!isObject(body)) throw badRequest('the body must be an object');
        const ids = stringList(body.id_list, 'id_list');
        const tags = await deps.tags.ofAgents(ids);
        const data: Record<string, unknown> = {};
        for (const id of ids) {
          data[id] = { tags: (tags.get(id) ?? []).join(','), psm_name: '', psm_path: '', enhanced: 'false' };
        }
        return mgOk(data);
      },
    }),
    r({
      method: 'POST',
      path: '/api/v6/component/GetComponentInstances',
      access: 'callback',
      audited: false,
      summary:
        "the agent's effective plugin config, as an AgentCenter asks at first heartbeat (§2.7): {agent_id,…} → [ConfigMsg]",
      async handler(ctx) {
        const body = ctx.body();
        if (!isObject(body)) throw badRequest('the body must be an object');
        const id = body.agent_id;
        if (typeof id !== 'string' || id.length === 0 || id.length > 128) {
          throw badRequest('agent_id must be a non-empty string of at most 128 characters');
        }
        for (const k of ['kernel_version', 'platform_family', 'arch'] as const) {
          if (body[k] !== undefined && typeof body[k] !== 'string') throw badRequest(`${k} must be a string`);
        }
        const list = await deps.configs.effective(id, await deps.tags.ofAgent(id));
        // No scope configured at all: a stock AgentCenter sends an empty list as an empty Config
        // command, which uninstalls every plugin (§1.10). Say "nothing" instead, as our own
        // gateways' config source does; it then sends nothing.
        if (list === undefined) {
          return mgFail(MgCode.DbNoRowAffected, [], { msg: 'no config is set for this agent' });
        }
        return mgOk(
          list.map((c) => ({
            name: c.name,
            type: c.type,
            signature: c.signature,
            version: c.version,
            sha256: c.sha256,
            download_url: c.download_url,
          })),
        );
      },
    }),
    r({
      method: 'POST',
      path: '/api/v1/addTags',
      access: 'write',
      summary: 'tag agents by ID or address: {"tag","id_list","ipv4_list","ipv6_list"}',
      async handler(ctx) {
        const { tag, ids } = await tagTargets(deps, ctx);
        await deps.tags.add(tag, ids, actor(ctx));
        ctx.audit.target = `tag:${tag}`;
        ctx.audit.agents = ids;
        return mgOk(null);
      },
    }),
    r({
      method: 'POST',
      path: '/api/v1/addTags/filter',
      access: 'write',
      cost: 5,
      summary: 'tag the agents matching a filter JSON (?tag=x) → {"count"}',
      async handler(ctx) {
        const tag = ctx.query.get('tag');
        if (!isTag(tag)) throw badRequest('tag must be 1-64 characters without commas');
        const ids = await matchingIds(deps, filterFromBody(ctx));
        if (ids.length > MAX_TAG_TARGETS)
          throw new HttpError(200, MgCode.ExceedLimit, `at most ${MAX_TAG_TARGETS} agents per call`);
        await deps.tags.add(tag, ids, actor(ctx));
        ctx.audit.target = `tag:${tag}`;
        ctx.audit.agents = ids;
        return mgOk({ count: ids.length });
      },
    }),
    r({
      method: 'POST',
      path: '/api/v1/delTags',
      access: 'write',
      summary: 'untag agents by ID or address: {"tag","id_list","ipv4_list","ipv6_list"}',
      async handler(ctx) {
        const { tag, ids } = await tagTargets(deps, ctx);
        await deps.tags.remove(tag, ids);
        ctx.audit.target = `tag:${tag}`;
        ctx.audit.agents = ids;
        return mgOk(null);
      },
    }),
    r({
      method: 'GET',
      path: '/api/v1/getTags',
      access: 'read',
      summary: 'every tag in use',
      handler: async () => mgOk([...(await deps.tags.counts()).keys()]),
    }),
    r({
      method: 'POST',
      path: '/api/v1/getTags',
      access: 'read',
      audited: false,
      summary: 'tags of agents: {"id_list"} → {id:"a,b"}',
      async handler(ctx) {
        const body = ctx.body();
        if (!isObject(body)) throw badRequest('the body must be an object');
        const ids = stringList(body.id_list, 'id_list');
        const tags = await deps.tags.ofAgents(ids);
        return mgOk(Object.fromEntries(ids.map((id) => [id, (tags.get(id) ?? []).join(',')])));
      },
    }),
  ];
}

export function actor(ctx: Ctx): string {
  const p = ctx.principal;
  return p ? `${p.kind}:${p.id}` : 'anonymous';
}
