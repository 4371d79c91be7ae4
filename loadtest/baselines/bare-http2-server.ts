/**
 * Node's own floor for a new agent session, for bench:gateway's handshakes test: a bare
 * node:http2 server with the gateway's TLS settings (client certificate required and verified,
 * the PKI's CRL, ALPN h2 only, TLS ≥ 1.2 with AEAD suites) that answers each call with an OK
 * status once the client half-closes, and does nothing else: no gRPC parsing, no agent, no
 * admission or certificate gate, no metrics. What a session costs here is what Node's TLS and
 * HTTP/2 stack costs; what fleetgate costs above it is its own work.
 *
 *   node --import tsx loadtest/baselines/bare-http2-server.ts --pki DIR [--port 0] [--host 127.0.0.1]
 *       [--no-crl] [--ecdh-curve LIST]
 *
 * `--no-crl` leaves the PKI's CRL out (what checking it costs a handshake); `--ecdh-curve` sets
 * tls ecdhCurve (OpenSSL's group list) instead of Node's default: the cost of each key exchange.
 *
 * Same child protocol as loadtest/bench/gateway-server.ts (`{"port":N,...}` first, then `stats`
 * on stdin; closing stdin exits).
 */
import { existsSync, readFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AEAD_CIPHERS } from '../../gateway/grpc/http2-server.js';
import {
  openFileLimit,
  processStats,
  reply,
  requiredPkiDir,
  SERVER_CHILD_OPTIONS,
  serveServerCommands,
} from '../bench/child-protocol.js';

const { values } = parseArgs({
  options: {
    ...SERVER_CHILD_OPTIONS,
    'no-crl': { type: 'boolean', default: false },
    'ecdh-curve': { type: 'string' },
  },
});
const pkiDir = requiredPkiDir(values.pki);
const read = (f: string) => readFileSync(path.join(pkiDir, f));

const server = http2.createSecureServer({
  key: read('server.key'),
  cert: read('server.crt'),
  ca: read('ca.crt'),
  ...(!values['no-crl'] && existsSync(path.join(pkiDir, 'crl.pem')) ? { crl: read('crl.pem') } : {}),
  ...(values['ecdh-curve'] ? { ecdhCurve: values['ecdh-curve'] } : {}),
  requestCert: true,
  rejectUnauthorized: true,
  minVersion: 'TLSv1.2',
  ciphers: AEAD_CIPHERS,
  allowHTTP1: false,
  ALPNProtocols: ['h2'],
  settings: { maxConcurrentStreams: 16, enablePush: false },
});
let calls = 0;
server.on('sessionError', () => {});
server.on('session', (session) => session.on('error', () => {}));
server.on('stream', (stream) => {
  calls++;
  stream.on('error', () => {});
  stream.resume();
  stream.on('end', () => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end();
  });
});
await new Promise<void>((resolve) => server.listen(Number(values.port), values.host, resolve));

serveServerCommands(
  () => ({ records: 0, calls, openCalls: 0, agents: 0, ...processStats() }),
  () => new Promise<void>((resolve) => server.close(() => resolve())),
);
reply({
  port: (server.address() as AddressInfo).port,
  pid: process.pid,
  nofile: openFileLimit() ?? null,
  impl: 'bare node:http2',
});
