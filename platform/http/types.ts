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
  /**
   * Hex SHA-256 of `body` ('' when empty), when the adapter hashed it as it streamed in (signed
   * routes); the AK/SK verifier then does not hash the body a second time.
   */
  bodySha256?: string;
}

/** A request without its body: what is known before the body is read. */
export type RequestHead = Omit<HttpRequest, 'body' | 'bodySha256'>;

/**
 * Decides from the head alone: answer now (the body is never read), or read the body, saying
 * whether it is unverified until the handler has checked a signature over it. Adapters bound the
 * bytes of unverified bodies buffered at once.
 */
export type BodyGate = (head: RequestHead) => { respond: HttpResponse } | { unverified: boolean };

export interface HttpResponse {
  status: number;
  headers?: Record<string, string>;
  body: string | Buffer;
}

export type Handler = {
  (req: HttpRequest): Promise<HttpResponse> | HttpResponse;
  /** Optional: consulted before the body is read (routers with signed routes set it). */
  beforeBody?: BodyGate;
};

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
