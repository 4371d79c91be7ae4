/** What both HTTP engines (uws-adapter.ts, node-http-adapter.ts) share: options, result, canned answers. */
import { createHash } from 'node:crypto';
import type { HttpResponse } from './types.js';

export interface ServeHttpOptions {
  host: string;
  /** 0 picks a free port; the chosen one is in the result. */
  port: number;
  /** Larger request bodies get 413 and the connection is closed. Defaults to 4 MiB. */
  maxBodyBytes?: number;
  /**
   * Bytes of unverified request bodies (signed routes, before the signature is checked) buffered
   * at once across all connections; a request that would pass it gets 503 and the connection is
   * closed. Defaults to 16 MiB: unsigned uploads cannot grow the process by more.
   */
  maxUnverifiedBytes?: number;
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
export const DEFAULT_MAX_UNVERIFIED_BYTES = 16 * 1024 * 1024;

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

export const UNVERIFIED_BUSY: HttpResponse = {
  status: 503,
  headers: { 'content-type': 'application/json; charset=utf-8', 'retry-after': '1' },
  body: '{"msg":"too many unverified request bodies in flight; retry"}',
};

/** The bytes of unverified bodies a server may hold at once (ServeHttpOptions.maxUnverifiedBytes). */
export interface UnverifiedBudget {
  free: number;
}

/**
 * One unverified body's share of the server's budget: its declared length up front (refused at
 * once when that does not fit), or what has arrived so far for a body of unknown length. The body
 * is hashed as it streams in, so the AK/SK check does not hash it again.
 */
export class UnverifiedBody {
  readonly hash = createHash('sha256');
  readonly admitted: boolean;
  #held = 0;
  #released = false;

  constructor(
    readonly budget: UnverifiedBudget,
    declared: number,
  ) {
    const upfront = Number.isFinite(declared) ? declared : 0;
    this.admitted = upfront <= budget.free;
    if (this.admitted) this.#take(upfront);
  }

  #take(n: number): void {
    this.budget.free -= n;
    this.#held += n;
  }

  /** Accounts for `received` bytes in all; false when they do not fit. */
  grow(received: number): boolean {
    if (received <= this.#held) return true;
    if (received - this.#held > this.budget.free) return false;
    this.#take(received - this.#held);
    return true;
  }

  /** Hex SHA-256 of what was streamed ('' for an empty body, as HttpRequest.bodySha256 says). */
  digest(received: number): string {
    return received === 0 ? '' : this.hash.digest('hex');
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.budget.free += this.#held;
  }
}
