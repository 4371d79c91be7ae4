/**
 * AgentID problems of real fleets, with stock-agent clients (loadtest/goagent): an empty ID
 * (hosts without DMI data) and one ID on two live hosts (cloned images).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../platform/obs/logger.js';
import { startTestGateway } from '../helpers/gateway.js';
import { startGoAgent } from '../helpers/goagent.js';
import { metricValue } from '../helpers/metrics.js';
import { sleep } from '../helpers/time.js';

function capture() {
  const lines: string[] = [];
  return { lines, logger: createLogger('info', { write: (l: string) => lines.push(l) }) };
}

test('an empty AgentID is refused, counted, and logged rate-limited with the peer and SPECIFIED_AGENT_ID', async (t) => {
  const { lines, logger } = capture();
  const g = await startTestGateway(t, { logger });
  const a = startGoAgent(t, {
    address: g.address,
    tls: g.tls,
    id: '',
    args: ['-reconnect-wait', '200ms', '-rate', '5'],
  });
  const refusals = () =>
    metricValue(g.gateway.metrics.registry, 'fleetgate_agent_refusals_total', { reason: 'empty_agent_id' });
  const deadline = Date.now() + 15_000;
  while ((await refusals()) < 3) {
    assert.ok(Date.now() < deadline, `three refusals: ${JSON.stringify(a.events)}`);
    await sleep(100);
  }
  const ends = a.seen('stream_end');
  assert.ok(ends.length >= 2);
  assert.match(String(ends[0]!.msg), /SPECIFIED_AGENT_ID/);
  const logged = lines.map((l) => JSON.parse(l)).filter((l) => /empty AgentID/.test(l.msg));
  assert.equal(logged.length, 1, 'one line for all refusals within a minute');
  assert.equal(logged[0].level, 40);
  assert.match(logged[0].msg, /SPECIFIED_AGENT_ID/);
  assert.match(logged[0].peer, /^127\.0\.0\.1:\d+$/);
  assert.equal(logged[0].hostname, 'goagent');
  assert.equal(g.gateway.sessions.size, 0);
});

test('two live agents with one AgentID: flapping is detected, warned once, counted, and stopped', async (t) => {
  const { lines, logger } = capture();
  const g = await startTestGateway(t, { logger });
  const id = 'cloned-host-id';
  const args = ['-reconnect-wait', '300ms', '-rate', '20'];
  startGoAgent(t, { address: g.address, tls: g.tls, id, args: [...args, '-hostname', 'clone-a'] });
  startGoAgent(t, { address: g.address, tls: g.tls, id, args: [...args, '-hostname', 'clone-b'] });
  const reg = g.gateway.metrics.registry;
  const deadline = Date.now() + 20_000;
  while ((await metricValue(reg, 'fleetgate_agent_refusals_total', { reason: 'agent_id_conflict' })) < 2) {
    assert.ok(Date.now() < deadline, 'the newcomer is held back');
    await sleep(100);
  }
  assert.equal(await metricValue(reg, 'fleetgate_agent_id_flapping_total'), 1);
  const replaced = await metricValue(reg, 'fleetgate_agent_replaced_total');
  assert.equal(replaced, 3, 'replacements stop once flapping is detected');
  await sleep(1500);
  assert.equal(await metricValue(reg, 'fleetgate_agent_replaced_total'), replaced, 'no more knocking off');
  assert.equal(g.gateway.sessions.get(id)?.live, true, 'one of them stays connected');
  const warned = lines.map((l) => JSON.parse(l)).filter((l) => /share this AgentID/.test(l.msg));
  assert.equal(warned.length, 1);
  assert.equal(warned[0].level, 40);
  assert.equal(warned[0].agentId, id);
  assert.match(warned[0].msg, /SPECIFIED_AGENT_ID/);
});
