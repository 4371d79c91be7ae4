/**
 * Agents by ID and the config overrides Elkeid has no API for (`/api/fleet/agents…`,
 * `/api/fleet/configs…`): the default list, per-tag and per-agent overrides, and an agent's
 * effective config with the scopes it came from.
 */
import { agentStatus, elkeidDoc } from '../agents.js';
import { agentScope, ConfigError, defaultScope, parseConfigList, tagScope } from '../configs.js';
import type { ManagerDeps } from '../deps.js';
import { apiOk } from '../envelope.js';
import type { Ctx, ManagerRoute } from '../router.js';
import { isTag } from '../tags.js';
import { actor } from './elkeid-http.js';
import { AGENT_ID, fleetRoute, invalid, notFound, objectBody, param } from './fleet-http.js';

function configBody(ctx: Ctx, full: boolean) {
  const b = objectBody(ctx);
  try {
    return parseConfigList(b.config, { full });
  } catch (err) {
    if (err instanceof ConfigError) throw invalid(err.message);
    throw err;
  }
}

/** GET, PUT and DELETE of one override scope (per tag or per agent). */
function scopeRoutes(deps: ManagerDeps, base: string, scopeOf: (ctx: Ctx) => string, label: string) {
  return [
    fleetRoute({
      method: 'GET',
      path: base,
      access: 'read',
      summary: `the ${label} config override`,
      async handler(ctx) {
        const scope = scopeOf(ctx);
        return apiOk({ scope, config: (await deps.configs.get(scope, { fresh: true })) ?? [] });
      },
    }),
    fleetRoute({
      method: 'PUT',
      path: base,
      access: 'write',
      summary: `replace the ${label} config override (Elkeid updateConfig items; name-only items remove a plugin)`,
      async handler(ctx) {
        const scope = scopeOf(ctx);
        const config = configBody(ctx, false);
        await deps.configs.replace(scope, config, actor(ctx));
        ctx.audit.target = scope;
        ctx.audit.detail = { config: config.map((c) => `${c.name}@${c.version}`) };
        return apiOk({ scope, config });
      },
    }),
    fleetRoute({
      method: 'DELETE',
      path: base,
      access: 'write',
      summary: `remove the ${label} config override`,
      async handler(ctx) {
        const scope = scopeOf(ctx);
        await deps.configs.replace(scope, [], actor(ctx));
        ctx.audit.target = scope;
        return apiOk({ scope, config: [] });
      },
    }),
  ];
}

export function agentRoutes(deps: ManagerDeps): ManagerRoute[] {
  return [
    fleetRoute({
      method: 'GET',
      path: '/api/fleet/agents/:id',
      access: 'read',
      summary: 'one agent: status, gateway, heartbeat, plugins, tags',
      async handler(ctx) {
        const id = param(ctx, 'id', AGENT_ID, 'agent id');
        const item = await deps.agents.get(id);
        if (!item) throw notFound('agent not found');
        const status = agentStatus(item, await deps.agents.gateways(), deps.now());
        return apiOk(elkeidDoc(item, status, await deps.tags.ofAgent(id)));
      },
    }),
    fleetRoute({
      method: 'GET',
      path: '/api/fleet/agents/:id/config',
      access: 'read',
      summary: "an agent's effective config and the scopes it came from",
      async handler(ctx) {
        const id = param(ctx, 'id', AGENT_ID, 'agent id');
        const tags = await deps.tags.ofAgent(id);
        const config = await deps.configs.effective(id, tags);
        return apiOk({
          agent_id: id,
          scopes: [defaultScope, ...tags.map(tagScope), agentScope(id)],
          configured: config !== undefined,
          config: config ?? [],
        });
      },
    }),
  ];
}

export function configRoutes(deps: ManagerDeps): ManagerRoute[] {
  return [
    fleetRoute({
      method: 'GET',
      path: '/api/fleet/configs/default',
      access: 'read',
      summary: 'the default config',
      handler: async () =>
        apiOk({ scope: defaultScope, config: (await deps.configs.get(defaultScope, { fresh: true })) ?? [] }),
    }),
    fleetRoute({
      method: 'PUT',
      path: '/api/fleet/configs/default',
      access: 'write',
      summary: 'replace the default config (every item installable)',
      async handler(ctx) {
        const config = configBody(ctx, true);
        await deps.configs.replace(defaultScope, config, actor(ctx));
        ctx.audit.target = defaultScope;
        ctx.audit.detail = { config: config.map((c) => `${c.name}@${c.version}`) };
        return apiOk({ scope: defaultScope, config });
      },
    }),
    ...scopeRoutes(
      deps,
      '/api/fleet/configs/tags/:tag',
      (ctx) => {
        const tag = ctx.params.tag ?? '';
        if (!isTag(tag)) throw invalid('tag is not valid');
        return tagScope(tag);
      },
      'per-tag',
    ),
    ...scopeRoutes(
      deps,
      '/api/fleet/configs/agents/:id',
      (ctx) => agentScope(param(ctx, 'id', AGENT_ID, 'agent id')),
      'per-agent',
    ),
  ];
}
