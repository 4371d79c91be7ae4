/** What both HTTP engines (uws-adapter.ts, node-http-adapter.ts) share: options, result, canned answers. */
import type { HttpResponse } from './types.js';

export interface ServeHttpOptions {
  host: string;
  /** 0 picks a free port; the chosen one is in the result. */
  port: number;
  /** Larger request bodies get 413 and the connection is closed. Defaults to 4 MiB. */
  maxBodyBytes?: number;
  /** Receives what the handler threw (it is answered with a bare 500); a router normally catches first. */
  onError?: (err: unknown) => void;
}

export interface ServedHttp {
  port: number;
  /** Which engine serves (http-engine.ts): `uws` native uWebSockets.js, `node` node:http. */
  engine: 'uws' | 'node';
  close(): void;
}

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

// The servers compute these themselves; a second copy from the handler would corrupt the framing.
export const MANAGED_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection']);

export const INTERNAL_ERROR: HttpResponse = {
  status: 500,
  headers: { 'content-type': 'application/json; charset=utf-8' },
  body: '{"msg":"internal error"}',
};

export const BODY_TOO_LARGE: HttpResponse = {
  status: 413,
  headers: { 'content-type': 'application/json; charset=utf-8' },
  body: '{"msg":"body too large"}',
};
