/** Tagging agents by ID, address or filter, and reading tags (`addTags`, `delTags`, `getTags`). */
import { agentStatus, elkeidDoc, stringList as storedStrings } from '../agents.js';
import type { ManagerDeps } from '../deps.js';
import { MgCode, mgOk } from '../envelope.js';
import { type Filter, matches } from '../filter.js';
import { badRequest, type Ctx, HttpError, type ManagerRoute } from '../router.js';
import { isTag, MAX_TAG_TARGETS } from '../tags.js';
import { actor, elkeidRoute, filterFromBody, isObject, stringList } from './elkeid-http.js';

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

export function elkeidTagRoutes(deps: ManagerDeps): ManagerRoute[] {
  return [
    elkeidRoute({
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
    elkeidRoute({
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
    elkeidRoute({
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
    elkeidRoute({
      method: 'GET',
      path: '/api/v1/getTags',
      access: 'read',
      summary: 'every tag in use',
      handler: async () => mgOk([...(await deps.tags.counts()).keys()]),
    }),
    elkeidRoute({
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
