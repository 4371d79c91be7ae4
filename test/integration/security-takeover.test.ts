/**
 * Issue 14, item 6: in fleet-certificate mode a second connection presenting the shared
 * certificate and a live agent's AgentID takes over its stream (newest wins, as Elkeid). That
 * takeover is logged at warn with both peers and the remedy, so it is seen.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectAgent, openTransfer } from '../../loadtest/agent/raw-agent.js';
import { createLogger } from '../../platform/obs/logger.js';
import { startTestGateway, waitFor } from '../helpers/gateway.js';

test('fleet mode: a live agent stream taken over by another connection is logged at warn with both peers', async (t) => {
  const lines: string[] = [];
  const logger = createLogger('warn', { write: (l: string) => lines.push(l) });
  const g = await startTestGateway(t, { logger });
  const victim = await connectAgent(g.address, g.tls);
  t.after(() => victim.destroy());
  const first = openTransfer(victim);
  first.send({ AgentID: 'victim-agent', Data: [{ DataType: 1, Timestamp: 1, Body: Buffer.from('x') }] });
  await waitFor(() => g.gateway.sessions.get('victim-agent') !== undefined, 5000, 'victim connected');
  const victimPeer = g.gateway.sessions.get('victim-agent')!.peer;

  const intruder = await connectAgent(g.address, g.tls);
  t.after(() => intruder.destroy());
  const second = openTransfer(intruder);
  second.send({ AgentID: 'victim-agent', Data: [{ DataType: 1, Timestamp: 2, Body: Buffer.from('y') }] });
  await waitFor(() => lines.some((l) => /taken over/.test(l)), 5000, 'takeover warning');
  const entry = JSON.parse(lines.find((l) => /taken over/.test(l))!) as Record<string, unknown>;
  assert.equal(entry.level, 40, 'warn');
  assert.equal(entry.agentId, 'victim-agent');
  assert.equal(entry.previousPeer, victimPeer);
  assert.notEqual(entry.peer, victimPeer);
  assert.equal(entry.identity, 'fleet');
  assert.match(String(entry.msg), /FLEETGATE_IDENTITY=per-agent/);
  const status = await first.status;
  assert.equal(status.code, 10, 'the old stream ended ABORTED');
});
