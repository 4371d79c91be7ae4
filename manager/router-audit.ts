/**
 * The audit entry of a state-changing call (or a refused one), written before the response
 * leaves. A failed write is tried once more; when that fails too the entry goes to the process
 * log, since the change is made and must not go unrecorded.
 */
import { retryWithBackoff } from '../platform/backoff.js';
import type { HttpRequest, HttpResponse } from '../platform/http/types.js';
import type { Logger } from '../platform/obs/logger.js';
import type { AuditLog } from './audit.js';
import { type Principal, principalLabel } from './roles.js';
import type { Ctx, ManagerRoute } from './router-types.js';

/** The audit context of a request refused before its handler ran. */
export function refusalCtx(
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

/** Elkeid's envelope code of a response, when it has one. */
function envelopeCode(route: ManagerRoute, response: HttpResponse): number | undefined {
  if (route.api !== 'elkeid' || typeof response.body !== 'string') return undefined;
  try {
    const parsed = JSON.parse(response.body) as { code?: unknown };
    return typeof parsed.code === 'number' ? parsed.code : undefined;
  } catch {
    return undefined; // not JSON: no code
  }
}

export async function writeAudit(
  deps: { audit: AuditLog; logger: Logger },
  route: ManagerRoute,
  label: string,
  ctx: Ctx,
  response: HttpResponse,
): Promise<void> {
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
    code: envelopeCode(route, response),
  };
  try {
    await retryWithBackoff(() => deps.audit.write(entry), { attempts: 2, baseMs: 50, capMs: 50 });
  } catch (err) {
    // The change is made; the entry goes to the process log so it is not lost silently.
    deps.logger.error({ err, audit: { ...entry, body: undefined } }, 'audit write failed');
  }
}
