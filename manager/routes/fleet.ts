/**
 * Our own API (`/api/fleet/...`, described in docs/openapi.yaml): plain JSON resources with HTTP
 * statuses. Statistics and load control, per-tag and per-agent config overrides (Elkeid has no
 * API for them), agents by ID, users, API keys and the audit log.
 *
 * Load control stores the desired connection limit per gateway (`fleet#limit`, optionally with an
 * expiry); each gateway re-reads it every few seconds and enforces it (gateway/agent/load-shedder.ts):
 * admission stops at it, discovery is told, excess streams are ended at FLEETGATE_SHED_RATE.
 * Rebalance sets limits from the live registry's mean so a skewed cluster evens out.
 */
import { agentStatus, elkeidDoc } from '../agents.js';
import { ApiKeyLimitError } from '../apikeys.js';
import { DAY_PATTERN, utcDay } from '../audit.js';
import { agentScope, ConfigError, defaultScope, parseConfigList, tagScope } from '../configs.js';
import type { ManagerDeps } from '../deps.js';
import { apiOk, MgCode } from '../envelope.js';
import { verifyPassword } from '../passwords.js';
import { atLeast, elkeidLevel, isRole, type Role } from '../roles.js';
import { type Ctx, HttpError, type ManagerRoute } from '../router.js';
import { fleetStats } from '../stats.js';
import {
  deleteGatewayLimit,
  type GatewayLimitItem,
  getGatewayLimit,
  getGatewayLimits,
  putGatewayLimit,
} from '../store/fleet.js';
import { isTag } from '../tags.js';
import { publicUser, UserError } from '../users.js';
import { actor } from './elkeid.js';

const GATEWAY_ID = /^[\x21-\x7e]{1,128}$/;
const AGENT_ID = /^[\x21-\x7e]{1,128}$/;
export const MAX_GATEWAY_LIMIT = 10_000_000;
/** The registry name gateways register their agent port under (Elkeid's). */
export const GATEWAY_SERVICE_NAME = 'hids_svr_grpc';
/** Rebalance defaults: limits 10 % above the mean, for 10 minutes. */
export const REBALANCE_SLACK = 0.1;
export const REBALANCE_EXPIRES_S = 600;
const MAX_LIMIT_EXPIRY_S = 7 * 86_400;

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

  function limitView(gatewayId: string, item: GatewayLimitItem | undefined) {
    const expiresAt = item?.expiresAtMs ?? null;
    // An expired limit is no limit: the gateways ignore it too.
    const live = item !== undefined && (expiresAt === null || expiresAt > deps.now());
    return {
      gateway: gatewayId,
      limit: live ? (item.limit ?? null) : null,
      expires_at: live ? expiresAt : null,
      updated_at: item?.updatedAtMs ?? null,
      updated_by: item?.updatedBy ?? null,
      enforced: true,
    };
  }

  async function readLimit(gatewayId: string) {
    return limitView(gatewayId, await getGatewayLimit(deps.store, gatewayId, { consistent: true }));
  }

  async function readLimits(ids: readonly string[]) {
    const items = await getGatewayLimits(deps.store, ids);
    return new Map(ids.map((id) => [id, limitView(id, items.get(id))]));
  }

  async function writeLimit(id: string, limit: number, by: string, expiresAtMs: number | undefined) {
    await putGatewayLimit(deps.store, id, { limit, updatedAtMs: deps.now(), updatedBy: by, expiresAtMs });
  }

  function expiryOf(b: Record<string, unknown>, def: number | undefined): number | undefined {
    const v = b.expires_in_s;
    if (v === undefined || v === null) return def === undefined ? undefined : deps.now() + def * 1000;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_LIMIT_EXPIRY_S) {
      throw invalid(`expires_in_s must be an integer from 1 to ${MAX_LIMIT_EXPIRY_S}`);
    }
    return deps.now() + v * 1000;
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
        const sorted = [...gateways.values()].sort((a, b) => a.gatewayId.localeCompare(b.gatewayId));
        const limits = await readLimits(sorted.map((g) => g.gatewayId));
        const out = [];
        for (const g of sorted) {
          const limit = limits.get(g.gatewayId)!;
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
            desired_limit_expires_at: limit.expires_at,
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
      summary: "set a gateway's desired connection limit (enforced within seconds; optional expires_in_s)",
      async handler(ctx) {
        const id = param(ctx, 'id', GATEWAY_ID, 'gateway id');
        const b = objectBody(ctx);
        const limit = b.limit;
        if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0 || limit > MAX_GATEWAY_LIMIT) {
          throw invalid(`limit must be an integer from 0 to ${MAX_GATEWAY_LIMIT}`);
        }
        const expiresAtMs = expiryOf(b, undefined);
        await writeLimit(id, limit, actor(ctx), expiresAtMs);
        ctx.audit.target = `gateway:${id}`;
        ctx.audit.detail = { limit, ...(expiresAtMs !== undefined ? { expiresAtMs } : {}) };
        return apiOk(await readLimit(id));
      },
    }),
    r({
      method: 'POST',
      path: '/api/fleet/gateways/rebalance',
      access: 'write',
      maxBodyBytes: 4096,
      summary: 'even out a skewed cluster: limits of mean × (1 + slack) for the gateways above it, expiring',
      async handler(ctx) {
        const raw = ctx.req.body.length === 0 ? {} : objectBody(ctx);
        const slack = raw.slack ?? REBALANCE_SLACK;
        if (typeof slack !== 'number' || !Number.isFinite(slack) || slack < 0 || slack > 10) {
          throw invalid('slack must be a number from 0 to 10');
        }
        const dryRun = raw.dry_run ?? false;
        if (typeof dryRun !== 'boolean') throw invalid('dry_run must be a boolean');
        const expiresAtMs = expiryOf(raw, REBALANCE_EXPIRES_S)!;
        const live = await deps.registry.list(GATEWAY_SERVICE_NAME);
        const byId = new Map<string, number>();
        for (const inst of live) byId.set(`${inst.ip}:${inst.port}`, inst.weight);
        const ids = [...byId.keys()].sort();
        const total = ids.reduce((n, id) => n + byId.get(id)!, 0);
        const mean = ids.length > 0 ? total / ids.length : 0;
        // Rounded first: 50 × 1.1 is 55.000000000000007 in binary floating point.
        const target = Math.max(1, Math.ceil(Math.round(mean * (1 + slack) * 1e6) / 1e6));
        const gateways = ids.map((id) => {
          const connected = byId.get(id)!;
          const over = ids.length > 1 && connected > target;
          return { id, connected, limit: over ? target : null, excess: over ? connected - target : 0 };
        });
        const changed = gateways.filter((g) => g.limit !== null);
        if (!dryRun) {
          for (const g of changed) await writeLimit(g.id, g.limit!, actor(ctx), expiresAtMs);
        }
        ctx.audit.target = 'gateways';
        ctx.audit.detail = {
          dryRun,
          gateways: ids.length,
          total,
          target,
          expiresAtMs,
          limited: changed.map((g) => `${g.id}=${g.limit}`),
        };
        return apiOk({
          dry_run: dryRun,
          gateways,
          total,
          mean,
          target,
          expires_at: expiresAtMs,
          moved: changed.reduce((n, g) => n + g.excess, 0),
        });
      },
    }),
    r({
      method: 'DELETE',
      path: '/api/fleet/gateways/:id/limit',
      access: 'write',
      summary: "clear a gateway's desired connection limit",
      async handler(ctx) {
        const id = param(ctx, 'id', GATEWAY_ID, 'gateway id');
        await deleteGatewayLimit(deps.store, id);
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
        // Its keys are already dead (bound to the deleted account); revoked too, so lists say so.
        const keysRevoked = await deps.apiKeys.revokeAllOf(name);
        ctx.audit.detail = { apiKeysRevoked: keysRevoked };
        return apiOk({ deleted: name, api_keys_revoked: keysRevoked });
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
        // A reset by someone else is what follows a suspected compromise: the account's API keys
        // go too, not only its sessions. Changing your own password keeps your keys.
        const keysRevoked = self ? 0 : await deps.apiKeys.revokeAllOf(name);
        if (keysRevoked > 0) ctx.audit.detail = { apiKeysRevoked: keysRevoked };
        return apiOk({ username: name, password_changed: true, api_keys_revoked: keysRevoked });
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
        const owner = await deps.users.get(p.id, { fresh: true });
        if (!owner) throw forbidden('your account no longer exists');
        const { key, record } = await deps.apiKeys
          .create({ name, owner: p.id, ownerAccount: owner.accountId, role })
          .catch((err: unknown) => {
            if (err instanceof ApiKeyLimitError)
              throw new HttpError(409, MgCode.ExceedLimit, err.message, 'too_many_keys');
            throw err;
          });
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
