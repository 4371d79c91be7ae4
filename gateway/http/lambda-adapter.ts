/**
 * Serves a runtime-agnostic Handler as an AWS Lambda function behind an API Gateway HTTP API
 * (payload format 2.0) or a Lambda Function URL (the same event and result shapes). The only
 * file that knows Lambda's shapes; handlers stay the ones uWS serves.
 *
 * Translation:
 *   rawPath → path; rawQueryString → query (exactly as sent: AK/SK signatures cover it);
 *   headers (API Gateway already lower-cases names and joins repeated ones with commas) plus
 *   `cookies` (sent separately in 2.0) rejoined into `cookie`; body decoded from base64 when
 *   `isBase64Encoded`; requestContext.http.method / sourceIp → method / remoteAddress.
 *   The result: `{ statusCode, headers, body, isBase64Encoded }`, text bodies as UTF-8 strings,
 *   binary ones base64-encoded.
 *
 * Deploy on the `$default` stage (or a Function URL): on a named stage API Gateway puts the stage
 * in rawPath (`/prod/registry/detail`), which is also the path the client signed, so it cannot be
 * stripped without breaking AK/SK verification.
 */
import type { Handler, HttpRequest, HttpResponse } from './types.js';

/** The fields of an API Gateway HTTP API 2.0 / Function URL event that the adapter reads. */
export interface LambdaHttpEvent {
  version?: string;
  rawPath?: string;
  rawQueryString?: string;
  cookies?: string[];
  headers?: Record<string, string | undefined>;
  body?: string | null;
  isBase64Encoded?: boolean;
  requestContext?: {
    http?: { method?: string; path?: string; sourceIp?: string };
  };
}

export interface LambdaHttpResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  isBase64Encoded: boolean;
}

export type LambdaHandler = (event: LambdaHttpEvent, context?: unknown) => Promise<LambdaHttpResult>;

export interface LambdaAdapterOptions {
  /** Receives what the handler threw (answered with a bare 500). */
  onError?: (err: unknown) => void;
  /** Largest decoded body; larger ones get 413. Default 4 MiB (API Gateway's own limit is 10 MB). */
  maxBodyBytes?: number;
}

const TEXT_TYPE = /^(text\/|application\/(json|[\w.+-]*\+json|xml|x-www-form-urlencoded|javascript))/i;

function errorResult(statusCode: number, msg: string): LambdaHttpResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify({ msg }),
    isBase64Encoded: false,
  };
}

/** The HttpRequest of an event; throws on an event that is not an HTTP API 2.0 / Function URL one. */
export function toHttpRequest(event: LambdaHttpEvent): HttpRequest {
  const http = event.requestContext?.http;
  if (event.version !== '2.0' || !http?.method) {
    throw new Error(
      'unsupported Lambda event: want an API Gateway HTTP API payload 2.0 or a Function URL event',
    );
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (value !== undefined) headers[name.toLowerCase()] = value;
  }
  if (event.cookies && event.cookies.length > 0) {
    const joined = event.cookies.join('; ');
    headers.cookie = headers.cookie ? `${headers.cookie}; ${joined}` : joined;
  }
  const raw = event.body ?? '';
  const body = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  return {
    method: http.method.toUpperCase(),
    path: event.rawPath ?? http.path ?? '/',
    query: event.rawQueryString ?? '',
    headers,
    body,
    remoteAddress: http.sourceIp ?? '',
  };
}

export function toLambdaResult(response: HttpResponse): LambdaHttpResult {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(response.headers ?? {})) headers[k.toLowerCase()] = v;
  if (typeof response.body === 'string') {
    return { statusCode: response.status, headers, body: response.body, isBase64Encoded: false };
  }
  const type = headers['content-type'] ?? '';
  if (TEXT_TYPE.test(type)) {
    return {
      statusCode: response.status,
      headers,
      body: response.body.toString('utf8'),
      isBase64Encoded: false,
    };
  }
  return {
    statusCode: response.status,
    headers,
    body: response.body.toString('base64'),
    isBase64Encoded: true,
  };
}

export function toLambdaHandler(handler: Handler, opts: LambdaAdapterOptions = {}): LambdaHandler {
  const maxBodyBytes = opts.maxBodyBytes ?? 4 * 1024 * 1024;
  return async (event) => {
    let req: HttpRequest;
    try {
      req = toHttpRequest(event);
    } catch (err) {
      opts.onError?.(err);
      return errorResult(400, 'unsupported event');
    }
    if (req.body.length > maxBodyBytes) return errorResult(413, 'body too large');
    try {
      return toLambdaResult(await handler(req));
    } catch (err) {
      opts.onError?.(err);
      return errorResult(500, 'internal error');
    }
  };
}
