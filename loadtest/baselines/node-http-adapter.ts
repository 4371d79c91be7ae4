/**
 * The baseline of `bench:discovery`: the same runtime-agnostic Handler served by node:http
 * instead of uWebSockets.js, so the benchmark isolates what the uWS adapter is worth.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Handler, HttpRequest } from '../../gateway/http/types.js';

export interface NodeHttpServer {
  port: number;
  close(): Promise<void>;
}

export async function serveNodeHttp(
  handler: Handler,
  opts: { host: string; port: number },
): Promise<NodeHttpServer> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      }
      const request: HttpRequest = {
        method: (req.method ?? 'GET').toUpperCase(),
        path: q < 0 ? url : url.slice(0, q),
        query: q < 0 ? '' : url.slice(q + 1),
        headers,
        body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks),
        remoteAddress: req.socket.remoteAddress ?? '',
      };
      Promise.resolve()
        .then(() => handler(request))
        .then(
          (response) => {
            const body = typeof response.body === 'string' ? Buffer.from(response.body) : response.body;
            res.writeHead(response.status, { ...response.headers, 'content-length': String(body.length) });
            res.end(body);
          },
          () => {
            res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
            res.end('{"msg":"internal error"}');
          },
        );
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(opts.port, opts.host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
