/**
 * Our own API (`/api/fleet/...`, described in docs/openapi.yaml): plain JSON resources with HTTP
 * statuses. Statistics and load control, per-tag and per-agent config overrides (Elkeid has no
 * API for them), agents by ID, users, API keys and the audit log.
 *
 * Load control here only stores the desired connection limit per gateway; gateways do not
 * enforce it yet (a later piece), and the answers say so (`enforced: false`).
 */
import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { FLEET_SCOPE } from '../../store/fleet-items.js';
import { agentStatus, elkeidDoc } from '../agents.js';
import { DAY_PATTERN, utcDay } from '../audit.js';
import { agentScope, ConfigError, defaultScope, parseConfigList, tagScope } from '../configs.js';
import type { ManagerDeps } from '../deps.js';
import { apiOk } from '../envelope.js';
import { verifyPassword } from '../passwords.js';
import { atLeast, elkeidLevel, isRole, type Role } from '../roles.js';
import { type Ctx, HttpError, type ManagerRoute } from '../router.js';
import { fleetStats } from '../stats.js';
import { isTag } from '../tags.js';
import { publicUser, UserError } from '../users.js';
import { actor } from './elkeid.js';

const GATEWAY_ID = /^[\x21-\x7e]{1,128}$/;
const AGENT_ID = /^[\x21-\x7e]{1,128}$/;
export const MAX_GATEWAY_LIMIT = 10_000_000;

const invalid = (message: string) => new HttpError(400, 5, message, 'invalid_parameter');
const notFound = (message: string) => new HttpError(404, 6, message, 'not_found');
const forbidden = (message: string) => new HttpError(403, 1, message, 'forbidden');
const conflict = (message: string) => new HttpError(409, 2, message, 'conflict');

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function objectBody(ctx: Ctx): Record<string, unknown> {
  const b = ctx.body();
  if (!isObject(b)) throw invalid('the body must be a JSON object');
  return b;
}

function userError(err: unknown): never {
  if (err instanceof UserError) {
    if (err.kind === 'exists') throw conflict(err.message);
    if (err.kind === 'not_found') throw notFound(err.message);
    if (err.kind === 'last_admin') throw conflict(err.message);
    throw invalid(err.message);
  }
  throw err;
}

function configBody(ctx: Ctx, full: boolean) {
  const b = objectBody(ctx);
  try {
    return parseConfigList(b.config, { full });
  } catch (err) {
    if (err instanceof ConfigError) throw invalid(err.message);
    throw err;
  }
}

function param(ctx: Ctx, name: string, pattern: RegExp, what: string): string {
  const v = ctx.params[name] ?? '';
  if (!pattern.test(v)) throw invalid(`${what} is not valid`);
  return v;
}

export function fleetRoutes(deps: ManagerDeps): ManagerRoute[] {
  const r = (route: Omit<ManagerRoute, 'api'>): ManagerRoute => ({ ...route, api: 'fleet' });
  const { doc } = deps.store;
  const configsTable = deps.store.t.configs;

  async function readLimit(gatewayId: string) {
    const item = (
      await doc.send(
        new GetCommand({ TableName: configsTable, Key: { scope: FLEET_SCOPE.limit, name: gatewayId } }),
      )
    ).Item;
    return {
      gateway: gatewayId,
      limit: typeof item?.limit === 'number' ? item.limit : null,
      updated_at: typeof item?.updatedAtMs === 'number' ? item.updatedAtMs : null,
      updated_by: typeof item?.updatedBy === 'string' ? item.updatedBy : null,
      enforced: false,
    };
  }

  const scopeRoutes = (base: string, scopeOf: (ctx: Ctx) => string, label: string): ManagerRoute[] => [
    r({
      method: 'GET',
      path: base,
      access: 'read',
      summary: `the ${label} config override`,
      async handler(ctx) {
        const scope = scopeOf(ctx);
        return apiOk({ scope, config: (await deps.configs.get(scope, { fresh: true })) ?? [] });
      },
    }),
    r({
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
    r({
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

  return [
    r({
      method: 'GET',
      path: '/api/fleet/me',
      access: 'user',
      summary: 'who is calling',
      handler: (ctx) => {
        const p = ctx.principal!;
        return apiOk({
          kind: p.kind,
          id: p.id,
          role: p.role,
          level: elkeidLevel(p.role!),
          ...(p.owner ? { owner: p.owner } : {}),
        });
      },
    }),
    r({
      method: 'GET',
      path: '/api/fleet/stats',
      access: 'read',
      summary: 'fleet statistics from the gateways’ aggregates',
      handler: async () => apiOk(await fleetStats(deps.store, deps.agents, deps.tags, deps.now())),
    }),
    r({
      method: 'GET',
      path: '/api/fleet/gateways',
      access: 'read',
      summary: 'gateways with their aggregates and desired limits',
      async handler() {
        const gateways = await deps.agents.gateways({ fresh: true });
        const out = [];
        for (const g of [...gateways.values()].sort((a, b) => a.gatewayId.localeCompare(b.gatewayId))) {
          const limit = await readLimit(g.gatewayId);
          out.push({
            id: g.gatewayId,
            control_addr: g.controlAddr ?? null,
            alive: g.alive,
            updated_at: g.updatedAtMs,
            connected: g.connected,
            online: g.online,
            running: g.running,
            abnormal: g.abnormal,
            silent: g.stale,
            desired_limit: limit.limit,
          });
        }
        return apiOk({ gateways: out });
      },
    }),
    r({
      method: 'GET',
      path: '/api/fleet/gateways/:id/limit',
      access: 'read',
      summary: "a gateway's desired connection limit",
      handler: async (ctx) => apiOk(await readLimit(param(ctx, 'id', GATEWAY_ID, 'gateway id'))),
    }),
    r({
      method: 'PUT',
      path: '/api/fleet/gateways/:id/limit',
      access: 'write',
      maxBodyBytes: 4096,
      summary: "set a gateway's desired connection limit (stored; not enforced yet)",
      async handler(ctx) {
        const id = param(ctx, 'id', GATEWAY_ID, 'gateway id');
        const b = objectBody(ctx);
        const limit = b.limit;
        if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0 || limit > MAX_GATEWAY_LIMIT) {
          throw invalid(`limit must be an integer from 0 to ${MAX_GATEWAY_LIMIT}`);
        }
        await doc.send(
          new PutCommand({
            TableName: configsTable,
            Item: {
              scope: FLEET_SCOPE.limit,
              name: id,
              limit,
              updatedAtMs: deps.now(),
              updatedBy: actor(ctx),
            },
          }),
        );
        ctx.audit.target = `gateway:${id}`;
        ctx.audit.detail = { limit };
        return apiOk(await readLimit(id));
      },
    }),
    r({
      method: 'DELETE',
      path: '/api/fleet/gateways/:id/limit',
      access: 'write',
      summary: "clear a gateway's desired connection limit",
      async handler(ctx) {
        const id = param(ctx, 'id', GATEWAY_ID, 'gateway id');
        await doc.send(
          new DeleteCommand({ TableName: configsTable, Key: { scope: FLEET_SCOPE.limit, name: id } }),
        );
        ctx.audit.target = `gateway:${id}`;
        return apiOk(await readLimit(id));
      },
    }),
    r({
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
    r({
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
    r({
      method: 'GET',
      path: '/api/fleet/configs/default',
      access: 'read',
      summary: 'the default config',
      handler: async () =>
        apiOk({ scope: defaultScope, config: (await deps.configs.get(defaultScope, { fresh: true })) ?? [] }),
    }),
    r({
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
      '/api/fleet/configs/tags/:tag',
      (ctx) => {
        const tag = ctx.params.tag ?? '';
        if (!isTag(tag)) throw invalid('tag is not valid');
        return tagScope(tag);
      },
      'per-tag',
    ),
    ...scopeRoutes(
      '/api/fleet/configs/agents/:id',
      (ctx) => agentScope(param(ctx, 'id', AGENT_ID, 'agent id')),
      'per-agent',
    ),
    r({
      method: 'GET',
      path: '/api/fleet/users',
      access: 'admin',
      summary: 'users',
      handler: async () => apiOk({ users: (await deps.users.list()).map(publicUser) }),
    }),
    r({
      method: 'POST',
      path: '/api/fleet/users',
      access: 'admin',
      maxBodyBytes: 16 * 1024,
      summary: 'create a user: {"username","password","role"}',
      async handler(ctx) {
        const b = objectBody(ctx);
        if (typeof b.username !== 'string' || typeof b.password !== 'string' || !isRole(b.role)) {
          throw invalid('username, password and role (admin, operator or viewer) are required');
        }
        ctx.audit.target = `user:${b.username.slice(0, 64)}`;
        ctx.audit.detail = { role: b.role };
        const user = await deps.users
          .create({ username: b.username, password: b.password, role: b.role, createdBy: actor(ctx) })
          .catch(userError);
        return apiOk(publicUser(user), 201);
      },
    }),
    r({
      method: 'DELETE',
      path: '/api/fleet/users/:name',
      access: 'admin',
      summary: 'delete a user',
      async handler(ctx) {
        const name = ctx.params.name!;
        ctx.audit.target = `user:${name.slice(0, 64)}`;
        await deps.users.delete(name).catch(userError);
        return apiOk({ deleted: name });
      },
    }),
    r({
      method: 'PUT',
      path: '/api/fleet/users/:name/password',
      access: 'user',
      maxBodyBytes: 16 * 1024,
      summary: 'change a password: your own with {"current_password","password"}, anyone’s as admin',
      async handler(ctx) {
        const name = ctx.params.name!;
        const p = ctx.principal!;
        const b = objectBody(ctx);
        if (typeof b.password !== 'string') throw invalid('password is required');
        ctx.audit.target = `user:${name.slice(0, 64)}`;
        const self = p.kind === 'user' && p.id === name;
        if (!self && p.role !== 'admin') throw forbidden('only an admin may change another user’s password');
        if (self && p.role !== 'admin') {
          const user = await deps.users.get(name, { fresh: true });
          if (
            !user ||
            typeof b.current_password !== 'string' ||
            !(await verifyPassword(b.current_password, user.passwordHash))
          ) {
            throw forbidden('current_password is wrong');
          }
        }
        await deps.users.setPassword(name, b.password).catch(userError);
        return apiOk({ username: name, password_changed: true });
      },
    }),
    r({
      method: 'PUT',
      path: '/api/fleet/users/:name/role',
      access: 'admin',
      maxBodyBytes: 4096,
      summary: 'change a user’s role: {"role"}',
      async handler(ctx) {
        const name = ctx.params.name!;
        const b = objectBody(ctx);
        if (!isRole(b.role)) throw invalid('role must be admin, operator or viewer');
        ctx.audit.target = `user:${name.slice(0, 64)}`;
        ctx.audit.detail = { role: b.role };
        await deps.users.setRole(name, b.role).catch(userError);
        return apiOk({ username: name, role: b.role });
      },
    }),
    r({
      method: 'GET',
      path: '/api/fleet/apikeys',
      access: 'admin',
      summary: 'API keys (never their secrets)',
      handler: async () => apiOk({ apikeys: await deps.apiKeys.list() }),
    }),
    r({
      method: 'POST',
      path: '/api/fleet/apikeys',
      access: 'user',
      maxBodyBytes: 4096,
      summary: 'create an API key for yourself: {"name","role"} (role at most yours); the key is shown once',
      async handler(ctx) {
        const p = ctx.principal!;
        if (p.kind !== 'user') throw forbidden('API keys are created by signed-in users');
        const b = objectBody(ctx);
        const role: Role =
          b.role === undefined
            ? p.role!
            : isRole(b.role)
              ? b.role
              : (() => {
                  throw invalid('role must be admin, operator or viewer');
                })();
        if (!atLeast(p.role!, role)) throw forbidden('a key cannot have a higher role than its owner');
        const name = typeof b.name === 'string' ? b.name : '';
        const { key, record } = await deps.apiKeys.create({ name, owner: p.id, role });
        ctx.audit.target = `apikey:${record.keyId}`;
        ctx.audit.detail = { role, name };
        return apiOk({ key, ...record }, 201);
      },
    }),
    r({
      method: 'DELETE',
      path: '/api/fleet/apikeys/:id',
      access: 'admin',
      summary: 'revoke an API key',
      async handler(ctx) {
        const id = ctx.params.id!;
        ctx.audit.target = `apikey:${id.slice(0, 32)}`;
        if (!(await deps.apiKeys.revoke(id))) throw notFound('no such API key');
        return apiOk({ revoked: id });
      },
    }),
    r({
      method: 'GET',
      path: '/api/fleet/audit',
      access: 'admin',
      summary: 'audit entries, oldest first: ?from=YYYY-MM-DD&to=YYYY-MM-DD&limit=&cursor=',
      async handler(ctx) {
        const today = utcDay(deps.now());
        const from = ctx.query.get('from') ?? today;
        const to = ctx.query.get('to') ?? today;
        if (!DAY_PATTERN.test(from) || !DAY_PATTERN.test(to) || from > to)
          throw invalid('from and to must be days YYYY-MM-DD, from ≤ to');
        const limitRaw = Number(ctx.query.get('limit') ?? 100);
        const limit = Number.isInteger(limitRaw) && limitRaw > 0 ? Math.min(limitRaw, 1000) : 100;
        const cursor = ctx.query.get('cursor') ?? undefined;
        try {
          return apiOk(await deps.audit.list({ from, to, limit, ...(cursor ? { cursor } : {}) }));
        } catch (err) {
          if (err instanceof Error && err.message === 'bad cursor') throw invalid('bad cursor');
          if (err instanceof SyntaxError) throw invalid('bad cursor');
          throw err;
        }
      },
    }),
  ];
}
