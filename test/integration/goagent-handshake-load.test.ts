/**
 * `goagent handshake-load` (loadtest/goagent/load_handshake.go), the reconnect storm of
 * bench:gateway: grpc-go sessions back to back against the real gateway, each a new mTLS dial,
 * the Transfer stream, one RawData and the server's status. What it reports must be what the
 * gateway saw, and a refused certificate must count as failures, never as sessions.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { goHandshakeLoad } from '../../loadtest/bench/go-handshake-load.js';
import { createCa, createClientCert } from '../../platform/pki/certs.js';
import { startTestGateway, tempDir } from '../helpers/gateway.js';
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
