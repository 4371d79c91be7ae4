/**
 * Serves a runtime-agnostic Handler as an AWS Lambda function behind an API Gateway HTTP API
 * (payload format 2.0), a Lambda Function URL (the same event and result shapes), or an
 * Application Load Balancer (a Lambda target group). The only file that knows Lambda's shapes;
 * handlers stay the ones uWS serves.
 *
 * HTTP API 2.0 / Function URL:
 *   rawPath → path; rawQueryString → query (exactly as sent: AK/SK signatures cover it);
 *   headers (API Gateway already lower-cases names and joins repeated ones with commas) plus
 *   `cookies` (sent separately in 2.0) rejoined into `cookie`; body decoded from base64 when
 *   `isBase64Encoded`; requestContext.http.method / sourceIp → method / remoteAddress.
 *   The result: `{ statusCode, headers, body, isBase64Encoded }`, text bodies as UTF-8 strings,
 *   binary ones base64-encoded.
 *
 * Application Load Balancer (`requestContext.elb`; what serves stock Elkeid agents' plain-HTTP
 * `GET /registry/detail` on :8088, since API Gateway answers HTTPS only):
 *   httpMethod / path → method / path; the query is rebuilt from `queryStringParameters` (or
 *   `multiValueQueryStringParameters` when the target group has `lambda.multi_value_headers.enabled`)
 *   in the order received, without decoding (the balancer passes the values as the client sent
 *   them, still percent-encoded, so the rebuilt string is the one a client signed);
 *   `headers` (lower-case) or `multiValueHeaders` (repeated values joined with commas, as API
 *   Gateway does); remoteAddress is the last `x-forwarded-for` entry (the one the balancer
 *   appends). The result carries `statusDescription` ("200 OK"), and `multiValueHeaders` instead
 *   of `headers` when the event came with multi-value headers (the balancer reads the field of
 *   its mode). The balancer limits request and response bodies to 1 MB.
 *
 * Deploy on the `$default` stage (or a Function URL): on a named stage API Gateway puts the stage
 * in rawPath (`/prod/registry/detail`), which is also the path the client signed, so it cannot be
 * stripped without breaking AK/SK verification.
 */
import { STATUS_CODES } from 'node:http';
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

/** The fields of an Application Load Balancer event (Lambda target group) that the adapter reads. */
export interface AlbEvent {
  requestContext: { elb: { targetGroupArn?: string } };
  httpMethod: string;
  path?: string;
  queryStringParameters?: Record<string, string | undefined> | null;
  multiValueQueryStringParameters?: Record<string, string[] | undefined> | null;
  headers?: Record<string, string | undefined> | null;
  multiValueHeaders?: Record<string, string[] | undefined> | null;
  body?: string | null;
  isBase64Encoded?: boolean;
}

/** What a Lambda target answers an Application Load Balancer. */
export interface AlbResult {
  statusCode: number;
  statusDescription: string;
  /** Single-value mode (the target group's default). */
  headers?: Record<string, string>;
  /** Multi-value mode (`lambda.multi_value_headers.enabled`). */
  multiValueHeaders?: Record<string, string[]>;
  body: string;
  isBase64Encoded: boolean;
}

export type LambdaEvent = LambdaHttpEvent | AlbEvent;
/** The result shape that answers an event of type E. */
export type LambdaResultFor<E> = E extends AlbEvent ? AlbResult : LambdaHttpResult;

/** One handler for every event source: the result has the shape of the event's source. */
export type LambdaHandler = <E extends LambdaEvent>(
  event: E,
  context?: unknown,
) => Promise<LambdaResultFor<E>>;

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

/** Whether the event comes from an Application Load Balancer. */
export function isAlbEvent(event: unknown): event is AlbEvent {
  const ctx = (event as { requestContext?: { elb?: unknown } } | null)?.requestContext;
  return typeof ctx?.elb === 'object' && ctx.elb !== null;
}

/** The raw query string of an ALB event: its parameters in the order received, not decoded. */
export function albQueryString(event: AlbEvent): string {
  const parts: string[] = [];
  const pair = (k: string, v: string) => parts.push(v === '' ? `${k}=` : `${k}=${v}`);
  if (event.multiValueQueryStringParameters) {
    for (const [k, values] of Object.entries(event.multiValueQueryStringParameters)) {
      for (const v of values ?? []) pair(k, v);
    }
  } else {
    for (const [k, v] of Object.entries(event.queryStringParameters ?? {})) {
      if (v !== undefined) pair(k, v);
    }
  }
  return parts.join('&');
}

function albToHttpRequest(event: AlbEvent): HttpRequest {
  if (typeof event.httpMethod !== 'string' || event.httpMethod === '') {
    throw new Error('unsupported Lambda event: an ALB event without httpMethod');
  }
  const headers: Record<string, string> = {};
  if (event.multiValueHeaders) {
    for (const [name, values] of Object.entries(event.multiValueHeaders)) {
      if (values && values.length > 0) headers[name.toLowerCase()] = values.join(',');
    }
  } else {
    for (const [name, value] of Object.entries(event.headers ?? {})) {
      if (value !== undefined) headers[name.toLowerCase()] = value;
    }
  }
  const raw = event.body ?? '';
  const forwarded = (headers['x-forwarded-for'] ?? '').split(',');
  return {
    method: event.httpMethod.toUpperCase(),
    path: event.path || '/',
    query: albQueryString(event),
    headers,
    body: event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8'),
    remoteAddress: forwarded[forwarded.length - 1]?.trim() ?? '',
  };
}

/**
 * The HttpRequest of an event (HTTP API 2.0, Function URL or ALB); throws on any other
 * (API Gateway REST API payload 1.0 among them).
 */
export function toHttpRequest(event: LambdaEvent): HttpRequest {
  if (isAlbEvent(event)) return albToHttpRequest(event);
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
  // A compressed body (the console's gzip assets) is bytes whatever its type says.
  const encoded = (headers['content-encoding'] ?? 'identity') !== 'identity';
  if (TEXT_TYPE.test(type) && !encoded) {
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

/** The HTTP API result as an ALB answer, in the event's header mode. */
export function toAlbResult(result: LambdaHttpResult, multiValue: boolean): AlbResult {
  const { headers, ...rest } = result;
  const statusDescription = `${result.statusCode} ${STATUS_CODES[result.statusCode] ?? 'Unknown'}`;
  if (!multiValue) return { ...rest, statusDescription, headers };
  const multiValueHeaders = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]));
  return { ...rest, statusDescription, multiValueHeaders };
}

export function toLambdaHandler(handler: Handler, opts: LambdaAdapterOptions = {}): LambdaHandler {
  const maxBodyBytes = opts.maxBodyBytes ?? 4 * 1024 * 1024;
  const serve = async (event: LambdaEvent): Promise<LambdaHttpResult> => {
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
  return (async (event: LambdaEvent) => {
    const result = await serve(event);
    return isAlbEvent(event) ? toAlbResult(result, event.multiValueHeaders != null) : result;
  }) as LambdaHandler;
}
