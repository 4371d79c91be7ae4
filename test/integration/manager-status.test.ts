/**
 * Agent status end to end: real gateways (mTLS, gRPC), agents over the wire (raw agents and the
 * simulator), each gateway's HeartbeatWriter writing the store, the manager answering. Checks the
 * transitions (running, abnormal, offline on disconnect, offline on silence, an agent moving to
 * another gateway), statistics from the gateways' aggregates, the config pushed at the first
 * heartbeat from the store, and that heartbeats are throttled: one write per agent per refresh
 * period in steady state (periods shortened here; docs/manager.md has the real numbers).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { encodeItem } from '../../gateway/agent/item.js';
import { type ProcessSlot, slotGatewayId } from '../../gateway/process/process-slot.js';
import { connectAgent, openTransfer, type TransferStream } from '../../loadtest/agent/raw-agent.js';
import { runFleet } from '../../loadtest/sim/fleet.js';
import { startTestGateway, type TestGateway, tempDir, waitFor } from '../helpers/gateway.js';
import { startGoAgent } from '../helpers/goagent.js';
import { startTestManager, type TestManager } from '../helpers/manager-harness.js';

const FAST = {
  sweepMs: 50,
  flushMs: 50,
  refreshMs: 1500,
  refreshJitterMs: 0,
  staleAfterMs: 1200,
  aggregateMs: 300,
};

async function gatewayWithWriter(
  t: import('node:test').TestContext,
  m: TestManager,
  name: string,
  overrides: Partial<typeof FAST> = {},
  /** As one of several gateway processes sharing the agent port (its id gets `/p<i>`). */
  slot?: ProcessSlot,
) {
  const g = await startTestGateway(t, { configSource: m.role.configSource });
  const id = slotGatewayId(`127.0.0.1:${g.gateway.grpcPort}`, slot);
  const writer = m.role.heartbeatWriter({
    sessions: g.gateway.sessions,
    gatewayId: id,
    controlAddr: `127.0.0.1:${name}`,
    ...FAST,
    ...overrides,
  });
  writer.start();
  m.defer(() => writer.close());
  return { g, writer, id };
}

interface Agent {
  stream: TransferStream;
  heartbeat(fields?: Record<string, string>): void;
  close(): void;
}

async function agent(g: TestGateway, id: string): Promise<Agent> {
  const session = await connectAgent(g.address, g.tls);
  const stream = openTransfer(session);
  const heartbeat = (fields: Record<string, string> = {}) =>
    stream.send({
      AgentID: id,
      Hostname: `host-${id}`,
      Version: '1.9.1.4',
      IntranetIPv4: ['10.1.0.1'],
      Data: [
        {
          DataType: 1000,
          Timestamp: Math.floor(Date.now() / 1000),
          Body: encodeItem({
            platform: 'ubuntu',
            kernel_version: '6.8.0',
            arch: 'x86_64',
            state: 'running',
            ...fields,
          }),
        },
      ],
    });
  heartbeat();
  return {
    stream,
    heartbeat,
    close() {
      stream.stream.close();
      session.close();
    },
  };
}

async function statusOf(
  m: TestManager,
  token: string,
  id: string,
): Promise<{ status: string; gateway: string }> {
  const r = await m.call('GET', `/api/fleet/agents/${id}`, { token });
  return r.status === 200
    ? { status: r.json.status, gateway: r.json.fleet_gateway }
    : { status: 'unknown', gateway: '' };
}

async function until(m: TestManager, token: string, id: string, want: string, ms = 5000): Promise<number> {
  const started = Date.now();
  for (;;) {
    const s = await statusOf(m, token, id);
    if (s.status === want) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`${id}: status ${s.status}, wanted ${want}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('running → abnormal → running → offline on disconnect; silence → offline; moving gateways', async (t) => {
  const m = await startTestManager(t);
  const v = await m.user('vi', 'viewer');
  const a = await gatewayWithWriter(t, m, '1');
  const b = await gatewayWithWriter(t, m, '2');

  const one = await agent(a.g, 'agent-1');
  await until(m, v, 'agent-1', 'running');
  one.heartbeat({ state: 'abnormal', state_detail: 'driver not loaded' });
  assert.ok((await until(m, v, 'agent-1', 'abnormal')) < 1000);
  one.heartbeat();
  await until(m, v, 'agent-1', 'running');
  one.close();
  assert.ok((await until(m, v, 'agent-1', 'offline')) < 1000, 'disconnect written within a sweep');

  // Connected but silent (no heartbeat for staleAfterMs): offline; a heartbeat brings it back.
  const quiet = await agent(a.g, 'agent-2');
  await until(m, v, 'agent-2', 'running');
  const silentFor = await until(m, v, 'agent-2', 'offline', 4000);
  assert.ok(silentFor >= 800, `offline only after the silence threshold (${silentFor} ms)`);
  quiet.heartbeat();
  await until(m, v, 'agent-2', 'running');

  // An agent moves from gateway A to gateway B: A's disconnect does not mark it offline.
  const moving = await agent(a.g, 'agent-3');
  await until(m, v, 'agent-3', 'running');
  const again = await agent(b.g, 'agent-3');
  await waitFor(() => b.g.gateway.sessions.get('agent-3') !== undefined, 3000, 'agent-3 on B');
  moving.close();
  await new Promise((r) => setTimeout(r, 400));
  assert.deepEqual(await statusOf(m, v, 'agent-3'), { status: 'running', gateway: b.id });
  again.close();
  quiet.close();
});

test('the config in the store is pushed at the first heartbeat; statistics come from the aggregates', async (t) => {
  const m = await startTestManager(t);
  const op = await m.user('op', 'operator');
  const set = await m.call('POST', '/api/v1/agent/updateDefaultConfig', {
    token: op,
    body: {
      type: 'agent_config',
      config: [
        {
          name: 'collector',
          version: '1.0.0.0',
          sha256: 'a'.repeat(64),
          download_url: ['https://dl.example/c.tar.gz'],
          type: 'tar.gz',
        },
      ],
    },
  });
  assert.equal(set.json.code, 0);
  // The simulator heartbeats once a minute, as Elkeid agents do: keep the silence threshold above the run.
  const a = await gatewayWithWriter(t, m, '1', { staleAfterMs: 30_000 });
  const b = await gatewayWithWriter(t, m, '2', { staleAfterMs: 30_000 });
  const first = await agent(a.g, 'cfg-agent');
  await waitFor(() => first.stream.commands.length > 0, 5000, 'config command');
  assert.deepEqual(
    first.stream.commands[0]!.Config.map((c) => [c.Name, c.Version, c.DownloadURL?.[0]]),
    [['collector', '1.0.0.0', 'https://dl.example/c.tar.gz']],
  );
  await until(m, op, 'cfg-agent', 'running');
  first.close();

  // 40 simulated agents over mTLS, 20 per gateway.
  const pkiDir = tempDir(t, 'fg-sim-pki-');
  mkdirSync(pkiDir, { recursive: true });
  writeFileSync(path.join(pkiDir, 'ca.crt'), a.g.pki.ca.cert);
  writeFileSync(path.join(pkiDir, 'client.crt'), a.g.pki.fleet.cert);
  writeFileSync(path.join(pkiDir, 'client.key'), a.g.pki.fleet.key);
  // The agents run until the statistics below are checked (`stop`); durationS only bounds them.
  const scenario = {
    name: 'manager',
    description: 'status',
    durationS: 60,
    rampS: 0,
    eventsPerAgentPerS: 0,
    reconnectDelayMs: 5000,
  };
  const stopFleets = new AbortController();
  const runs = [a, b].map((x) =>
    runFleet({
      agents: 20,
      scenario,
      pkiDir,
      gateway: x.g.address,
      sourceAddresses: 1,
      stop: stopFleets.signal,
    }),
  );
  await waitFor(
    () => a.g.gateway.sessions.size === 20 && b.g.gateway.sessions.size === 20,
    8000,
    '40 agents',
  );
  const readStats = async () => (await m.call('GET', '/api/fleet/stats', { token: op })).json;
  const statsWhen = async (ok: (s: Record<string, number>) => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    let s = await readStats();
    while (!ok(s) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      s = await readStats();
    }
    return s;
  };
  // Online comes from the aggregates (every 300 ms here); the total from the agents counter,
  // incremented at each new agent's first write.
  let stats = await statsWhen((s) => s.online === 40 && s.total === 41, 5000);
  assert.equal(stats.online, 40, JSON.stringify(stats));
  assert.equal(stats.total, 41, 'every agent ever seen, cfg-agent included');
  assert.equal(stats.offline, 1);
  assert.equal(stats.gateways[a.id].connected, 20);
  assert.equal(stats.gateways[b.id].connected, 20);
  assert.deepEqual(stats.by_platform, { debian: 40 });
  stopFleets.abort();
  const snapshots = await Promise.all(runs);
  assert.equal(
    snapshots.reduce((n, s) => n + s.configsApplied, 0),
    40,
    'each simulated agent got the config',
  );
  // The simulator stopped its agents: all offline within a sweep plus an aggregate.
  stats = await statsWhen((s) => s.online === 0, 4000);
  assert.deepEqual([stats.online, stats.offline], [0, 41]);
});

test('heartbeats are throttled: one write per agent per refresh period in steady state', async (t) => {
  const m = await startTestManager(t);
  const a = await gatewayWithWriter(t, m, '1');
  // Connected together, so their first writes share few batches (how few depends on timing).
  const agents = await Promise.all(Array.from({ length: 10 }, (_, i) => agent(a.g, `hb-${i}`)));
  await waitFor(() => a.writer.stats().writes.put >= 10, 3000, 'first heartbeats written');
  await a.writer.settle();
  const before = a.writer.stats().writes;
  const firstBatches = a.writer.stats().batches;
  // 3 s of heartbeats every 100 ms (Elkeid sends one a minute): 30 per agent, nothing changing.
  const started = Date.now();
  while (Date.now() - started < 3000) {
    for (const x of agents) x.heartbeat();
    await new Promise((r) => setTimeout(r, 100));
  }
  await a.writer.settle();
  const after = a.writer.stats().writes;
  const puts = after.put - before.put;
  // refreshMs 1500 over 3 s: at most 2 refreshes per agent (+1 for a period boundary).
  assert.ok(puts <= 10 * 3, `${puts} item writes for 300 heartbeats`);
  assert.ok(puts >= 10, `each agent refreshed at least once (${puts})`);
  assert.equal(after.connect - before.connect, 0);
  assert.equal(after.stale - before.stale, 0);
  // Agents written in one batch are due together, so each first batch comes back as one refresh
  // batch per period (2 in 3 s, +1 at a boundary): the refreshes stay batched, however the
  // connects happened to group.
  const refreshBatches = a.writer.stats().batches - firstBatches;
  assert.ok(firstBatches >= 1 && firstBatches <= 10, `${firstBatches} batches for the first writes`);
  assert.ok(
    refreshBatches <= 3 * firstBatches,
    `${refreshBatches} refresh batches for ${firstBatches} first batches`,
  );
  for (const x of agents) x.close();
});

test("a stock agent's heartbeat field `gateway` (its default route) survives; ours is fleet_gateway", async (t) => {
  const m = await startTestManager(t);
  const v = await m.user('vi', 'viewer');
  // The gateway is process p1 of two sharing its port: Elkeid's source_ip/source_port are still
  // the agent address, without the process suffix.
  const a = await gatewayWithWriter(t, m, '1', {}, { index: 1, count: 2 });
  assert.match(a.id, /\/p1$/);
  startGoAgent(t, {
    address: a.g.address,
    tls: a.g.tls,
    id: 'go-route-1',
    args: ['-heartbeat-fields', 'gateway=192.168.7.1'],
  });
  await until(m, v, 'go-route-1', 'running', 15_000);
  // The heartbeat detail lands with the agent's full item, after its connect write.
  let doc: Record<string, unknown> = {};
  const deadline = Date.now() + 10_000;
  while (doc.kernel_version === undefined) {
    assert.ok(Date.now() < deadline, `heartbeat in the document: ${JSON.stringify(doc)}`);
    await new Promise((r) => setTimeout(r, 100));
    doc = (await m.call('GET', '/api/fleet/agents/go-route-1', { token: v })).json;
  }
  assert.equal(doc.gateway, '192.168.7.1');
  assert.equal(doc.fleet_gateway, a.id);
  assert.equal(doc.source_ip, '127.0.0.1');
  assert.equal(doc.source_port, a.g.gateway.grpcPort);
  // Filters on the agent's field find it (Elkeid's filter JSON on agent_heartbeat).
  const list = await m.call('POST', '/api/v1/agent/getStatus/filter', {
    token: v,
    body: { gateway: '192.168.7.1' },
  });
  assert.equal(list.json.code, 0, list.text);
  assert.ok(list.text.includes('go-route-1'), list.text);
});
