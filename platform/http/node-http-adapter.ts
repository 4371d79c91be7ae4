/**
 * Serves a runtime-agnostic Handler over node:http: the fallback engine where no native
 * uWebSockets.js binary loads (http-engine.ts). Same contract as the uWS adapter: bodies over the
 * limit get 413 and the connection is closed (declared or while streaming), a throwing handler a
 * bare 500 through onError, an invalid status a 500, managed framing headers are the server's.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
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
import type { Handler, HttpRequest, HttpResponse } from './types.js';

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is reported as `10.0.0.1`, as uWS does. */
function peerAddress(req: http.IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

function requestOf(req: http.IncomingMessage, body: Buffer): HttpRequest {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return {
    method: (req.method ?? 'GET').toUpperCase(),
    path: q < 0 ? url : url.slice(0, q),
    query: q < 0 ? '' : url.slice(q + 1),
    headers,
    body,
    remoteAddress: peerAddress(req),
  };
}

function writeResponse(res: http.ServerResponse, response: HttpResponse, closeConnection = false): void {
  const valid = Number.isInteger(response.status) && response.status >= 100 && response.status <= 599;
  const out = valid ? response : INTERNAL_ERROR;
  const body = typeof out.body === 'string' ? Buffer.from(out.body) : out.body;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(out.headers ?? {})) {
    if (!MANAGED_HEADERS.has(name.toLowerCase())) headers[name] = value;
  }
  headers['content-length'] = String(body.length);
  if (closeConnection) headers.connection = 'close';
  res.writeHead(out.status, headers);
  res.end(body);
}

/** Answer and close before the body is read (413, 503, a header-decided refusal): the peer must not upload the rest. */
function refuseBody(req: http.IncomingMessage, res: http.ServerResponse, response = BODY_TOO_LARGE): void {
  writeResponse(res, response, true);
  res.once('finish', () => req.socket.destroySoon());
  req.resume();
}

export function serveNodeHttp(handler: Handler, opts: ServeHttpOptions): Promise<ServedHttp> {
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const budget: UnverifiedBudget = { free: opts.maxUnverifiedBytes ?? DEFAULT_MAX_UNVERIFIED_BYTES };

  async function respond(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    request: HttpRequest,
  ): Promise<void> {
    let response: HttpResponse;
    try {
      response = await handler(request);
    } catch (err) {
      opts.onError?.(err);
      response = INTERNAL_ERROR;
    }
    if (res.destroyed || req.socket.destroyed) return;
    try {
      writeResponse(res, response);
    } catch (err) {
      // A header node refuses (a handler bug): nothing was sent, drop the connection.
      opts.onError?.(err);
      res.destroy();
    }
  }

  const server = http.createServer((req, res) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) return refuseBody(req, res);
    const head = requestOf(req, Buffer.alloc(0));
    // What the headers alone decide (a signed route with an unknown key or a stale timestamp).
    const gate = handler.beforeBody?.(head) ?? { unverified: false };
    if ('respond' in gate) return refuseBody(req, res, gate.respond);
    const unverified = gate.unverified ? new UnverifiedBody(budget, declared) : undefined;
    if (unverified && !unverified.admitted) return refuseBody(req, res, UNVERIFIED_BUSY);
    const chunks: Buffer[] = [];
    let received = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      received += chunk.length;
      if (received > maxBodyBytes || (unverified && !unverified.grow(received))) {
        refused = true;
        unverified?.release();
        refuseBody(req, res, received > maxBodyBytes ? BODY_TOO_LARGE : UNVERIFIED_BUSY);
        return;
      }
      chunks.push(chunk);
      unverified?.hash.update(chunk);
    });
    req.on('end', () => {
      if (refused) return;
      const request: HttpRequest = {
        ...head,
        body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received),
      };
      if (unverified) request.bodySha256 = unverified.digest(received);
      void respond(req, res, request).finally(() => unverified?.release());
    });
    req.on('error', () => {
      unverified?.release();
      res.destroy();
    });
    res.on('close', () => unverified?.release());
  });
  server.keepAliveTimeout = 60_000;

  return new Promise((resolve, reject) => {
    server.once('error', (err) =>
      reject(new Error(`node:http could not listen on ${opts.host}:${opts.port}: ${err.message}`)),
    );
    server.listen({ host: opts.host, port: opts.port }, () => {
      let closed = false;
      resolve({
        port: (server.address() as AddressInfo).port,
        engine: 'node',
        close() {
          if (closed) return;
          closed = true;
          server.close();
          server.closeAllConnections();
        },
      });
    });
  });
}
