/**
 * The runtime-agnostic HTTP shape every API of the project is written against: a request in,
 * a response out. Adapters (uWS today, Lambda later) translate to and from these, so handlers
 * never see a server library's types.
 */

export interface HttpRequest {
  /** Upper-case, e.g. `GET`. */
  method: string;
  /** Without the query string. */
  path: string;
  /** Raw, without the leading '?': AK/SK signatures cover the query exactly as sent. */
  query: string;
  /** Lower-case names. */
  headers: Readonly<Record<string, string>>;
  body: Buffer;
  remoteAddress: string;
}

export interface HttpResponse {
  status: number;
  headers?: Record<string, string>;
  body: string | Buffer;
}

export type Handler = (req: HttpRequest) => Promise<HttpResponse> | HttpResponse;

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  handler: Handler;
  /** Defaults to 'none'. */
  auth?: 'none' | 'aksk';
}

/** Same content type gin's `c.JSON` sends, so Elkeid clients see no difference. */
const JSON_TYPE = 'application/json; charset=utf-8';

export function json(status: number, value: unknown, headers?: Record<string, string>): HttpResponse {
  // JSON.stringify(undefined) is undefined, which is not a body.
  const body = JSON.stringify(value) ?? 'null';
  return { status, headers: { 'content-type': JSON_TYPE, ...headers }, body };
}

export function text(status: number, body: string, contentType = 'text/plain; charset=utf-8'): HttpResponse {
  return { status, headers: { 'content-type': contentType }, body };
}

export function parseQuery(query: string): URLSearchParams {
  return new URLSearchParams(query);
}
