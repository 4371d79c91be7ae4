/**
 * Serves a runtime-agnostic Handler over uWebSockets.js. The only file that touches uWS types:
 * handlers stay portable to other runtimes (Lambda).
 */

import type { TemplatedApp, HttpResponse as UwsResponse, us_socket } from 'uWebSockets.js';
import uws from 'uWebSockets.js';
import { createHash } from 'node:crypto';
import type { Handler, HttpRequest, HttpResponse } from './types.js';

export interface ServeUwsOptions {
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

export interface UwsServer {
  port: number;
  close(): void;
}

const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
const DEFAULT_MAX_UNVERIFIED_BYTES = 16 * 1024 * 1024;

/**
 * If the native binary does not match the Node ABI, this uWS build silently falls back to a
 * pure-JS server with a fraction of the throughput. That must stop startup, not degrade capacity.
 */
export function assertNativeUws(): void {
  const mod = uws as unknown as Record<string, unknown>;
  const isFallback = 'default' in mod && !('LIBUS_LISTEN_EXCLUSIVE_PORT' in mod);
  const isNative = typeof mod.us_listen_socket_close === 'function' && 'LIBUS_LISTEN_EXCLUSIVE_PORT' in mod;
  if (isFallback || !isNative) {
    throw new Error(
      `uWebSockets.js loaded its slow pure-JS fallback instead of the native binary: no build for ` +
        `${process.platform}-${process.arch} with Node ABI ${process.versions.modules}, or UWS_USE_FALLBACK ` +
        `is set. Use a Node version the installed uWebSockets.js ships a binary for.`,
    );
  }
}

// uWS writes the status line verbatim, so it needs the reason phrase as well as the code.
const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  301: 'Moved Permanently',
  302: 'Found',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Unknown'}`;
}

// uWS computes these itself; a second copy from the handler would corrupt the framing.
const MANAGED_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection']);

const INTERNAL_ERROR: HttpResponse = {
  status: 500,
  headers: { 'content-type': 'application/json; charset=utf-8' },
  body: '{"msg":"internal error"}',
};

const UNVERIFIED_BUSY: HttpResponse = {
  status: 503,
  headers: { 'content-type': 'application/json; charset=utf-8', 'retry-after': '1' },
  body: '{"msg":"too many unverified request bodies in flight; retry"}',
};

const BODY_TOO_LARGE: HttpResponse = {
  status: 413,
  headers: { 'content-type': 'application/json; charset=utf-8' },
  body: '{"msg":"body too large"}',
};

/** Must run corked (or synchronously inside the uWS request callback) and never after an abort. */
function writeResponse(res: UwsResponse, response: HttpResponse, closeConnection = false): void {
  // A status uWS cannot frame (not an integer 100..599) is the handler's bug; answer 500.
  const valid = Number.isInteger(response.status) && response.status >= 100 && response.status <= 599;
  const out = valid ? response : INTERNAL_ERROR;
  res.writeStatus(statusLine(out.status));
  if (out.headers) {
    for (const [name, value] of Object.entries(out.headers)) {
      if (!MANAGED_HEADERS.has(name.toLowerCase())) res.writeHeader(name, value);
    }
  }
  res.end(out.body, closeConnection);
}

/** Not in the typings of every version; where present it also drops keep-alive connections. */
function closeApp(app: TemplatedApp): void {
  const closable = app as unknown as { close?: () => void };
  if (typeof closable.close === 'function') closable.close();
}

/**
 * One unverified body's share of the server's budget: its declared length up front (refused at
 * once when that does not fit), or what has arrived so far for a body of unknown length.
 */
class UnverifiedBody {
  readonly hash = createHash('sha256');
  readonly admitted: boolean;
  #held = 0;
  #released = false;

  constructor(
    readonly budget: { free: number },
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

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.budget.free += this.#held;
  }
}

export function serveUws(handler: Handler, opts: ServeUwsOptions): Promise<UwsServer> {
  assertNativeUws();
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const budget = { free: opts.maxUnverifiedBytes ?? DEFAULT_MAX_UNVERIFIED_BYTES };
  const app = uws.App();

  app.any('/*', (res, req) => {
    // uWS's request object is only valid until this callback returns: read everything now.
    const method = req.getMethod().toUpperCase();
    const path = req.getUrl();
    const query = req.getQuery() ?? '';
    const headers: Record<string, string> = {};
    req.forEach((name, value) => {
      // Repeated headers are joined as Node's http module joins them.
      const previous = headers[name];
      headers[name] = previous === undefined ? value : `${previous}, ${value}`;
    });
    const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();

    // Refused before a byte is buffered; closing stops the peer from uploading the rest.
    const declared = Number(headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      writeResponse(res, BODY_TOO_LARGE, true);
      return;
    }
    const head = { method, path, query, headers, remoteAddress };
    // What the headers alone decide (a signed route with an unknown key or a stale timestamp).
    const gate = handler.beforeBody?.(head) ?? { unverified: false };
    if ('respond' in gate) {
      writeResponse(res, gate.respond, true);
      return;
    }
    const unverified = gate.unverified ? new UnverifiedBody(budget, declared) : undefined;
    if (unverified && !unverified.admitted) {
      writeResponse(res, UNVERIFIED_BUSY, true);
      return;
    }

    let aborted = false;
    let done = false; // the body is complete or refused; uWS may still deliver chunks
    res.onAborted(() => {
      aborted = true;
      unverified?.release();
    });

    const chunks: Buffer[] = [];
    let received = 0;
    res.onData((chunk, isLast) => {
      if (done || aborted) return;
      received += chunk.byteLength;
      if (received > maxBodyBytes || (unverified && !unverified.grow(received))) {
        done = true;
        unverified?.release();
        res.cork(() => writeResponse(res, received > maxBodyBytes ? BODY_TOO_LARGE : UNVERIFIED_BUSY, true));
        return;
      }
      // uWS reuses (neuters) the ArrayBuffer once this callback returns, so copy it.
      const copy = Buffer.from(new Uint8Array(chunk));
      chunks.push(copy);
      unverified?.hash.update(copy);
      if (!isLast) return;
      done = true;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received);
      const req: HttpRequest = { ...head, body };
      if (unverified) req.bodySha256 = received === 0 ? '' : unverified.hash.digest('hex');
      void respond(res, req, () => aborted).finally(() => unverified?.release());
    });
  });

  async function respond(res: UwsResponse, req: HttpRequest, isAborted: () => boolean): Promise<void> {
    let response: HttpResponse;
    try {
      response = await handler(req);
    } catch (err) {
      opts.onError?.(err);
      response = INTERNAL_ERROR;
    }
    if (isAborted()) return;
    try {
      res.cork(() => writeResponse(res, response));
    } catch (err) {
      // A header uWS refuses (a handler bug) leaves a half-written response: drop the connection.
      opts.onError?.(err);
      try {
        res.close();
      } catch {
        // The response was already complete; uWS refuses any further access.
      }
    }
  }

  return new Promise((resolve, reject) => {
    app.listen(opts.host, opts.port, (listenSocket) => {
      if (!listenSocket) {
        closeApp(app);
        reject(new Error(`uWebSockets.js could not listen on ${opts.host}:${opts.port}`));
        return;
      }
      let closed = false;
      resolve({
        port: uws.us_socket_local_port(listenSocket as us_socket),
        close() {
          if (closed) return;
          closed = true;
          uws.us_listen_socket_close(listenSocket);
          closeApp(app);
        },
      });
    });
  });
}
