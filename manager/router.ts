/**
 * The manager's request pipeline, on the shared runtime-agnostic handler shape (uWS and Lambda
 * serve the same Handler): route match with `:params`, body size limit, authentication
 * (session token, API key, or AK/SK for gateways), authorisation by role, a token-bucket rate
 * limit per principal, the handler, and an audit entry for every state-changing call written
 * before the response leaves. Errors are rendered in the route's style: Elkeid's envelope for
 * `/api/v1`, plain JSON with an HTTP status for `/api/fleet`.
 */

import type { Verifier } from '../platform/http/aksk.js';
import { type Handler, type HttpRequest, type HttpResponse, json } from '../platform/http/types.js';
import type { Logger } from '../platform/obs/logger.js';
import { isStoreUnavailable } from '../platform/store/store-health.js';
import type { ApiKeyStore } from './apikeys.js';
import { isApiKey } from './apikeys.js';
import type { AuditLog } from './audit.js';
import { apiError, MgCode, type MgCodeValue, mgFail } from './envelope.js';
import { FilterError } from './filter.js';
import type { RateLimiter } from './rate-limit.js';
import { type Access, allowed, type Principal, principalLabel } from './roles.js';
import { isSessionToken, type TokenSigner } from './tokens.js';
import { accountMatches, type UserStore } from './users.js';

export type ApiStyle = 'elkeid' | 'fleet';

export interface AuditNote {
  agents?: string[];
  agentCount?: number;
  target?: string;
  detail?: unknown;
  /** The actor when there is no principal yet (a sign-in names the account it tried). */
  actor?: string;
  /** Nothing changed (e.g. a refused request the handler answered itself): no entry. */
  skip?: boolean;
}

export interface Ctx {
  req: HttpRequest;
  params: Record<string, string>;
  query: URLSearchParams;
  principal: Principal | undefined;
  /** Filled by the handler for the audit entry. */
  audit: AuditNote;
  /** The JSON body; throws a 400/param-invalid HttpError when it is not JSON. */
  body(): unknown;
}

export interface ManagerRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** `/api/v1/agent/getStatus/:id` */
  path: string;
  access: Access;
  api: ApiStyle;
  summary: string;
  /** Default: every method but GET. */
  audited?: boolean;
  /** Default 1 MiB. */
  maxBodyBytes?: number;
  /** Rate-limit tokens one call takes (expensive scans cost more). Default 1. */
  cost?: number;
  handler(ctx: Ctx): Promise<HttpResponse> | HttpResponse;
}

/** A refusal the router renders in the route's style. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: MgCodeValue,
    message: string,
    readonly error = 'bad_request',
  ) {
    super(message);
  }
}

export const badRequest = (message: string) =>
  new HttpError(400, MgCode.ParamInvalid, message, 'invalid_parameter');
export const notFound = (message: string) => new HttpError(404, MgCode.DbNoRowAffected, message, 'not_found');

export function errorResponse(api: ApiStyle, e: HttpError, headers?: Record<string, string>): HttpResponse {
  if (api === 'fleet') return apiError(e.status, e.error, e.message, headers);
  // Elkeid answers auth failures 401 and forbidden 403 (empty bodies); other outcomes are HTTP 200
  // with a code. We keep its statuses and add the envelope, which its clients ignore on 401/403.
  const status =
    e.status === 401 || e.status === 403 || e.status === 429 || e.status === 413 || e.status === 415
      ? e.status
      : 200;
  return mgFail(e.code, e.message, { status, ...(headers ? { headers } : {}) });
}

interface Compiled {
  route: ManagerRoute;
  segments: string[];
  literals: number;
}

export interface RouterDeps {
  routes: ManagerRoute[];
  /** Routes answered before authentication (health). */
  openRoutes?: { method: string; path: string; handler: Handler }[];
  users: UserStore;
  apiKeys: ApiKeyStore;
  tokens: TokenSigner;
  verifier: Verifier;
  audit: AuditLog;
  limiter: RateLimiter;
  /** For gateways (AK/SK), which call in bulk. */
  gatewayLimiter: RateLimiter;
  logger: Logger;
  onRequest?: (route: string, status: number, seconds: number) => void;
  now?: () => number;
}

const DEFAULT_MAX_BODY = 1024 * 1024;
const JSON_TYPE = /^\s*application\/([\w.-]+\+)?json\s*(;|$)/i;

function split(path: string): string[] {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  return trimmed.split('/').slice(1);
}

function match(c: Compiled, segs: string[]): Record<string, string> | undefined {
  if (c.segments.length !== segs.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segs.length; i++) {
    const want = c.segments[i]!;
    const got = segs[i]!;
    if (want.startsWith(':')) {
      if (got === '') return undefined;
      let v: string;
      try {
        v = decodeURIComponent(got);
      } catch {
        return undefined;
      }
      params[want.slice(1)] = v;
    } else if (want !== got) return undefined;
  }
  return params;
}

function credentials(req: HttpRequest): string | undefined {
  const auth = req.headers.authorization;
  if (auth && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, '').trim();
  return req.headers.token?.trim() || req.headers['x-api-key']?.trim() || undefined;
}

export function createManagerRouter(deps: RouterDeps): Handler {
  const now = deps.now ?? Date.now;
  const compiled: Compiled[] = deps.routes.map((route) => {
    const segments = split(route.path);
    return { route, segments, literals: segments.filter((s) => !s.startsWith(':')).length };
  });
  // Literal segments win over parameters (`getStatus/filter` before `getStatus/:id`).
  compiled.sort((a, b) => b.literals - a.literals);
  const seen = new Set<string>();
  for (const c of compiled) {
    const key = `${c.route.method} ${c.segments.map((s) => (s.startsWith(':') ? ':' : s)).join('/')}`;
    if (seen.has(key)) throw new Error(`duplicate route ${c.route.method} ${c.route.path}`);
    seen.add(key);
  }
  const open = new Map((deps.openRoutes ?? []).map((r) => [`${r.method} ${r.path}`, r.handler]));

  async function authenticate(req: HttpRequest): Promise<{ principal?: Principal; reason?: string }> {
    if (req.headers.accesskey !== undefined) {
      const r = deps.verifier.verify(req);
      return r.ok ? { principal: { kind: 'gateway', id: r.ak } } : { reason: r.reason };
    }
    const cred = credentials(req);
    if (!cred) return { reason: 'no credentials' };
    if (isApiKey(cred)) {
      const key = await deps.apiKeys.verify(cred);
      if (!key) return { reason: 'invalid API key' };
      // The owner must still exist; the key's role is capped by the owner's current one.
      const owner = await deps.users.get(key.owner);
      if (!owner || owner.disabledAt !== undefined) return { reason: 'API key owner no longer exists' };
      if (!accountMatches(owner, key.ownerAccount)) return { reason: 'API key of a deleted account' };
      const rank = { viewer: 1, operator: 2, admin: 3 } as const;
      const role = rank[key.role] <= rank[owner.role] ? key.role : owner.role;
      return { principal: { kind: 'apikey', id: key.keyId, role, owner: key.owner } };
    }
    if (isSessionToken(cred)) {
      const t = deps.tokens.verify(cred, now());
      if (!t.ok) return { reason: t.reason };
      const user = await deps.users.get(t.claims.u);
      if (!user || user.disabledAt !== undefined) return { reason: 'user no longer exists' };
      // Same name, other account (deleted and created again): not this token's account.
      if (!accountMatches(user, t.claims.a)) return { reason: 'token of a deleted account' };
      if (t.claims.iat < user.tokensNotBefore) return { reason: 'token revoked' };
      return { principal: { kind: 'user', id: user.username, role: user.role } };
    }
    return { reason: 'unrecognised credentials' };
  }

  async function run(req: HttpRequest): Promise<{ label: string; response: HttpResponse }> {
    const openHandler = open.get(`${req.method} ${req.path}`);
    if (openHandler) return { label: req.path, response: await openHandler(req) };
    const segs = split(req.path);
    let found: { c: Compiled; params: Record<string, string> } | undefined;
    const methods = new Set<string>();
    for (const c of compiled) {
      const params = match(c, segs);
      if (!params) continue;
      methods.add(c.route.method);
      if (c.route.method === req.method && !found) found = { c, params };
    }
    const api: ApiStyle = req.path.startsWith('/api/fleet') ? 'fleet' : 'elkeid';
    if (!found) {
      if (methods.size > 0) {
        return {
          label: 'unmatched',
          response: errorResponse(
            api,
            new HttpError(405, MgCode.ParamInvalid, 'method not allowed', 'method_not_allowed'),
            {
              allow: [...methods].join(', '),
            },
          ),
        };
      }
      return {
        label: 'unmatched',
        response: errorResponse(api, new HttpError(404, MgCode.ParamInvalid, 'not found', 'not_found')),
      };
    }
    const { route } = found.c;
    const label = `${route.method} ${route.path}`;
    if (req.body.length > (route.maxBodyBytes ?? DEFAULT_MAX_BODY)) {
      return {
        label,
        response: errorResponse(
          route.api,
          new HttpError(413, MgCode.ExceedLimit, 'request body too large', 'body_too_large'),
        ),
      };
    }
    let principal: Principal | undefined;
    if (route.access !== 'public') {
      const a = await authenticate(req);
      if (!a.principal) {
        const limited = deps.limiter.take(`ip:${req.remoteAddress}`);
        if (!limited.ok) return { label, response: tooMany(route.api, limited.retryAfterS) };
        deps.logger.info({ route: label, peer: req.remoteAddress, reason: a.reason }, 'manager auth failed');
        const response = errorResponse(
          route.api,
          new HttpError(401, MgCode.AuthFailed, 'auth failed', 'unauthenticated'),
        );
        // Credentials presented and refused (forged, revoked, expired) are audited; a bare call
        // without any is not (bounded by the per-address limit above either way).
        if (a.reason !== 'no credentials') {
          await writeAudit(route, label, refusalCtx(req, found.params, undefined, a.reason!), response);
        }
        return { label, response };
      }
      principal = a.principal;
      if (!allowed(route.access, principal)) {
        deps.logger.warn(
          {
            route: label,
            principal: principalLabel(principal),
            role: principal.role,
            peer: req.remoteAddress,
          },
          'manager request forbidden',
        );
        const response = errorResponse(
          route.api,
          new HttpError(403, MgCode.AuthFailed, 'permission denied', 'forbidden'),
        );
        await writeAudit(
          route,
          label,
          refusalCtx(req, found.params, principal, 'role check refused'),
          response,
        );
        return { label, response };
      }
    }
    const limiter = principal?.kind === 'gateway' ? deps.gatewayLimiter : deps.limiter;
    const rl = limiter.take(rateKey(principal, req.remoteAddress), route.cost ?? 1);
    if (!rl.ok) return { label, response: tooMany(route.api, rl.retryAfterS) };

    const ctx: Ctx = {
      req,
      params: found.params,
      query: new URLSearchParams(req.query),
      principal,
      audit: {},
      body() {
        if (req.body.length === 0) throw badRequest('a JSON body is required');
        // Only JSON: a form or text/plain POST (what a foreign web page can send without a CORS
        // preflight) is refused, never parsed.
        if (!JSON_TYPE.test(req.headers['content-type'] ?? '')) {
          throw new HttpError(
            415,
            MgCode.ParamInvalid,
            'Content-Type must be application/json',
            'unsupported_media_type',
          );
        }
        try {
          return JSON.parse(req.body.toString('utf8'));
        } catch {
          throw badRequest('the body is not valid JSON');
        }
      },
    };
    let response: HttpResponse;
    try {
      response = await route.handler(ctx);
    } catch (err) {
      if (err instanceof HttpError) response = errorResponse(route.api, err);
      // A filter refused while it was evaluated (its regex work budget spent).
      else if (err instanceof FilterError) response = errorResponse(route.api, badRequest(err.message));
      else if (isStoreUnavailable(err)) {
        // The store is down: a retryable 503 with the cause, not an opaque 500.
        deps.logger.error({ err, route: label }, 'manager store unavailable');
        const cause = `store unavailable: ${(err as Error).message}`;
        response = errorResponse(
          route.api,
          new HttpError(503, MgCode.UnknownError, cause, 'store_unavailable'),
        );
        if (route.api === 'elkeid') response = mgFail(MgCode.UnknownError, cause, { status: 503 });
      } else {
        deps.logger.error({ err, route: label }, 'manager handler failed');
        response = errorResponse(
          route.api,
          new HttpError(500, MgCode.UnknownError, 'internal error', 'internal'),
        );
        if (route.api === 'elkeid') response = mgFail(MgCode.UnknownError, 'internal error', { status: 500 });
      }
    }
    if ((route.audited ?? route.method !== 'GET') && !ctx.audit.skip) {
      await writeAudit(route, label, ctx, response);
    }
    return { label, response };
  }

  /** The audit context of a request refused before its handler ran. */
  function refusalCtx(
    req: HttpRequest,
    params: Record<string, string>,
    principal: Principal | undefined,
    reason: string,
  ): Ctx {
    return {
      req,
      params,
      query: new URLSearchParams(req.query),
      principal,
      audit: { detail: { refused: reason }, ...(principal ? {} : { actor: 'unauthenticated' }) },
      body: () => undefined,
    };
  }

  async function writeAudit(
    route: ManagerRoute,
    label: string,
    ctx: Ctx,
    response: HttpResponse,
  ): Promise<void> {
    let code: number | undefined;
    if (route.api === 'elkeid' && typeof response.body === 'string') {
      try {
        const parsed = JSON.parse(response.body) as { code?: unknown };
        if (typeof parsed.code === 'number') code = parsed.code;
      } catch {
        // not JSON: no code
      }
    }
    const entry = {
      actor: ctx.principal ? principalLabel(ctx.principal) : (ctx.audit.actor ?? 'anonymous'),
      role: ctx.principal?.role,
      action: label,
      sourceIp: ctx.req.remoteAddress,
      agents: ctx.audit.agents,
      agentCount: ctx.audit.agentCount,
      target: ctx.audit.target,
      detail: ctx.audit.detail,
      body: ctx.req.body,
      status: response.status,
      code,
    };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await deps.audit.write(entry);
        return;
      } catch (err) {
        if (attempt === 1) {
          // The change is made; the entry goes to the process log so it is not lost silently.
          deps.logger.error({ err, audit: { ...entry, body: undefined } }, 'audit write failed');
        }
      }
    }
  }

  return async (req) => {
    const started = performance.now();
    let label = 'unmatched';
    let response: HttpResponse;
    try {
      ({ label, response } = await run(req));
    } catch (err) {
      deps.logger.error({ err, path: req.path }, 'manager request failed');
      response = isStoreUnavailable(err)
        ? json(503, { msg: `store unavailable: ${(err as Error).message}`, error: 'store_unavailable' })
        : json(500, { msg: 'internal error' });
    }
    deps.onRequest?.(label, response.status, (performance.now() - started) / 1000);
    return response;
  };
}

/**
 * Whose bucket a call takes from: a user's, whether it comes with a session or any of the user's
 * API keys (minting keys must not multiply a user's rate); a gateway's; or the peer address.
 */
function rateKey(principal: Principal | undefined, remoteAddress: string): string {
  if (!principal) return `ip:${remoteAddress}`;
  if (principal.kind === 'apikey' && principal.owner !== undefined) return `user:${principal.owner}`;
  return principalLabel(principal);
}

function tooMany(api: ApiStyle, retryAfterS: number): HttpResponse {
  const headers = { 'retry-after': String(retryAfterS) };
  if (api === 'fleet')
    return apiError(429, 'rate_limited', `too many requests; retry after ${retryAfterS} s`, headers);
  return mgFail(
    MgCode.ExceedLimit,
    { retry_after: retryAfterS },
    { status: 429, msg: 'exceed limit', headers },
  );
}
