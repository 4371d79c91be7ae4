/**
 * The shapes a manager route module works with (router.ts runs them): the route, the request
 * context its handler gets, and the refusal it throws, rendered in the route's style (Elkeid's
 * envelope for `/api/v1`, plain JSON with an HTTP status for `/api/fleet`).
 */
import type { HttpRequest, HttpResponse } from '../platform/http/types.js';
import { apiError, MgCode, type MgCodeValue, mgFail } from './envelope.js';
import type { Access, Principal } from './roles.js';

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
