/**
 * The HeartbeatWriter on a simulated clock against a real dynalite: an hour of minute heartbeats
 * from 200 agents costs under one item write per agent per ten minutes after the first; plugin
 * changes are written promptly; across gateways the newest connection wins and the old gateway's
 * late writes change nothing; status rules for a gateway that stopped publishing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { createHeartbeatWriter } from '../../manager/agent-status-writer.js';
import { agentStatus, type GatewayInfo, toGatewayInfo } from '../../manager/agents.js';
import { createManagerStore } from '../../manager/store.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { startTestDynamo } from '../helpers/dynalite.js';
import { FakeRegistry, FakeSession } from '../helpers/manager-harness.js';

test('an hour of heartbeats from 200 agents: ≤ 1 write per agent per 10 minutes after the first', async (t) => {
  const db = await startTestDynamo();
  t.after(() => db.close());
  let now = Date.parse('2026-05-01T00:00:00Z');
  const reg = new FakeRegistry();
  const writer = createHeartbeatWriter({
    client: db.client,
    tablePrefix: db.prefix,
    gatewayId: 'gw:6751',
    sessions: reg,
    logger: silentLogger(),
    now: () => now,
    loadTags: false,
  });
  const agents = 200;
  const sessions: FakeSession[] = [];
  for (let i = 0; i < agents; i++)
    sessions.push(reg.add(new FakeSession(`a-${i}`, { connectedAt: now / 1000 })));
  const heartbeat = (s: FakeSession) => {
    s.heartbeat({ last_heartbeat_time: Math.floor(now / 1000) });
  };
  for (const s of sessions) heartbeat(s);
  writer.sweep();
  await writer.settle();
  const first = writer.stats().writes;
  assert.equal(first.connect, agents);
  assert.equal(first.put, agents, 'the first heartbeat of each agent is written at once');

  // One simulated hour, a sweep per second, each agent heartbeating once a minute at its own second.
  const hour = 3600;
  for (let s = 1; s <= hour; s++) {
    now += 1000;
    for (let i = s % 60; i < agents; i += 60) heartbeat(sessions[i]!);
    writer.sweep();
    if (s % 10 === 0) await writer.settle();
  }
  await writer.settle();
  const w = writer.stats().writes;
  const refreshes = w.put - first.put;
  const perAgentPer10Min = refreshes / agents / (hour / 600);
  assert.ok(perAgentPer10Min <= 1, `${perAgentPer10Min.toFixed(3)} writes per agent per 10 min`);
  assert.ok(
    perAgentPer10Min >= 0.8,
    `each agent is refreshed about every 10 minutes (${perAgentPer10Min.toFixed(3)})`,
  );
  assert.deepEqual([w.connect, w.disconnect, w.stale], [agents, 0, 0]);
  assert.ok(writer.stats().batches < (w.put / 25) * 1.5 + 400, 'item writes go out 25 per request');

  // A plugin's new version is a change: written at the agent's next heartbeat, not at the refresh.
  const s0 = sessions[0]!;
  s0.plugins.set('collector', { name: 'collector', pversion: '1.0.0.2' });
  now += 1000;
  heartbeat(s0);
  writer.sweep();
  await writer.settle();
  assert.equal(writer.stats().writes.put, w.put + 1);
  const item = (
    await createManagerStore(db.client, db.prefix).doc.send(
      new GetCommand({ TableName: `${db.prefix}agents`, Key: { agentId: 'a-0' } }),
    )
  ).Item!;
  assert.deepEqual(JSON.parse(item.plugins), [{ name: 'collector', pversion: '1.0.0.2' }]);
  assert.equal(item.hbAt, Math.floor(now / 1000));
  await writer.close();
});

test('across gateways the newest connection wins; the old gateway cannot mark the agent offline', async (t) => {
  const db = await startTestDynamo();
  t.after(() => db.close());
  const mk = (gatewayId: string, reg: FakeRegistry) =>
    createHeartbeatWriter({
      client: db.client,
      tablePrefix: db.prefix,
      gatewayId,
      sessions: reg,
      logger: silentLogger(),
    });
  const regA = new FakeRegistry();
  const regB = new FakeRegistry();
  const a = mk('gw-a:6751', regA);
  const b = mk('gw-b:6751', regB);
  const nowS = Math.floor(Date.now() / 1000);
  // The agent's old connection (A, 30 s ago) is only noticed by A after the new one (B) is written.
  regB.add(new FakeSession('mover', { connectedAt: nowS })).heartbeat();
  b.sweep();
  await b.settle();
  const old = regA.add(new FakeSession('mover', { connectedAt: nowS - 30 }));
  old.heartbeat();
  a.sweep();
  await a.settle();
  regA.remove(old);
  a.sweep();
  await a.settle();
  const get = async () =>
    (
      await createManagerStore(db.client, db.prefix).doc.send(
        new GetCommand({ TableName: `${db.prefix}agents`, Key: { agentId: 'mover' } }),
      )
    ).Item!;
  const item = await get();
  assert.deepEqual([item.gateway, item.online], ['gw-b:6751', true]);
  assert.equal(a.stats().writes.connect, 0, "A's older connection was refused");
  assert.equal(a.stats().writes.disconnect, 0);
  assert.equal(a.stats().writes.put, 0);
  await a.close();
  await b.close();
  assert.deepEqual([(await get()).online, (await get()).lastGateway], [false, 'gw-b:6751']);
});

test('status rules: disconnected, silent, dead gateway, abnormal, running', () => {
  const now = 1_800_000_000_000;
  const gw = (updatedAtMs: number): Map<string, GatewayInfo> =>
    new Map([['g', toGatewayInfo({ name: 'g', gatewayId: 'g', updatedAtMs }, now)]]);
  const live = gw(now - 10_000);
  const base = { agentId: 'x', online: true, gateway: 'g', hbAt: now / 1000 - 30, state: 'running' };
  assert.equal(agentStatus(base, live, now), 'running');
  assert.equal(agentStatus({ ...base, state: 'abnormal' }, live, now), 'abnormal');
  assert.equal(agentStatus({ ...base, online: false }, live, now), 'offline');
  assert.equal(agentStatus({ ...base, stale: true }, live, now), 'offline');
  assert.equal(
    agentStatus(base, gw(now - 61_000), now),
    'offline',
    'its gateway stopped publishing 61 s ago',
  );
  assert.equal(agentStatus(base, new Map(), now), 'offline');
  assert.equal(agentStatus({ ...base, hbAt: now / 1000 - 901 }, live, now), 'offline');
});
