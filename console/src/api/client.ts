/**
 * The console's only way to the manager: typed by the generated OpenAPI paths
 * (openapi.gen.ts), so a call to a path or method docs/openapi.yaml does not declare does not
 * compile. Session token in the `Authorization` header only (never in a URL); a 401 ends the
 * session. Errors come back in plain words from both envelopes (Elkeid's `{code,msg}` and
 * fleetgate's `{error,message}`).
 */
import type { paths } from './openapi.gen';

export type Method = 'get' | 'put' | 'post' | 'delete';
/** Paths that declare `method`. */
export type PathFor<M extends Method> = {
  [P in keyof paths]: NonNullable<paths[P][M]> extends never ? never : P;
}[keyof paths];

type Op<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
type JsonOf<R> = R extends { content: { 'application/json': infer J } } ? J : unknown;
/** The JSON of the first 2xx response the document gives the operation. */
export type ResponseOf<P extends keyof paths, M extends Method> =
  Op<P, M> extends { responses: infer R }
    ? R extends { 200: infer A }
      ? JsonOf<A>
      : R extends { 201: infer B }
        ? JsonOf<B>
        : unknown
    : unknown;
/** Elkeid's v1 routes document `data` loosely: their callers name the type they read. */
export type Result<P extends keyof paths, M extends Method> = P extends `/api/v1/${string}`
  ? unknown
  : ResponseOf<P, M>;
export type BodyOf<P extends keyof paths, M extends Method> =
  Op<P, M> extends {
    requestBody?: { content: { 'application/json': infer B } };
  }
    ? B
    : never;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly error?: string,
  ) {
    super(message);
  }
}

let token: string | undefined = sessionStorage.getItem('fleetgate.token') ?? undefined;
let onUnauthorized: () => void = () => undefined;

export function setToken(t: string | undefined): void {
  token = t;
  if (t) sessionStorage.setItem('fleetgate.token', t);
  else sessionStorage.removeItem('fleetgate.token');
}
export const currentToken = () => token;
export function whenUnauthorized(fn: () => void): void {
  onUnauthorized = fn;
}

export interface CallOptions<P extends keyof paths, M extends Method> {
  /** Values for `{name}` segments. */
  params?: Record<string, string>;
  query?: Record<string, string | number | undefined>;
  body?: BodyOf<P, M>;
}

function urlOf(path: string, o: { params?: Record<string, string>; query?: Record<string, unknown> }) {
  const filled = path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(o.params?.[name] ?? ''));
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined && v !== '') q.set(k, String(v));
  const qs = q.toString();
  return qs ? `${filled}?${qs}` : filled;
}

async function errorOf(res: Response): Promise<ApiError> {
  let body: { message?: string; msg?: string; error?: string } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // not JSON
  }
  const text = body.message ?? body.msg ?? `the manager answered HTTP ${res.status}`;
  return new ApiError(res.status, text, body.error);
}

export async function call<M extends Method, P extends PathFor<M>>(
  method: M,
  path: P,
  o: CallOptions<P, M> = {},
): Promise<Result<P, M>> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(urlOf(path, o), {
      method: method.toUpperCase(),
      headers,
      ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'the manager cannot be reached; check the network and that it runs');
  }
  if (res.status === 401 && path !== '/api/v1/user/login') {
    onUnauthorized();
    throw new ApiError(401, 'your session has ended; sign in again');
  }
  if (!res.ok) throw await errorOf(res);
  const json = (await res.json()) as unknown;
  // Elkeid's v1 envelope: HTTP 200 with the outcome in `code`.
  if (path.startsWith('/api/v1/')) {
    const env = json as { code?: number; msg?: string; data?: unknown };
    if (env.code !== 0) throw new ApiError(res.status, env.msg ?? 'the request failed', String(env.code));
    return env.data as Result<P, M>;
  }
  return json as Result<P, M>;
}

export const get = <P extends PathFor<'get'>>(path: P, o?: CallOptions<P, 'get'>) => call('get', path, o);
export const post = <P extends PathFor<'post'>>(path: P, o?: CallOptions<P, 'post'>) => call('post', path, o);
export const put = <P extends PathFor<'put'>>(path: P, o?: CallOptions<P, 'put'>) => call('put', path, o);
export const del = <P extends PathFor<'delete'>>(path: P, o?: CallOptions<P, 'delete'>) =>
  call('delete', path, o);

export type Schemas = import('./openapi.gen').components['schemas'];
