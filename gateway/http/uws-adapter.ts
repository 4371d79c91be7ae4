/**
 * Serves a runtime-agnostic Handler over uWebSockets.js. The only file that touches uWS types:
 * handlers stay portable to other runtimes (Lambda).
 */
import type { TemplatedApp, HttpResponse as UwsResponse, us_socket } from 'uWebSockets.js';
import uws from 'uWebSockets.js';
import type { Handler, HttpRequest, HttpResponse } from './types.js';

export interface ServeUwsOptions {
  host: string;
  /** 0 picks a free port; the chosen one is in the result. */
  port: number;
  /** Larger request bodies get 413 and the connection is closed. Defaults to 4 MiB. */
  maxBodyBytes?: number;
  /** Receives what the handler threw (it is answered with a bare 500); a router normally catches first. */
  onError?: (err: unknown) => void;
  /**
   * Called with the uWS app before the catch-all HTTP route is added and before listening:
   * where a role attaches more uWS routes (the manager's console WebSocket, live-socket.ts).
   */
  attach?: (app: TemplatedApp) => void;
}

export interface UwsServer {
  port: number;
  close(): void;
}

const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

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

export function serveUws(handler: Handler, opts: ServeUwsOptions): Promise<UwsServer> {
  assertNativeUws();
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
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

    let aborted = false;
    let done = false; // the body is complete or refused; uWS may still deliver chunks
    res.onAborted(() => {
      aborted = true;
    });

    const chunks: Buffer[] = [];
    let received = 0;
    res.onData((chunk, isLast) => {
      if (done || aborted) return;
      received += chunk.byteLength;
      if (received > maxBodyBytes) {
        done = true;
        res.cork(() => writeResponse(res, BODY_TOO_LARGE, true));
        return;
      }
      // uWS reuses (neuters) the ArrayBuffer once this callback returns, so copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk)));
      if (!isLast) return;
      done = true;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received);
      void respond(res, { method, path, query, headers, body, remoteAddress }, () => aborted);
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
