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
import type { AuditLog } from './audit.js';
import { apiError, MgCode, mgFail } from './envelope.js';
import { FilterError } from './filter.js';
import type { RateLimiter } from './rate-limit.js';
import { allowed, type Principal, principalLabel } from './roles.js';
import { refusalCtx, writeAudit } from './router-audit.js';
import { type AuthDeps, authenticate } from './router-auth.js';
import { createRouteTable } from './router-table.js';
import {
  type ApiStyle,
  badRequest,
  type Ctx,
  errorResponse,
  HttpError,
  type ManagerRoute,
} from './router-types.js';
import type { TokenSigner } from './tokens.js';
import type { UserStore } from './users.js';

export {
  type ApiStyle,
  type AuditNote,
  badRequest,
  type Ctx,
  errorResponse,
  HttpError,
  type ManagerRoute,
  notFound,
} from './router-types.js';

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

/** The context a handler gets; `body()` parses JSON only (a form or text/plain POST is refused). */
function requestCtx(req: HttpRequest, params: Record<string, string>, principal: Principal | undefined): Ctx {
  return {
    req,
    params,
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
}

/** What a handler's failure answers: its refusal, a refused filter, 503 without a store, else 500. */
function failureResponse(logger: Logger, route: ManagerRoute, label: string, err: unknown): HttpResponse {
  if (err instanceof HttpError) return errorResponse(route.api, err);
  // A filter refused while it was evaluated (its regex work budget spent).
  if (err instanceof FilterError) return errorResponse(route.api, badRequest(err.message));
  if (isStoreUnavailable(err)) {
    // The store is down: a retryable 503 with the cause, not an opaque 500.
    logger.error({ err, route: label }, 'manager store unavailable');
    const cause = `store unavailable: ${(err as Error).message}`;
    if (route.api === 'elkeid') return mgFail(MgCode.UnknownError, cause, { status: 503 });
    return errorResponse(route.api, new HttpError(503, MgCode.UnknownError, cause, 'store_unavailable'));
  }
  logger.error({ err, route: label }, 'manager handler failed');
  if (route.api === 'elkeid') return mgFail(MgCode.UnknownError, 'internal error', { status: 500 });
  return errorResponse(route.api, new HttpError(500, MgCode.UnknownError, 'internal error', 'internal'));
}

/** No route for the path (404), or none for the method (405 with `allow`). */
function unmatched(api: ApiStyle, methods: Set<string>): HttpResponse {
  if (methods.size === 0) {
    return errorResponse(api, new HttpError(404, MgCode.ParamInvalid, 'not found', 'not_found'));
  }
  return errorResponse(
    api,
    new HttpError(405, MgCode.ParamInvalid, 'method not allowed', 'method_not_allowed'),
    { allow: [...methods].join(', ') },
  );
}

export function createManagerRouter(deps: RouterDeps): Handler {
  const now = deps.now ?? Date.now;
  const table = createRouteTable(deps.routes);
  const open = new Map((deps.openRoutes ?? []).map((r) => [`${r.method} ${r.path}`, r.handler]));
  const auth: AuthDeps = { ...deps, now };

  /** Authentication and the role check; the refusal's response when the call is not admitted. */
  async function admit(
    route: ManagerRoute,
    label: string,
    req: HttpRequest,
    params: Record<string, string>,
  ): Promise<{ principal: Principal | undefined } | { refused: HttpResponse }> {
    if (route.access === 'public') return { principal: undefined };
    const a = await authenticate(auth, req);
    if (!a.principal) {
      const limited = deps.limiter.take(`ip:${req.remoteAddress}`);
      if (!limited.ok) return { refused: tooMany(route.api, limited.retryAfterS) };
      deps.logger.info({ route: label, peer: req.remoteAddress, reason: a.reason }, 'manager auth failed');
      const refused = errorResponse(
        route.api,
        new HttpError(401, MgCode.AuthFailed, 'auth failed', 'unauthenticated'),
      );
      // Credentials presented and refused (forged, revoked, expired) are audited; a bare call
      // without any is not (bounded by the per-address limit above either way).
      if (a.reason !== 'no credentials') {
        await writeAudit(deps, route, label, refusalCtx(req, params, undefined, a.reason!), refused);
      }
      return { refused };
    }
    const principal = a.principal;
    if (allowed(route.access, principal)) return { principal };
    deps.logger.warn(
      { route: label, principal: principalLabel(principal), role: principal.role, peer: req.remoteAddress },
      'manager request forbidden',
    );
    const refused = errorResponse(
      route.api,
      new HttpError(403, MgCode.AuthFailed, 'permission denied', 'forbidden'),
    );
    await writeAudit(deps, route, label, refusalCtx(req, params, principal, 'role check refused'), refused);
    return { refused };
  }

  async function run(req: HttpRequest): Promise<{ label: string; response: HttpResponse }> {
    const openHandler = open.get(`${req.method} ${req.path}`);
    if (openHandler) return { label: req.path, response: await openHandler(req) };
    const lookup = table.find(req.method, req.path);
    if (!lookup.found) {
      const api: ApiStyle = req.path.startsWith('/api/fleet') ? 'fleet' : 'elkeid';
      return { label: 'unmatched', response: unmatched(api, lookup.methods) };
    }
    const { route, params } = lookup.found;
    const label = `${route.method} ${route.path}`;
    if (req.body.length > (route.maxBodyBytes ?? DEFAULT_MAX_BODY)) {
      const tooLarge = new HttpError(413, MgCode.ExceedLimit, 'request body too large', 'body_too_large');
      return { label, response: errorResponse(route.api, tooLarge) };
    }
    const admitted = await admit(route, label, req, params);
    if ('refused' in admitted) return { label, response: admitted.refused };
    const { principal } = admitted;
    const limiter = principal?.kind === 'gateway' ? deps.gatewayLimiter : deps.limiter;
    const rl = limiter.take(rateKey(principal, req.remoteAddress), route.cost ?? 1);
    if (!rl.ok) return { label, response: tooMany(route.api, rl.retryAfterS) };

    const ctx = requestCtx(req, params, principal);
    let response: HttpResponse;
    try {
      response = await route.handler(ctx);
    } catch (err) {
      response = failureResponse(deps.logger, route, label, err);
    }
    if ((route.audited ?? route.method !== 'GET') && !ctx.audit.skip) {
      await writeAudit(deps, route, label, ctx, response);
    }
    return { label, response };
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
