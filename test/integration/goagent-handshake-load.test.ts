/**
 * `goagent handshake-load` (loadtest/goagent/load_handshake.go), the reconnect storm of
 * bench:gateway: grpc-go sessions back to back against the real gateway, each a new mTLS dial,
 * the Transfer stream, one RawData and the server's status. What it reports must be what the
 * gateway saw, and a refused certificate must count as failures, never as sessions. Its key
 * exchange offer (`-curves`) is the stock agent's unless told otherwise.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { goHandshakeLoad } from '../../loadtest/bench/go-handshake-load.js';
import { createCa, createClientCert } from '../../platform/pki/certs.js';
import { startTestGateway, tempDir } from '../helpers/gateway.js';
import { startGoAgent } from '../helpers/goagent.js';
import { metricValue } from '../helpers/metrics.js';

function clientPki(dir: string, ca: string, cert: string, key: string): string {
  writeFileSync(path.join(dir, 'ca.crt'), ca);
  writeFileSync(path.join(dir, 'client.crt'), cert);
  writeFileSync(path.join(dir, 'client.key'), key, { mode: 0o600 });
  return dir;
}

const load = { concurrency: 2, warmupS: 0.2, durationS: 1.5, localAddresses: [] as string[] };

test('handshake-load: every session it counts is a Transfer call the gateway answered with OK', async (t) => {
  const g = await startTestGateway(t);
  let timeouts = 0;
  g.gateway.grpc.server.on('stream', (_stream, headers) => {
    if (headers['grpc-timeout'] !== undefined) timeouts++;
  });
  const r = await goHandshakeLoad({
    ...load,
    target: g.address,
    pkiDir: clientPki(tempDir(t), g.tls.ca, g.tls.cert, g.tls.key),
    serverPids: [process.pid],
    encoding: 'snappy',
  });
  t.diagnostic(JSON.stringify(r));
  assert.ok(r.completed > 0, 'sessions completed in the window');
  assert.equal(r.failed, 0, JSON.stringify(r.errors));
  assert.ok(r.serverCpuS > 0, 'the server CPU read from /proc');
  const ok = await metricValue(g.gateway.metrics.registry, 'fleetgate_grpc_calls_total', {
    method: '/grpc.Transfer/Transfer',
    code: '0',
  });
  // Warm-up and the sessions cut at the end are not in the window; the gateway saw them all.
  assert.ok(ok >= r.completed, `gateway OK calls ${ok} < client's ${r.completed}`);
  // Each session was its own agent: a new AgentID per session, a batch (the heartbeat) each.
  assert.ok(g.sink.batches.length >= r.completed);
  // As the stock agent's Transfer: no deadline on the call, so no grpc-timeout for the server to arm.
  assert.equal(timeouts, 0, 'calls with grpc-timeout');
});

test('handshake-load: sessions refused in the TLS handshake are failures, none completes', async (t) => {
  const g = await startTestGateway(t);
  const foreign = await createClientCert(await createCa({ commonName: 'another CA' }), { identity: 'fleet' });
  const r = await goHandshakeLoad({
    ...load,
    target: g.address,
    pkiDir: clientPki(tempDir(t), g.tls.ca, foreign.cert, foreign.key),
    serverPids: [process.pid],
    encoding: 'snappy',
    dialTimeoutS: 0.3,
  });
  t.diagnostic(JSON.stringify(r));
  assert.equal(r.completed, 0);
  assert.ok(r.failed > 0, 'failed sessions counted');
  assert.ok(Object.keys(r.errors).length > 0, 'with their errors');
  assert.equal(g.sink.batches.length, 0);
});

/** The TLS ClientHello's offered groups (supported_groups) and the groups it sent key shares for. */
function helloGroups(record: Buffer): { supported: number[]; keyShares: number[] } {
  let at = 5 + 4 + 2 + 32; // record header, handshake header, legacy_version, random
  at += 1 + record[at]!; // session id
  at += 2 + record.readUInt16BE(at); // cipher suites
  at += 1 + record[at]!; // compression methods
  const end = at + 2 + record.readUInt16BE(at);
  const out = { supported: [] as number[], keyShares: [] as number[] };
  for (at += 2; at < end; ) {
    const type = record.readUInt16BE(at);
    const len = record.readUInt16BE(at + 2);
    const body = record.subarray(at + 4, at + 4 + len);
    if (type === 10) for (let i = 2; i < body.length; i += 2) out.supported.push(body.readUInt16BE(i));
    if (type === 51) {
      for (let i = 2; i < body.length; i += 4 + body.readUInt16BE(i + 2))
        out.keyShares.push(body.readUInt16BE(i));
    }
    at += 4 + len;
  }
  return out;
}

/** The first ClientHello the Go agent sends with `args`, read by a plain TCP listener. */
async function firstHello(t: TestContext, args: string[]) {
  let resolveHello!: (b: Buffer) => void;
  const hello = new Promise<Buffer>((resolve) => {
    resolveHello = resolve;
  });
  const server = net.createServer((socket) => {
    let got = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 5 && got.length >= 5 + got.readUInt16BE(3)) {
        resolveHello(got);
        socket.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const g = await createCa();
  const client = await createClientCert(g, { identity: 'fleet' });
  const agent = startGoAgent(t, {
    address: { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port },
    tls: { ca: g.cert, cert: client.cert, key: client.key },
    id: 'curves',
    args,
  });
  const record = await hello;
  await agent.stop();
  assert.equal(record[0], 22, 'a TLS handshake record');
  return helloGroups(record);
}

const X25519 = 0x001d;
const X25519MLKEM768 = 0x11ec;

test("goagent offers the stock agent's key exchange by default (X25519 share, no ML-KEM); -curves go offers this Go's", async (t) => {
  const stock = await firstHello(t, []);
  assert.deepEqual(stock.keyShares, [X25519]);
  assert.deepEqual(stock.supported, [X25519, 0x0017, 0x0018, 0x0019], 'X25519, P-256, P-384, P-521');
  const go = await firstHello(t, ['-curves', 'go']);
  assert.equal(go.keyShares[0], X25519MLKEM768, JSON.stringify(go));
  const listed = await firstHello(t, ['-curves', 'p256']);
  assert.deepEqual(listed, { supported: [0x0017], keyShares: [0x0017] });
});
