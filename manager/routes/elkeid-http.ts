/** What the Elkeid v1 route modules share: the envelope's route style and body checks. */

import { MgCode } from '../envelope.js';
import { type Filter, FilterError, parseFilter } from '../filter.js';
import { badRequest, type Ctx, HttpError, type ManagerRoute } from '../router.js';

export const MAX_ID_LIST = 5000;

/** A route of the Elkeid-compatible API (its envelope and codes). */
export const elkeidRoute = (route: Omit<ManagerRoute, 'api'>): ManagerRoute => ({ ...route, api: 'elkeid' });

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function stringList(v: unknown, name: string, max = MAX_ID_LIST): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x.length === 0 || x.length > 128)) {
    throw badRequest(`${name} must be an array of strings`);
  }
  if (v.length > max)
    throw new HttpError(400, MgCode.ExceedLimit, `${name}: at most ${max} entries`, 'too_many');
  return v as string[];
}

export function filterFromBody(ctx: Ctx): Filter {
  const raw = ctx.req.body.length === 0 ? {} : ctx.body();
  try {
    return parseFilter(raw);
  } catch (err) {
    if (err instanceof FilterError) throw badRequest(err.message);
    throw err;
  }
}

/** Who made the change, as the audit log and the stored items name them. */
export function actor(ctx: Ctx): string {
  const p = ctx.principal;
  return p ? `${p.kind}:${p.id}` : 'anonymous';
}
