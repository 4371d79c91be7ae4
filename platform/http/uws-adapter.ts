/**
 * Serves a runtime-agnostic Handler over uWebSockets.js, or over node:http where no native uWS
 * binary loads for this Node (http-engine.ts chooses; FLEETGATE_HTTP_ENGINE). The only file that
 * touches uWS types: handlers stay portable to other runtimes (Lambda, node:http).
 *
 * A feature only uWS has (e.g. WebSockets on the same app) must check `httpEngine().name ===
 * 'uws'` (or the `engine` of the result) first and say clearly when it is not available.
 */

import type { TemplatedApp, HttpResponse as UwsResponse, us_socket } from 'uWebSockets.js';
import type { Registry } from 'prom-client';
import type { Logger } from '../obs/logger.js';
import {
  BODY_TOO_LARGE,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_UNVERIFIED_BYTES,
  INTERNAL_ERROR,
  MANAGED_HEADERS,
  type ServedHttp,
  type ServeHttpOptions,
  UNVERIFIED_BUSY,
  UnverifiedBody,
  type UnverifiedBudget,
} from './adapter-common.js';
import {
  chooseHttpEngine,
  type HttpEngine,
  type HttpEngineName,
  httpEngine,
  recordHttpEngine,
} from './http-engine.js';
import { serveNodeHttp } from './node-http-adapter.js';
import type { Handler, HttpRequest, HttpResponse } from './types.js';
import { loadNativeUws, type NativeUws } from './uws-native.js';

export interface ServeUwsOptions extends ServeHttpOptions {
  /** Overrides the process's engine (FLEETGATE_HTTP_ENGINE) for this server: tests, benchmarks. */
  engine?: HttpEngineName;
  /** Gets `fleetgate_http_engine` (the engine in use). */
  registry?: Registry;
  /** Warned when uWS was wanted but node:http serves. */
  logger?: Pick<Logger, 'warn'>;
  /**
   * Called with the uWS app before the catch-all HTTP route is added and before listening:
   * where a role attaches more uWS routes (the manager's console WebSocket, live-socket.ts).
   * Never called on the node:http engine (the console then polls).
   */
  attach?: (app: TemplatedApp) => void;
}

export type UwsServer = ServedHttp;

/**
 * Throws unless a native uWS binary loads for this Node ABI and glibc (uws-native.ts), naming
 * what each package refused; never lets uWS's own slow pure-JS fallback through.
 */
export function assertNativeUws(): void {
  chooseHttpEngine('uws', loadNativeUws);
}

function engineFor(opts: ServeUwsOptions): HttpEngine {
  if (opts.engine === 'node') return { name: 'node', detail: 'node:http (asked for)' };
  if (opts.engine === 'uws') return chooseHttpEngine('uws', loadNativeUws);
  return httpEngine();
}

export async function serveUws(handler: Handler, opts: ServeUwsOptions): Promise<UwsServer> {
  const engine = engineFor(opts);
  if (opts.registry) recordHttpEngine(opts.registry, engine.name);
  if (engine.name === 'node') {
    if (engine.warning) opts.logger?.warn({ engine: 'node' }, engine.warning);
    return serveNodeHttp(handler, opts);
  }
  return serveNative(engine.uws, handler, opts);
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

function serveNative(uws: NativeUws, handler: Handler, opts: ServeUwsOptions): Promise<ServedHttp> {
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const budget: UnverifiedBudget = { free: opts.maxUnverifiedBytes ?? DEFAULT_MAX_UNVERIFIED_BYTES };
  const app = uws.App();
  opts.attach?.(app);

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
      if (unverified) req.bodySha256 = unverified.digest(received);
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
        engine: 'uws',
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
