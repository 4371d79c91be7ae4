/**
 * A stock agent (loadtest/goagent, grpc-go) whose certificate the gateway refuses must back off
 * as against Elkeid's AgentCenter: the refusal happens inside the TLS handshake, so grpc-go never
 * sees a working connection and keeps its reconnect backoff. Refused after the HTTP/2 session
 * had started, the agent saw a connection come up and redialled at once (hundreds of handshakes
 * a minute from one agent).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { createLogger } from '../../platform/obs/logger.js';
import { createCa, createClientCert, createCrl, serialOf } from '../../platform/pki/certs.js';
import { startTestGateway } from '../helpers/gateway.js';
import { startGoAgent } from '../helpers/goagent.js';
import { countsBy } from '../helpers/metrics.js';
import { sleep } from '../helpers/time.js';

/** grpc-go's backoff (1 s, ×1.6) inside one 15 s dial, then the agent's 5 s pause: 6 s allow ≤ 5 attempts. */
const WATCH_MS = 6000;
const MAX_ATTEMPTS = 6;

type TestGateway = Awaited<ReturnType<typeof startTestGateway>>;

/**
 * Runs a stock agent with `cert` against the gateway for WATCH_MS; returns the agent and the
 * gateway's handshake refusals by reason.
 */
async function watchRefusals(
  t: TestContext,
  g: TestGateway,
  cert: { cert: string; key: string },
  id: string,
): Promise<{ agent: ReturnType<typeof startGoAgent>; counts: Record<string, number> }> {
  const agent = startGoAgent(t, {
    address: g.address,
    tls: { ca: g.tls.ca, cert: cert.cert, key: cert.key },
    id,
  });
  await sleep(WATCH_MS);
  const counts = await countsBy(
    g.gateway.metrics.registry,
    'fleetgate_tls_handshake_failures_total',
    'reason',
  );
  t.diagnostic(`refusals in ${WATCH_MS} ms: ${JSON.stringify(counts)}`);
  return { agent, counts };
}

// Each test watches its own gateway and agent for WATCH_MS: they run at once.
describe('refused agent certificates', { concurrency: true }, () => {
  test('an untrusted agent certificate is refused in the handshake, and the agent backs off', async (t) => {
    const lines: string[] = [];
    const g = await startTestGateway(t, {
      logger: createLogger('info', { write: (l: string) => lines.push(l) }),
    });
    const foreign = await createClientCert(await createCa({ commonName: 'another CA' }), {
      identity: 'fleet',
    });
    const { agent: a, counts } = await watchRefusals(t, g, foreign, 'untrusted-1');
    // Go's TLS client sends no certificate whose issuer the server did not ask for: "no_cert".
    const refused = (counts.untrusted ?? 0) + (counts.no_cert ?? 0);
    assert.ok(refused >= 2, JSON.stringify(counts));
    assert.ok(refused <= MAX_ATTEMPTS, `${refused} handshakes in ${WATCH_MS} ms`);
    assert.equal(a.seen('stream_open').length, 0, 'never a stream');
    assert.equal(g.sink.batches.length, 0);
    // Every refusal counted, one log line for all of them (rate-limited to one per 10 s).
    const logged = lines.filter((l) => l.includes('client certificate refused'));
    assert.equal(logged.length, 1, logged.join(''));
    assert.equal(JSON.parse(logged[0]!).level, 40);
  });

  test('a revoked agent certificate is refused in the handshake, and the agent backs off', async (t) => {
    const g = await startTestGateway(t);
    const revoked = await createClientCert(g.pki.ca, { identity: 'revoked' });
    writeFileSync(path.join(g.pkiDir, 'crl.pem'), await createCrl(g.pki.ca, [serialOf(revoked.cert)]));
    assert.equal(g.gateway.tls.reload(), true);
    const { agent: a, counts } = await watchRefusals(t, g, revoked, 'revoked-1');
    assert.ok((counts.revoked ?? 0) >= 1, JSON.stringify(counts));
    assert.ok((counts.revoked ?? 0) <= MAX_ATTEMPTS, `${counts.revoked} handshakes in ${WATCH_MS} ms`);
    assert.equal(a.seen('stream_open').length, 0, 'never a stream');
  });
});
