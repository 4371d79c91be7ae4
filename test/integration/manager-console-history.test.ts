/**
 * What the console's agent page and audit page read, through the manager's API over dynalite:
 * an agent's connection history (written by the gateway's status writer through its hook into
 * the `connections` table), its recent tasks (the subtasks' `byAgent` index), and the audit log
 * filtered by actor, action, target and result, paged by cursor.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createHeartbeatWriter } from '../../manager/agent-status-writer.js';
import { createConnectionRecorder } from '../../manager/store/connection-history-store.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { FakeRegistry, FakeSession, startTestManager, type TestManager } from '../helpers/manager-harness.js';

function gatewayWriter(m: TestManager, gatewayId: string, reg: FakeRegistry) {
  const connections = createConnectionRecorder({
    client: m.db.client,
    tablePrefix: m.db.prefix,
    logger: silentLogger(),
  });
  const writer = createHeartbeatWriter({
    client: m.db.client,
    tablePrefix: m.db.prefix,
    gatewayId,
    sessions: reg,
    logger: silentLogger(),
    onConnection: (e) => connections.record(e),
  });
  return {
    async settle() {
      writer.sweep();
      await writer.settle();
      await connections.flush();
    },
  };
}

test('agent history: connects and disconnects with gateway and time, recent tasks with the agent state', async (t) => {
  const m = await startTestManager(t);
  const viewer = await m.user('watcher', 'viewer');
  const op = await m.user('op', 'operator');
  const regA = new FakeRegistry();
  const regB = new FakeRegistry();
  const a = gatewayWriter(m, 'gw-a:6751', regA);
  const b = gatewayWriter(m, 'gw-b:6751', regB);
  const first = regA.add(new FakeSession('mover', { ip: '10.0.0.7' }));
  first.heartbeat();
  regA.add(new FakeSession('stayer', { ip: '10.0.0.8' })).heartbeat();
  await a.settle();
  // The agent moves: gone from A, connected to B.
  regA.remove(first);
  await a.settle();
  regB.add(new FakeSession('mover', { ip: '10.0.0.7' })).heartbeat();
  await b.settle();

  const r = await m.call('GET', '/api/fleet/agents/mover/connections', { token: viewer });
  assert.equal(r.status, 200, r.text);
  const events = (r.json.items as Array<{ kind: string; gateway: string; at: number; peer: string }>).map(
    (e) => [e.kind, e.gateway],
  );
  assert.deepEqual(events, [
    ['connect', 'gw-b:6751'],
    ['disconnect', 'gw-a:6751'],
    ['connect', 'gw-a:6751'],
  ]);
  const newest = r.json.items[0];
  assert.ok(newest.at > Date.now() - 60_000 && newest.peer.length > 0, JSON.stringify(newest));
  const one = await m.call('GET', '/api/fleet/agents/mover/connections?limit=1', { token: viewer });
  assert.equal(one.json.items.length, 1);
  assert.equal(
    (await m.call('GET', '/api/fleet/agents/mover/connections?limit=0', { token: viewer })).status,
    400,
  );
  assert.deepEqual(
    (await m.call('GET', '/api/fleet/agents/nobody/connections', { token: viewer })).json.items,
    [],
  );

  // Two tasks for `mover` (one also for `stayer`): newest first, each with the agent's state.
  const ids: string[] = [];
  for (const list of [['mover', 'stayer'], ['mover']]) {
    const created = await m.call('POST', '/api/fleet/tasks', {
      token: op,
      body: {
        action: 'config',
        id_list: list,
        data: { config: [{ name: 'collector', version: '1.0.0.2' }] },
      },
    });
    assert.equal(created.status, 201, created.text);
    ids.push(created.json.task_id);
  }
  const tasks = await m.call('GET', '/api/fleet/agents/mover/tasks', { token: viewer });
  assert.equal(tasks.status, 200, tasks.text);
  assert.deepEqual(
    tasks.json.items.map((x: { task_id: string; agent_id: string; status: string; task_status: string }) => [
      x.task_id,
      x.agent_id,
      x.status,
      x.task_status,
    ]),
    [
      [ids[1], 'mover', 'created', 'created'],
      [ids[0], 'mover', 'created', 'created'],
    ],
  );
  const stayer = await m.call('GET', '/api/fleet/agents/stayer/tasks?limit=5', { token: viewer });
  assert.deepEqual(
    stayer.json.items.map((x: { task_id: string }) => x.task_id),
    [ids[0]],
  );
});

test('connection history: a flapping agent records a bounded number of events per window', async (t) => {
  const m = await startTestManager(t);
  const viewer = await m.user('watcher', 'viewer');
  let now = Date.now();
  const recorder = createConnectionRecorder({
    client: m.db.client,
    tablePrefix: m.db.prefix,
    logger: silentLogger(),
    perAgentPerWindow: 4,
    windowMs: 60_000,
    now: () => now,
  });
  for (let i = 0; i < 30; i++) {
    recorder.record({
      agentId: 'flapper',
      kind: i % 2 ? 'disconnect' : 'connect',
      gateway: 'gw-a:1',
      atMs: now + i,
      peer: 'p',
    });
  }
  recorder.record({ agentId: 'calm', kind: 'connect', gateway: 'gw-a:1', atMs: now, peer: 'p' });
  await recorder.flush();
  const count = async (id: string) =>
    (await m.call('GET', `/api/fleet/agents/${id}/connections?limit=100`, { token: viewer })).json.items
      .length;
  assert.equal(await count('flapper'), 4);
  assert.equal(await count('calm'), 1);
  assert.equal(recorder.skipped, 26);
  // A new window records again.
  now += 60_000;
  recorder.record({ agentId: 'flapper', kind: 'connect', gateway: 'gw-b:1', atMs: now, peer: 'p' });
  await recorder.close();
  assert.equal(await count('flapper'), 5);
});

test('connection history: while the store refuses the writes, a bounded queue; the overflow dropped and counted', async (t) => {
  const m = await startTestManager(t);
  const registry = new Registry();
  const recorder = createConnectionRecorder({
    client: m.db.client,
    tablePrefix: 'no-such-prefix-', // its table does not exist: every write fails
    logger: silentLogger(),
    maxQueued: 5,
    registry,
  });
  for (let i = 0; i < 8; i++) {
    recorder.record({ agentId: `a${i}`, kind: 'connect', gateway: 'gw-a:1', atMs: Date.now(), peer: 'p' });
  }
  assert.equal(recorder.dropped, 3, 'beyond the bound at once');
  await recorder.flush(); // fails: the five go back to the queue
  recorder.record({ agentId: 'a9', kind: 'connect', gateway: 'gw-a:1', atMs: Date.now(), peer: 'p' });
  assert.equal(recorder.dropped, 4);
  const metric = await registry.getSingleMetric('fleetgate_connection_events_total')!.get();
  assert.deepEqual(
    metric.values.map((v) => [v.labels.result, v.value]),
    [['dropped', 4]],
  );
});

test('audit log: filtered by actor, action, target and result on the server, paged by cursor', async (t) => {
  const m = await startTestManager(t);
  const op = await m.user('op', 'operator');
  const viewer = await m.user('watcher', 'viewer');
  const root = m.token('root');
  for (let i = 0; i < 5; i++) {
    await m.call('PUT', `/api/fleet/gateways/g${i}/limit`, { token: op, body: { limit: 10 + i } });
  }
  await m.call('POST', '/api/v1/addTags', { token: op, body: { tag: 'db', id_list: ['a1', 'a2'] } });
  await m.call('PUT', '/api/fleet/gateways/g9/limit', { token: viewer, body: { limit: 0 } }); // refused
  const list = async (q: string) => {
    const r = await m.call('GET', `/api/fleet/audit?${q}`, { token: root });
    assert.equal(r.status, 200, r.text);
    return r.json as {
      items: Array<{ actor: string; action: string; target?: string; status: number }>;
      cursor?: string;
    };
  };
  const byViewer = await list('actor=user:watcher');
  assert.deepEqual(
    byViewer.items.map((e) => [e.action, e.status]),
    [['PUT /api/fleet/gateways/:id/limit', 403]],
  );
  const failed = await list('result=failed');
  assert.ok(failed.items.length > 0 && failed.items.every((e) => e.status >= 400));
  const ok = await list('action=gateways&result=ok');
  assert.deepEqual(
    ok.items.map((e) => e.target),
    ['gateway:g0', 'gateway:g1', 'gateway:g2', 'gateway:g3', 'gateway:g4'],
  );
  assert.deepEqual(
    (await list('target=a2')).items.map((e) => e.action),
    ['POST /api/v1/addTags'],
    'an agent ID among the entry’s agents',
  );
  assert.deepEqual(
    (await list('target=g3')).items.map((e) => e.target),
    ['gateway:g3'],
  );
  // Paging a filtered list: pages of 2 over the five matches, no overlap, no gap.
  const seen: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await list(`action=gateways&result=ok&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    seen.push(...page.items.map((e) => String(e.target)));
    cursor = page.cursor;
    pages++;
  } while (cursor && pages < 10);
  assert.deepEqual(seen, ['gateway:g0', 'gateway:g1', 'gateway:g2', 'gateway:g3', 'gateway:g4']);
  assert.equal(pages, 3);
  const bad = await m.call('GET', '/api/fleet/audit?result=maybe', { token: root });
  assert.equal(bad.status, 400);
  assert.match(bad.json.message, /result must be ok or failed/);
});
