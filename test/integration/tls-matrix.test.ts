/**
 * The mTLS handshake matrix of docs/hardening.md §2 (tests 11, 12, 14) against a started gateway:
 * who is refused, who is accepted, and that every refusal is counted by reason.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http2, { type ClientHttp2Session } from 'node:http2';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import tls, { type TLSSocket } from 'node:tls';
import { encodeItem } from '../../gateway/agent/item.js';
import { Status } from '../../gateway/grpc/status.js';
import { connectAgent, openTransfer } from '../../loadtest/agent/raw-agent.js';
import { createCa, createClientCert, createCrl, type Pem, serialOf } from '../../platform/pki/certs.js';
import { loadTlsMaterial } from '../../platform/pki/tls-context.js';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { countsBy, metricValue } from '../helpers/metrics.js';
import { orTimeout, sleep } from '../helpers/time.js';

const DAY_MS = 86_400_000;

interface Attempt {
  /** The client finished its side of the TLS handshake. */
  secure: boolean;
  /** The Transfer stream got an HTTP response. */
  responded: boolean;
  /** A record sent on the stream reached the gateway's sink. */
  delivered: boolean;
  /** ms from connect to the session's close (undefined: still open at the deadline). */
  closedAfterMs: number | undefined;
  error: string | undefined;
}

/**
 * Connects with `opts`, opens a Transfer and sends one record tagged `agentId`, then waits up to
 * `ms` for the session to close. Never throws: reports what happened.
 */
async function attempt(
  g: TestGateway,
  opts: http2.SecureClientSessionOptions,
  agentId: string,
  ms = 2000,
): Promise<Attempt> {
  const started = Date.now();
  const a: Attempt = {
    secure: false,
    responded: false,
    delivered: false,
    closedAfterMs: undefined,
    error: undefined,
  };
  const session = http2.connect(`https://${g.address.host}:${g.address.port}`, {
    ca: g.tls.ca,
    servername: 'elkeid.com',
    ALPNProtocols: ['h2'],
    ...opts,
  });
  const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
  session.on('error', (err) => {
    a.error ??= err.message;
  });
  session.socket?.once('secureConnect', () => {
    a.secure = true;
  });
  const t = openTransfer(session);
  t.stream.on('response', () => {
    a.responded = true;
  });
  t.send({ AgentID: agentId, Data: [{ DataType: 1, Timestamp: 1, Body: encodeItem({ x: '1' }) }] });
  await orTimeout(closed, ms);
  if (session.closed || session.destroyed) a.closedAfterMs = Date.now() - started;
  // Give a record that did get through a moment to land, so "not delivered" means something.
  await sleep(50);
  a.delivered = g.sink.batches.some((b) => b.agentId === agentId);
  session.destroy();
  return a;
}

function assertRefused(a: Attempt, what: string): void {
  assert.equal(a.delivered, false, `${what}: no record may get through`);
  assert.equal(a.responded, false, `${what}: no stream may get a response`);
  assert.ok(
    a.closedAfterMs !== undefined && a.closedAfterMs < 2000,
    `${what}: connection closed (${JSON.stringify(a)})`,
  );
}

/** Raw TLS connect (no HTTP/2): resolves with how the handshake ended. */
function tlsHandshake(
  g: TestGateway,
  opts: tls.ConnectionOptions,
): Promise<{
  ok: boolean;
  error?: string;
  protocol?: string | null;
  cipher?: string;
  alpn?: string | false | null;
  socket: TLSSocket;
}> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: g.address.host,
      port: g.address.port,
      ca: g.tls.ca,
      cert: g.tls.cert,
      key: g.tls.key,
      servername: 'elkeid.com',
      ALPNProtocols: ['h2'],
      ...opts,
    });
    socket.once('secureConnect', () =>
      resolve({
        ok: true,
        protocol: socket.getProtocol(),
        cipher: socket.getCipher().standardName,
        alpn: socket.alpnProtocol,
        socket,
      }),
    );
    socket.once('error', (err) => resolve({ ok: false, error: err.message, socket }));
  });
}

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function handshakeFailures(g: TestGateway): Promise<Record<string, number>> {
  return countsBy(g.gateway.metrics.registry, 'fleetgate_tls_handshake_failures_total', 'reason');
}

/** Records uncaughtException during the test; the test asserts it stays empty. */
function watchUncaught(t: TestContext): unknown[] {
  const seen: unknown[] = [];
  const spy = (err: unknown) => seen.push(err);
  process.on('uncaughtException', spy);
  t.after(() => process.off('uncaughtException', spy));
  return seen;
}

function assertNoUncaught(seen: unknown[]): void {
  assert.deepEqual(
    seen.map((e) => String(e)),
    [],
    'no uncaughtException (in production this would have killed the gateway process)',
  );
}

// Regression: a refused client certificate used to crash the process (socket.destroy() on
// http2's socket proxy throws); refusals must be clean, logged and counted.

test('client with no certificate is refused', async (t) => {
  const uncaught = watchUncaught(t);
  const g = await startTestGateway(t);
  assertRefused(await attempt(g, {}, 'no-cert'), 'no certificate');
  assertNoUncaught(uncaught);
  assert.equal(total(await handshakeFailures(g)), 1, 'the refusal is counted');
});

test('client certificate from another CA is refused', async (t) => {
  const uncaught = watchUncaught(t);
  const g = await startTestGateway(t);
  const otherCa = await createCa({ commonName: 'another CA' });
  const foreign = await createClientCert(otherCa, { identity: 'fleet' });
  assertRefused(await attempt(g, { cert: foreign.cert, key: foreign.key }, 'foreign'), 'other CA');
  assertNoUncaught(uncaught);
  assert.equal(total(await handshakeFailures(g)), 1, 'the refusal is counted');
});

test('expired client certificate is refused', async (t) => {
  const uncaught = watchUncaught(t);
  const g = await startTestGateway(t);
  const expired = await createClientCert(g.pki.ca, {
    identity: 'expired',
    notBefore: new Date(Date.now() - 3 * DAY_MS),
    notAfter: new Date(Date.now() - DAY_MS),
  });
  assertRefused(await attempt(g, { cert: expired.cert, key: expired.key }, 'expired'), 'expired');
  assertNoUncaught(uncaught);
  assert.equal(total(await handshakeFailures(g)), 1, 'the refusal is counted');
});

test('revoked: after a CRL reload new connections are refused and live sessions closed', async (t) => {
  const uncaught = watchUncaught(t);
  const g = await startTestGateway(t);
  const toRevoke = await createClientCert(g.pki.ca, { identity: 'to-revoke' });
  const live: ClientHttp2Session = await connectAgent(g.address, {
    ca: g.tls.ca,
    cert: toRevoke.cert,
    key: toRevoke.key,
  });
  t.after(() => live.destroy());
  const liveClosed = new Promise<number>((resolve) => live.once('close', () => resolve(Date.now())));
  const stream = openTransfer(live);
  stream.send({ AgentID: 'revoked-live', Data: [{ DataType: 1, Timestamp: 1, Body: new Uint8Array() }] });
  await waitFor(() => g.gateway.sessions.get('revoked-live') !== undefined, 3000, 'revoked-live attached');

  writeFileSync(path.join(g.pkiDir, 'crl.pem'), await createCrl(g.pki.ca, [serialOf(toRevoke.cert)]));
  const reloadedAt = Date.now();
  assert.equal(g.gateway.tls.reload(), true, 'reload succeeds');
  const closedAt = await orTimeout(liveClosed, 2000);
  assert.ok(
    closedAt !== undefined && closedAt - reloadedAt < 1000,
    'the live session of the revoked cert is closed',
  );
  await waitFor(() => g.gateway.sessions.get('revoked-live') === undefined, 2000, 'session detached');

  assertRefused(await attempt(g, { cert: toRevoke.cert, key: toRevoke.key }, 'revoked-new'), 'revoked');
  const ok = await attempt(g, { cert: g.tls.cert, key: g.tls.key }, 'fleet-after-crl', 300);
  assert.equal(ok.delivered, true, 'a certificate not on the CRL still connects');
  assertNoUncaught(uncaught);
  assert.equal(total(await handshakeFailures(g)), 1, 'the refusal is counted');
});

// Regression: refusals were all counted as reason="other" because authorizationError is a string
// code at runtime, not an Error.
test('refusals are counted by reason on one gateway', async (t) => {
  const uncaught = watchUncaught(t);
  const g = await startTestGateway(t);
  const foreign = await createClientCert(await createCa({ commonName: 'x CA' }), { identity: 'fleet' });
  const expired = await createClientCert(g.pki.ca, {
    identity: 'expired',
    notBefore: new Date(Date.now() - 3 * DAY_MS),
    notAfter: new Date(Date.now() - DAY_MS),
  });
  const revoked = await createClientCert(g.pki.ca, { identity: 'revoked' });
  writeFileSync(path.join(g.pkiDir, 'crl.pem'), await createCrl(g.pki.ca, [serialOf(revoked.cert)]));
  g.gateway.tls.reload();
  const refusals: Array<[http2.SecureClientSessionOptions, string]> = [
    [{}, 'no-cert'],
    [{}, 'no-cert-2'],
    [{ cert: foreign.cert, key: foreign.key }, 'foreign'],
    [{ cert: expired.cert, key: expired.key }, 'expired'],
    [{ cert: revoked.cert, key: revoked.key }, 'revoked'],
  ];
  for (const [opts, id] of refusals) assertRefused(await attempt(g, opts, id), id);
  const counts = await handshakeFailures(g);
  assert.deepEqual(counts, { no_cert: 2, untrusted: 1, expired: 1, revoked: 1 });
  assertNoUncaught(uncaught);
});

test('the fleet certificate is accepted (control)', async (t) => {
  const g = await startTestGateway(t);
  const a = await attempt(g, { cert: g.tls.cert, key: g.tls.key }, 'control-fleet', 300);
  assert.equal(a.delivered, true, JSON.stringify(a));
  assert.equal(a.closedAfterMs, undefined, 'connection stays open');
  assert.deepEqual(await handshakeFailures(g), {});
});

test('protocol versions and cipher suites', async (t) => {
  const uncaught = watchUncaught(t);
  const g = await startTestGateway(t);
  const fleet = { cert: g.tls.cert, key: g.tls.key };

  // Refusals seen by the server itself (its 'tlsClientError'), to tell them from client-side ones.
  let refused = 0;
  let refusedBefore = 0;
  g.gateway.grpc.server.on('tlsClientError', () => refused++);

  await t.test('TLS 1.1 is refused', async () => {
    refusedBefore = refused;
    const r = await tlsHandshake(g, {
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    r.socket.destroy();
    assert.equal(r.ok, false, `TLS 1.1 handshake must fail (${r.protocol})`);
    // The server refused it (alert 70, or a reset racing the alert), not the client refusing to try.
    assert.match(r.error ?? '', /alert protocol version|ECONNRESET/);
    await waitFor(() => refusedBefore < refused, 2000, 'the gateway counts the refusal');
  });

  await t.test('TLS 1.2 with a CBC-only cipher list is refused', async () => {
    refusedBefore = refused;
    const r = await tlsHandshake(g, {
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-ECDSA-AES128-SHA256',
    });
    r.socket.destroy();
    assert.equal(r.ok, false, `CBC suite must not be negotiated (${r.cipher})`);
    assert.match(r.error ?? '', /alert handshake failure|ECONNRESET/, 'the server found no shared cipher');
    await waitFor(() => refusedBefore < refused, 2000, 'the gateway counts the refusal');
  });

  await t.test('TLS 1.2 with an ECDHE AEAD suite is accepted', async () => {
    const r = await tlsHandshake(g, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    r.socket.destroy();
    assert.equal(r.ok, true, r.error);
    assert.equal(r.protocol, 'TLSv1.2');
  });

  for (const suite of ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']) {
    await t.test(`TLS 1.3 with ${suite} is accepted`, async () => {
      const r = await tlsHandshake(g, { minVersion: 'TLSv1.3', ciphers: suite });
      r.socket.destroy();
      assert.equal(r.ok, true, r.error);
      assert.equal(r.protocol, 'TLSv1.3');
      assert.equal(r.cipher, suite);
      assert.equal(r.alpn, 'h2');
      const a = await attempt(g, { ...fleet, minVersion: 'TLSv1.3', ciphers: suite }, `tls13-${suite}`, 300);
      assert.equal(a.delivered, true, JSON.stringify(a));
    });
  }

  await t.test('ALPN other than h2 is closed quickly', async () => {
    const started = Date.now();
    const r = await tlsHandshake(g, { ALPNProtocols: ['http/1.1'] });
    r.socket.on('error', () => {});
    const closed = await new Promise<boolean>((resolve) => {
      if (r.socket.destroyed) return resolve(true);
      const timer = setTimeout(() => resolve(false), 1500);
      r.socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
      r.socket.resume();
    });
    r.socket.destroy();
    assert.equal(closed, true, 'connection closed');
    assert.ok(Date.now() - started < 1500, 'closed within 1.5 s');
    assert.ok(!(r.ok && r.alpn === 'http/1.1'), 'http/1.1 never negotiated');
    t.diagnostic(`ALPN http/1.1: ${r.ok ? `handshake completed, alpn ${r.alpn}` : r.error}`);
  });

  await t.test('every refused handshake is counted', async () => {
    const counts = await handshakeFailures(g);
    assert.ok(total(counts) >= 3, JSON.stringify(counts));
  });

  assertNoUncaught(uncaught);
});

test('per-agent identity: the AgentID must match the certificate', async (t) => {
  const g = await startTestGateway(t, { config: { identity: 'per-agent' } });
  const certA: Pem = await createClientCert(g.pki.ca, { identity: 'agent-A' });
  const creds = { ca: g.tls.ca, cert: certA.cert, key: certA.key };
  const session = await connectAgent(g.address, creds);
  t.after(() => session.destroy());

  const good = openTransfer(session);
  good.send({ AgentID: 'agent-A', Data: [{ DataType: 1, Timestamp: 1, Body: new Uint8Array() }] });
  await waitFor(() => g.sink.batches.some((b) => b.agentId === 'agent-A'), 3000, 'agent-A record');
  assert.equal(g.gateway.sessions.get('agent-A')?.certIdentity, 'agent-A');

  const bad = openTransfer(session);
  bad.send({ AgentID: 'agent-B', Data: [{ DataType: 1, Timestamp: 1, Body: new Uint8Array() }] });
  const s = await bad.status;
  assert.equal(s.code, Status.PERMISSION_DENIED, s.message);
  assert.equal(g.gateway.sessions.get('agent-B'), undefined);
  assert.ok(!g.sink.batches.some((b) => b.agentId === 'agent-B'), 'nothing of agent-B stored');

  // The fleet certificate (CN fleet) cannot claim agent-A either.
  const fleet = await connectAgent(g.address, g.tls);
  t.after(() => fleet.destroy());
  const claim = openTransfer(fleet);
  claim.send({ AgentID: 'agent-A', Data: [] });
  assert.equal((await claim.status).code, Status.PERMISSION_DENIED);
  assert.ok(g.gateway.sessions.get('agent-A')?.live, 'agent-A still connected, not replaced');
  good.stream.end();
});

// The gateway checks a one-CA CRL itself (platform/pki/revocation.ts: OpenSSL verified its
// signature twice per handshake); what OpenSSL refused must still be refused, with its reasons.
test('a CA and its CRL: checked at the certificate gate as OpenSSL checked it; other layouts stay with OpenSSL', async (t) => {
  const g = await startTestGateway(t);
  const revoked = await createClientCert(g.pki.ca, { identity: 'gate-revoked' });
  const fleet = { cert: g.tls.cert, key: g.tls.key };
  const useCrl = async (crl: string, ca = g.pki.ca.cert) => {
    writeFileSync(path.join(g.pkiDir, 'ca.crt'), ca);
    writeFileSync(path.join(g.pkiDir, 'crl.pem'), crl);
    assert.equal(g.gateway.tls.reload(), true);
    return loadTlsMaterial(g.pkiDir);
  };
  const m = await useCrl(await createCrl(g.pki.ca, [serialOf(revoked.cert)]));
  assert.equal(m.options.crl, undefined, 'OpenSSL is not given the CRL');
  assert.ok(m.revocation, 'the gate checks it');
  assertRefused(await attempt(g, { cert: revoked.cert, key: revoked.key }, 'gate-revoked'), 'revoked');
  assert.equal((await attempt(g, fleet, 'gate-ok', 300)).delivered, true, 'an unlisted certificate passes');

  await useCrl(
    await createCrl(g.pki.ca, [], {
      thisUpdate: new Date(Date.now() - 3 * DAY_MS),
      nextUpdate: new Date(Date.now() - DAY_MS),
    }),
  );
  assertRefused(await attempt(g, fleet, 'crl-expired'), 'a CRL past its nextUpdate refuses everyone');
  await useCrl(await createCrl(g.pki.ca, [], { thisUpdate: new Date(Date.now() + DAY_MS) }));
  assertRefused(await attempt(g, fleet, 'crl-future'), 'a CRL not valid yet refuses everyone');
  await useCrl(await createCrl(g.pki.ca, [serialOf(g.pki.ca.cert)]));
  assertRefused(await attempt(g, fleet, 'ca-revoked'), 'the CA itself listed refuses everyone');
  assert.deepEqual(await handshakeFailures(g), { revoked: 2, expired: 1, other: 1 });

  // Two CAs in ca.crt: OpenSSL keeps the CRL and refuses as before.
  const other = await createCa({ commonName: 'second CA' });
  const two = await useCrl(
    await createCrl(g.pki.ca, [serialOf(revoked.cert)]),
    `${g.pki.ca.cert}${other.cert}`,
  );
  assert.ok(two.options.crl, 'OpenSSL is given the CRL');
  assert.equal(two.revocation, undefined);
  assertRefused(await attempt(g, { cert: revoked.cert, key: revoked.key }, 'openssl-revoked'), 'revoked');
  assert.equal((await handshakeFailures(g)).revoked, 3);
});

test('a CRL written to the PKI dir is picked up by the file watch, without SIGHUP or restart', async (t) => {
  const g = await startTestGateway(t, { tlsPollMs: 100 });
  const toRevoke = await createClientCert(g.pki.ca, { identity: 'watched' });
  const before = await attempt(g, { cert: toRevoke.cert, key: toRevoke.key }, 'watched-before', 300);
  assert.equal(before.delivered, true);
  // Reading the PKI files at start must not count as a change.
  assert.equal(await metricValue(g.gateway.metrics.registry, 'fleetgate_tls_reloads_total'), 0);
  writeFileSync(path.join(g.pkiDir, 'crl.pem'), await createCrl(g.pki.ca, [serialOf(toRevoke.cert)]));
  const deadline = Date.now() + 5000;
  while (
    (await metricValue(g.gateway.metrics.registry, 'fleetgate_tls_reloads_total', { result: 'ok' })) === 0
  ) {
    assert.ok(Date.now() < deadline, 'reload by the file watch within 5 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  assertRefused(await attempt(g, { cert: toRevoke.cert, key: toRevoke.key }, 'watched-after'), 'revoked');
});
