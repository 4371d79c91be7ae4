/**
 * Plugin configs and the AgentCenter callbacks (`getConfig`, `getDefaultConfig`,
 * `updateDefaultConfig`, `queryInfo`, `GetComponentInstances`).
 */
import { ConfigError, defaultScope, parseConfigList } from '../configs.js';
import type { ManagerDeps } from '../deps.js';
import { MgCode, mgFail, mgOk } from '../envelope.js';
import { badRequest, type ManagerRoute } from '../router.js';
import { actor, elkeidRoute, isObject, stringList } from './elkeid-http.js';

export function elkeidConfigRoutes(deps: ManagerDeps): ManagerRoute[] {
  return [
    elkeidRoute({
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
    elkeidRoute({
      method: 'GET',
      path: '/api/v1/agent/getDefaultConfig',
      access: 'read',
      summary: 'the default plugin config',
      handler: async () => mgOk((await deps.configs.get(defaultScope, { fresh: true })) ?? []),
    }),
    elkeidRoute({
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
    elkeidRoute({
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
    elkeidRoute({
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
  ];
}
