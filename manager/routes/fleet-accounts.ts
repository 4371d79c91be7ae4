/**
 * Who is calling, users, API keys and the audit log (`/api/fleet/me`, `/users`, `/apikeys`,
 * `/audit`). Removing a user or resetting another user's password revokes the account's API keys
 * too; changing your own password keeps them.
 */

import { ApiKeyLimitError } from '../apikeys.js';
import { DAY_PATTERN, utcDay } from '../audit.js';
import { auditFilterOf } from '../audit-filter.js';
import type { ManagerDeps } from '../deps.js';
import { apiOk, MgCode } from '../envelope.js';
import { verifyPassword } from '../passwords.js';
import { atLeast, elkeidLevel, isRole, type Principal, type Role } from '../roles.js';
import { type Ctx, HttpError, type ManagerRoute } from '../router.js';
import { publicUser, UserError } from '../users.js';
import { actor } from './elkeid-http.js';
import { conflict, fleetRoute, forbidden, invalid, notFound, objectBody } from './fleet-http.js';

function userError(err: unknown): never {
  if (err instanceof UserError) {
    if (err.kind === 'exists') throw conflict(err.message);
    if (err.kind === 'not_found') throw notFound(err.message);
    if (err.kind === 'last_admin') throw conflict(err.message);
    throw invalid(err.message);
  }
  throw err;
}

export function meRoute(): ManagerRoute {
  return fleetRoute({
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
  });
}

/**
 * A password change is allowed for yourself (with your current password, unless you are an
 * admin) and for an admin changing anyone's.
 */
async function checkPasswordChange(
  deps: ManagerDeps,
  p: Principal,
  name: string,
  b: Record<string, unknown>,
) {
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
  return self;
}

export function userRoutes(deps: ManagerDeps): ManagerRoute[] {
  return [
    fleetRoute({
      method: 'GET',
      path: '/api/fleet/users',
      access: 'admin',
      summary: 'users',
      handler: async () => apiOk({ users: (await deps.users.list()).map(publicUser) }),
    }),
    fleetRoute({
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
    fleetRoute({
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
    fleetRoute({
      method: 'PUT',
      path: '/api/fleet/users/:name/password',
      access: 'user',
      maxBodyBytes: 16 * 1024,
      summary: 'change a password: your own with {"current_password","password"}, anyone’s as admin',
      async handler(ctx) {
        const name = ctx.params.name!;
        const b = objectBody(ctx);
        if (typeof b.password !== 'string') throw invalid('password is required');
        ctx.audit.target = `user:${name.slice(0, 64)}`;
        const self = await checkPasswordChange(deps, ctx.principal!, name, b);
        await deps.users.setPassword(name, b.password).catch(userError);
        // A reset by someone else is what follows a suspected compromise: the account's API keys
        // go too, not only its sessions. Changing your own password keeps your keys.
        const keysRevoked = self ? 0 : await deps.apiKeys.revokeAllOf(name);
        if (keysRevoked > 0) ctx.audit.detail = { apiKeysRevoked: keysRevoked };
        return apiOk({ username: name, password_changed: true, api_keys_revoked: keysRevoked });
      },
    }),
    fleetRoute({
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
  ];
}

/** The role a new key asks for: the caller's own when absent, never above it. */
function keyRole(p: Principal, b: Record<string, unknown>): Role {
  if (b.role !== undefined && !isRole(b.role)) throw invalid('role must be admin, operator or viewer');
  const role: Role = b.role === undefined ? p.role! : b.role;
  if (!atLeast(p.role!, role)) throw forbidden('a key cannot have a higher role than its owner');
  return role;
}

export function apiKeyRoutes(deps: ManagerDeps): ManagerRoute[] {
  return [
    fleetRoute({
      method: 'GET',
      path: '/api/fleet/apikeys',
      access: 'admin',
      summary: 'API keys (never their secrets)',
      handler: async () => apiOk({ apikeys: await deps.apiKeys.list() }),
    }),
    fleetRoute({
      method: 'POST',
      path: '/api/fleet/apikeys',
      access: 'user',
      maxBodyBytes: 4096,
      summary: 'create an API key for yourself: {"name","role"} (role at most yours); the key is shown once',
      async handler(ctx) {
        const p = ctx.principal!;
        if (p.kind !== 'user') throw forbidden('API keys are created by signed-in users');
        const b = objectBody(ctx);
        const role = keyRole(p, b);
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
    fleetRoute({
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
  ];
}

/**
 * `?from=&to=&actor=&action=&target=&result=&limit=&cursor=` of the audit listing (days default
 * to today, limit to 100, at most 1000).
 */
function auditQuery(ctx: Ctx, today: string) {
  const from = ctx.query.get('from') ?? today;
  const to = ctx.query.get('to') ?? today;
  if (!DAY_PATTERN.test(from) || !DAY_PATTERN.test(to) || from > to)
    throw invalid('from and to must be days YYYY-MM-DD, from ≤ to');
  const limitRaw = Number(ctx.query.get('limit') ?? 100);
  const limit = Number.isInteger(limitRaw) && limitRaw > 0 ? Math.min(limitRaw, 1000) : 100;
  const cursor = ctx.query.get('cursor') ?? undefined;
  return { from, to, limit, filter: auditFilterOf(ctx.query), ...(cursor ? { cursor } : {}) };
}

export function auditRoute(deps: ManagerDeps): ManagerRoute {
  return fleetRoute({
    method: 'GET',
    path: '/api/fleet/audit',
    access: 'admin',
    summary:
      'audit entries, oldest first: ?from=YYYY-MM-DD&to=YYYY-MM-DD&actor=&action=&target=&result=&limit=&cursor=',
    async handler(ctx) {
      const query = auditQuery(ctx, utcDay(deps.now()));
      try {
        return apiOk(await deps.audit.list(query));
      } catch (err) {
        if (err instanceof Error && err.message === 'bad cursor') throw invalid('bad cursor');
        if (err instanceof SyntaxError) throw invalid('bad cursor');
        throw err;
      }
    },
  });
}
