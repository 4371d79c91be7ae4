/**
 * Ping strikes as grpc-go's server counts them: a PING after the server sent headers or data is
 * no strike (grpc-go clients ping for each DATA frame they receive); a PING flood between two
 * sends still ends in GOAWAY too_many_pings. Raw HTTP/2 frames (node:http2 client).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectAgent, openTransfer } from '../../loadtest/agent/raw-agent.js';
import { startTestGateway, waitFor } from '../helpers/gateway.js';
import { metricValue } from '../helpers/metrics.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ping(s: import('node:http2').ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    try {
      s.ping(() => resolve());
    } catch {
      resolve();
    }
  });
}

test('one PING after each command is not a strike', async (t) => {
  const g = await startTestGateway(t, { limits: { minClientPingIntervalMs: 5000, maxPingStrikes: 2 } });
  const s = await connectAgent(g.address, g.tls);
  t.after(() => s.destroy());
  const a = openTransfer(s);
  a.send({ AgentID: 'bdp-1', Data: [] });
  await waitFor(() => g.gateway.sessions.get('bdp-1') !== undefined, 5000, 'agent');
  for (let i = 0; i < 8; i++) {
    assert.equal(await g.gateway.sessions.send('bdp-1', { Task: { Name: 'p', Token: `t${i}` } }), 'sent');
    await waitFor(() => a.commands.length === i + 1, 5000, `command ${i}`);
    await ping(s);
  }
  assert.equal(s.closed, false);
  assert.equal(
    await metricValue(g.gateway.metrics.registry, 'fleetgate_http2_sessions_closed_total', {
      reason: 'too_many_pings',
    }),
    0,
  );
});

test('a PING flood between commands still gets GOAWAY too_many_pings', async (t) => {
  const g = await startTestGateway(t, { limits: { minClientPingIntervalMs: 5000, maxPingStrikes: 2 } });
  const s = await connectAgent(g.address, g.tls);
  t.after(() => s.destroy());
  let goaway: { code: number; debug: string } | undefined;
  s.on('goaway', (code, _last, data) => {
    goaway = { code, debug: data ? String(data) : '' };
  });
  const a = openTransfer(s);
  a.send({ AgentID: 'flood-1', Data: [] });
  await waitFor(() => g.gateway.sessions.get('flood-1') !== undefined, 5000, 'agent');
  for (let i = 0; i < 20 && !goaway; i++) {
    void g.gateway.sessions.send('flood-1', { Task: { Name: 'p', Token: `t${i}` } });
    for (let j = 0; j < 5; j++) void ping(s);
    await sleep(50);
  }
  await waitFor(() => goaway !== undefined, 3000, 'GOAWAY');
  assert.equal(goaway?.debug, 'too_many_pings');
  assert.equal(
    await metricValue(g.gateway.metrics.registry, 'fleetgate_http2_sessions_closed_total', {
      reason: 'too_many_pings',
    }),
    1,
  );
});
