/**
 * Admission by handshakes in progress (gateway/grpc/handshake-gate.ts) on a real gateway: sockets
 * that never finish their TLS handshake hold the slots; past the limit a stock-agent dial is
 * refused at once with a reset (no TLS work), counted and logged; a slot comes back when a
 * handshake completes or its socket closes; one source address cannot take more than its share.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { type TestContext, test } from 'node:test';
import { encodeItem } from '../../gateway/agent/item.js';
import { connectAgent, openTransfer } from '../../loadtest/agent/raw-agent.js';
import { createLogger } from '../../platform/obs/logger.js';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { metricValue } from '../helpers/metrics.js';

/** A TCP connection that never sends a ClientHello: a handshake in progress until it closes. */
async function silentSocket(t: TestContext, g: TestGateway, localAddress = '127.0.0.1'): Promise<net.Socket> {
  const s = net.connect({ ...g.address, localAddress });
  s.on('error', () => {});
  t.after(() => s.destroy());
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return s;
}

const pending = (g: TestGateway) =>
  metricValue(g.gateway.metrics.registry, 'fleetgate_tls_handshakes_pending');
const refused = (g: TestGateway, reason: string) =>
  metricValue(g.gateway.metrics.registry, 'fleetgate_connections_refused_total', { reason });

/** Polls an async condition (the server accepts asynchronously), failing after 3 s. */
async function until(fn: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A stock-agent dial with a short timeout; resolves to the error code, or 'ok' with the session closed. */
async function dial(g: TestGateway, localAddress = '127.0.0.1'): Promise<string> {
  try {
    const session = await connectAgent({ ...g.address, localAddress }, g.tls, { timeoutMs: 3000 });
    session.destroy();
    return 'ok';
  } catch (err) {
    return String((err as NodeJS.ErrnoException).code ?? (err as Error).message);
  }
}

test('past the limit of handshakes in progress a dial is reset at once; a closed socket frees its slot', async (t) => {
  const lines: string[] = [];
  const logger = createLogger('warn', { write: (l: string) => lines.push(l) });
  const g = await startTestGateway(t, {
    limits: { maxPendingHandshakes: 3, maxPendingHandshakesPerSource: 3 },
    logger,
  });
  const held = [await silentSocket(t, g), await silentSocket(t, g), await silentSocket(t, g)];
  await until(async () => (await pending(g)) === 3, 'three handshakes in progress');

  const t0 = Date.now();
  const code = await dial(g);
  assert.equal(code, 'ECONNRESET', 'refused with a reset, not left to time out');
  assert.ok(Date.now() - t0 < 2000, `refused in ${Date.now() - t0} ms`);
  assert.equal(await refused(g, 'handshakes'), 1);
  assert.ok(
    lines.some((l) => /too many TLS handshakes in progress/.test(l)),
    'the refusal is logged',
  );

  held[0]!.destroy();
  await until(async () => (await pending(g)) === 2, 'a closed socket gives its slot back');
  assert.equal(await dial(g), 'ok', 'admitted again once a slot is free');
});

test('a completed handshake gives its slot back while its connection stays open', async (t) => {
  const g = await startTestGateway(t, {
    limits: { maxPendingHandshakes: 2, maxPendingHandshakesPerSource: 2 },
  });
  // Four agents one after another through two slots: each must release its slot when its
  // handshake completes (the TLS socket's _parent is the raw socket on this Node), not on close.
  const agents = [];
  for (let i = 0; i < 4; i++) {
    const session = await connectAgent(g.address, g.tls, { timeoutMs: 3000 });
    t.after(() => session.destroy());
    const s = openTransfer(session);
    s.send({
      AgentID: `gate-${i}`,
      Hostname: 'h',
      Data: [{ DataType: 1000, Timestamp: 1, Body: encodeItem({}) }],
    });
    agents.push(s);
  }
  await waitFor(() => g.gateway.sessions.size === 4, 5000, 'four agents');
  assert.equal(await pending(g), 0);
  assert.equal(await refused(g, 'handshakes'), 0);
});

test('one source address holds at most its share of the slots; others still get in', async (t) => {
  const g = await startTestGateway(t, {
    limits: { maxPendingHandshakes: 10, maxPendingHandshakesPerSource: 2 },
  });
  await silentSocket(t, g, '127.0.0.1');
  await silentSocket(t, g, '127.0.0.1');
  await until(async () => (await pending(g)) === 2, 'two handshakes in progress');
  assert.equal(await dial(g, '127.0.0.1'), 'ECONNRESET');
  assert.equal(await refused(g, 'source'), 1);
  assert.equal(await dial(g, '127.0.0.2'), 'ok', 'another address is not shut out');
  assert.equal(await refused(g, 'handshakes'), 0);
});

test('hardening §6: 1,000 sockets that never send a ClientHello do not stop an agent from connecting in under 2 s', async (t) => {
  // Defaults: 512 in progress, 128 per source. The attacker's address gets its 128; the rest of
  // its sockets are reset at once, and an agent from another address is admitted.
  const g = await startTestGateway(t, {
    limits: { maxPendingHandshakes: 512, maxPendingHandshakesPerSource: 128 },
  });
  const attack = await Promise.allSettled(
    Array.from({ length: 1000 }, () => silentSocket(t, g, '127.0.0.1')),
  );
  assert.ok(attack.filter((r) => r.status === 'fulfilled').length >= 128);
  await until(async () => (await pending(g)) === 128, 'the attacker holds its share');
  const t0 = Date.now();
  assert.equal(await dial(g, '127.0.0.3'), 'ok');
  assert.ok(Date.now() - t0 < 2000, `agent admitted in ${Date.now() - t0} ms`);
  assert.ok((await refused(g, 'source')) >= 800, "the attacker's other sockets were refused");
});
