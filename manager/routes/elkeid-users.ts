/** Sign-in, sign-out and who is signed in (Elkeid's `/api/v1/user/*`). */
import type { ManagerDeps } from '../deps.js';
import { MgCode, mgFail, mgOk } from '../envelope.js';
import { verifyPassword } from '../passwords.js';
import { elkeidLevel } from '../roles.js';
import { badRequest, type ManagerRoute } from '../router.js';
import { USERNAME_PATTERN } from '../users.js';
import { elkeidRoute, isObject } from './elkeid-http.js';

/** A hash that verifyPassword spends the same time on when the user does not exist. */
const DUMMY_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

export function elkeidUserRoutes(deps: ManagerDeps): ManagerRoute[] {
  return [
    elkeidRoute({
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
    elkeidRoute({
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
    elkeidRoute({
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
  ];
}
