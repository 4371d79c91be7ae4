/** What the `/api/fleet` route modules share: their errors, body and parameter checks. */
import { type Ctx, HttpError, type ManagerRoute } from '../router.js';

export const GATEWAY_ID = /^[\x21-\x7e]{1,128}$/;
export const AGENT_ID = /^[\x21-\x7e]{1,128}$/;

export const invalid = (message: string) => new HttpError(400, 5, message, 'invalid_parameter');
export const notFound = (message: string) => new HttpError(404, 6, message, 'not_found');
export const forbidden = (message: string) => new HttpError(403, 1, message, 'forbidden');
export const conflict = (message: string) => new HttpError(409, 2, message, 'conflict');

/** A route of our own API (plain JSON and HTTP statuses). */
export const fleetRoute = (route: Omit<ManagerRoute, 'api'>): ManagerRoute => ({ ...route, api: 'fleet' });

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function objectBody(ctx: Ctx): Record<string, unknown> {
  const b = ctx.body();
  if (!isObject(b)) throw invalid('the body must be a JSON object');
  return b;
}

/** The path parameter `name`, refused with 400 when it does not match `pattern`. */
export function param(ctx: Ctx, name: string, pattern: RegExp, what: string): string {
  const v = ctx.params[name] ?? '';
  if (!pattern.test(v)) throw invalid(`${what} is not valid`);
  return v;
}
