/**
 * Load control end to end: three real gateways with their
 * HeartbeatWriter, LoadShedder and registrar, one discovery, the manager API, and 150 simulated
 * agents that find gateways through discovery. The agents are skewed onto one gateway; a lowered
 * limit (or a rebalance) moves the excess to the others: every agent ends connected, none is
 * lost, and no more streams are ended in any second than the configured rate.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { Registry } from 'prom-client';
import { type Registrar, startRegistrar } from '../../discovery/registrar.js';
import { createRegistryStore, type RegistryStore } from '../../discovery/registry-store.js';
import { startDiscovery } from '../../discovery/service.js';
import { createLoadShedder, type LoadShedder } from '../../gateway/agent/load-shedder.js';
import { gatewayRegistrations } from '../../gateway/process/gateway-registrations.js';
import { SCENARIOS } from '../../loadtest/sim/scenario.js';
import { newStats, SimAgent, type SimStats } from '../../loadtest/sim/sim-agent.js';
import { createHeartbeatWriter, type HeartbeatWriter } from '../../manager/agent-status-writer.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { AK, SK, startTestManager, type TestManager } from '../helpers/manager-harness.js';

const AGENTS = 150;
const SHED_RATE = 20;

interface Node {
  gw: TestGateway;
  id: string;
  writer: HeartbeatWriter;
  shedder: LoadShedder;
  registrar: Registrar | undefined;
  shedAt: number[];
  register(): void;
}

interface Cluster {
  m: TestManager;
  registry: RegistryStore;
  sdUrl: string;
  nodes: Node[];
  agents: SimAgent[];
  stats: SimStats;
  op: string;
}

async function startCluster(t: TestContext): Promise<Cluster> {
  const m = await startTestManager(t);
  const { db } = m;
  const registry = createRegistryStore({ client: db.client, tablePrefix: db.prefix });
  const sd = await startDiscovery({
    host: '127.0.0.1',
    port: 0,
    store: registry,
    aksk: [[AK, SK]],
    logger: silentLogger(),
    registry: new Registry(),
    cache: { freshMs: 200, maxAgeMs: 1000 },
  });
  m.defer(() => sd.close());
  const nodes: Node[] = [];
  let pkiDir: string | undefined;
  for (let i = 0; i < 3; i++) {
    const gw = await startTestGateway(t, pkiDir ? { config: { pkiDir } } : {});
    pkiDir ??= gw.pkiDir;
    const id = `127.0.0.1:${gw.address.port}`;
    const writer = createHeartbeatWriter({
      client: db.client,
      tablePrefix: db.prefix,
      gatewayId: id,
      sessions: gw.gateway.sessions,
      logger: silentLogger(),
      aggregateMs: 1000,
      limitMs: 300,
      loadTags: false,
    });
    writer.start();
    const node: Node = {
      gw,
      id,
      writer,
      registrar: undefined,
      shedAt: [],
      shedder: undefined as unknown as LoadShedder,
      register() {
        node.registrar ??= startRegistrar({
          target: { store: registry },
          logger: silentLogger(),
          intervalMs: 500,
          registrations: () =>
            gatewayRegistrations({
              advertiseHost: '127.0.0.1',
              grpcPort: gw.address.port,
              httpPort: gw.address.port + 1,
              load: gw.gateway.sessions.size,
              limit: gw.gateway.sessions.effectiveLimit,
            }),
        });
      },
    };
    node.shedder = createLoadShedder({
      sessions: gw.gateway.sessions,
      desiredLimit: () => writer.desiredLimit(),
      ratePerSecond: SHED_RATE,
      order: 'oldest',
      logger: silentLogger(),
      onLimitChange: () => void node.registrar?.registerNow(),
      onShed: (_id, at) => node.shedAt.push(at),
    });
    node.shedder.start();
    // Stopped before the gateway shuts down (t.after of startTestGateway runs later).
    m.defer(async () => {
      node.shedder.stop();
      await node.registrar?.stop();
      await writer.close();
    });
    nodes.push(node);
  }
  const stats = newStats();
  const cluster: Cluster = {
    m,
    registry,
    sdUrl: `http://127.0.0.1:${sd.port}`,
    nodes,
    agents: [],
    stats,
    op: await m.user('op', 'operator'),
  };
  m.defer(() => {
    for (const a of cluster.agents) a.stop();
  });
  return cluster;
}

const sizes = (c: Cluster) => c.nodes.map((n) => n.gw.gateway.sessions.size);
const connectedIds = (c: Cluster) => {
  const ids = new Set<string>();
  for (const n of c.nodes) for (const id of n.gw.gateway.sessions.ids()) ids.add(id);
  return ids;
};

/** Only gateway 0 is in discovery while the agents connect: all of them land there. */
async function skewOntoFirst(c: Cluster): Promise<void> {
  c.nodes[0]!.register();
  await c.nodes[0]!.registrar!.registerNow();
  const scenario = { ...SCENARIOS.steady!, eventsPerAgentPerS: 0, reconnectDelayMs: 1000 };
  const tls = c.nodes[0]!.gw.tls;
  for (let i = 0; i < AGENTS; i++) {
    const a = new SimAgent(`lc-agent-${i}`, i, { tls, discovery: c.sdUrl, scenario, stats: c.stats });
    c.agents.push(a);
    a.start();
  }
  await waitFor(() => c.nodes[0]!.gw.gateway.sessions.size === AGENTS, 60_000, 'all agents on gateway 0');
  for (const n of c.nodes.slice(1)) n.register();
  await renew(c);
  assert.deepEqual(sizes(c), [AGENTS, 0, 0]);
}

/** Registry weights = the counts now (a round already in flight may carry older ones: two rounds). */
async function renew(c: Cluster): Promise<void> {
  for (let i = 0; i < 2; i++) await Promise.all(c.nodes.map((n) => n.registrar?.registerNow()));
}

/** At most `rate` closes in any one-second window. */
function maxPerSecond(times: readonly number[]): number {
  let max = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while (times[hi]! - times[lo]! >= 1000) lo++;
    max = Math.max(max, hi - lo + 1);
  }
  return max;
}

async function settled(c: Cluster, atMost: number, what: string): Promise<void> {
  await waitFor(
    () =>
      c.nodes[0]!.gw.gateway.sessions.size <= atMost &&
      connectedIds(c).size === AGENTS &&
      c.stats.connected === AGENTS,
    90_000,
    `${what}: sizes ${JSON.stringify(sizes(c))}, agents connected ${c.stats.connected}`,
  );
}

test('a lowered limit moves the excess to the other gateways: none lost, no storm', async (t) => {
  const c = await startCluster(t);
  await skewOntoFirst(c);
  const a = c.nodes[0]!;
  const put = await c.m.call('PUT', `/api/fleet/gateways/${a.id}/limit`, {
    token: c.op,
    body: { limit: 50 },
  });
  assert.equal(put.status, 200, put.text);
  assert.equal(put.json.enforced, true);
  await settled(c, 50, 'excess moved');
  const [first, second, third] = sizes(c);
  assert.equal(first, 50, 'the limited gateway keeps exactly its limit');
  assert.equal(first! + second! + third!, AGENTS);
  assert.ok(second! > 0 && third! > 0, `both others took agents: ${sizes(c)}`);
  assert.equal(a.shedder.shed, AGENTS - 50, 'each excess agent was closed once');
  assert.ok(
    maxPerSecond(a.shedAt) <= SHED_RATE,
    `closes per second stayed within the rate: ${maxPerSecond(a.shedAt)}`,
  );
  // Ended with OK and reconnected through discovery: no refusals, no errors at the agents.
  assert.deepEqual(Object.fromEntries(c.stats.errors), {});
  // The others were never shed from.
  assert.deepEqual(
    c.nodes.slice(1).map((n) => n.shedder.shed),
    [0, 0],
  );
  // The limit is listed with the gateway.
  const gws = (await c.m.call('GET', '/api/fleet/gateways', { token: c.op })).json.gateways as Array<{
    id: string;
    desired_limit: number | null;
  }>;
  assert.equal(gws.find((g) => g.id === a.id)?.desired_limit, 50);
});

test('limit 0 drains a gateway: it leaves discovery at once and every agent moves', async (t) => {
  const c = await startCluster(t);
  await skewOntoFirst(c);
  const a = c.nodes[0]!;
  const listed = async () => {
    const r = await fetch(`${c.sdUrl}/registry/detail?name=hids_svr_grpc`);
    const body = (await r.json()) as { data: Array<{ port: number }> };
    return body.data.map((i) => i.port);
  };
  assert.ok((await listed()).includes(a.gw.address.port), 'listed before the drain');
  const put = await c.m.call('PUT', `/api/fleet/gateways/${a.id}/limit`, { token: c.op, body: { limit: 0 } });
  assert.equal(put.status, 200, put.text);
  // Evicted by the registrar's next round, not left to expire (TTL 15 s): within a few seconds.
  const deadline = Date.now() + 5_000;
  while ((await listed()).includes(a.gw.address.port)) {
    assert.ok(Date.now() < deadline, 'the drained gateway left discovery within 5 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  // The control API registration stays: the manager still reaches the agents not yet shed.
  const http = await c.registry.list('hids_svr_http');
  assert.ok(
    http.some((i) => i.port === a.gw.address.port + 1),
    'control API still registered',
  );
  await settled(c, 0, 'drained');
  assert.equal(a.gw.gateway.sessions.size, 0);
  assert.equal(a.shedder.shed, AGENTS, 'each agent was closed once');
  assert.ok(maxPerSecond(a.shedAt) <= SHED_RATE, `closes per second: ${maxPerSecond(a.shedAt)}`);
  assert.deepEqual(
    Object.fromEntries(c.stats.errors),
    {},
    'no agent was refused: discovery stopped sending them',
  );
});

test('rebalance evens a skewed cluster from the live registry, with an expiry', async (t) => {
  const c = await startCluster(t);
  await skewOntoFirst(c);
  const a = c.nodes[0]!;
  // Registry weights are the live counts: [150, 0, 0], mean 50, target ceil(50 × 1.1) = 55.
  const dry = await c.m.call('POST', '/api/fleet/gateways/rebalance', {
    token: c.op,
    body: { dry_run: true },
  });
  assert.equal(dry.status, 200, dry.text);
  assert.equal(dry.json.target, 55);
  assert.equal(dry.json.moved, AGENTS - 55);
  assert.equal(
    (await c.m.call('GET', `/api/fleet/gateways/${a.id}/limit`, { token: c.op })).json.limit,
    null,
    'a dry run writes nothing',
  );
  const before = Date.now();
  const r = await c.m.call('POST', '/api/fleet/gateways/rebalance', { token: c.op, body: {} });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(
    r.json.gateways.map((g: { id: string; limit: number | null }) => [g.id, g.limit]),
    c.nodes
      .map((n, i) => [n.id, i === 0 ? 55 : null])
      .sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
  );
  assert.ok(r.json.expires_at >= before + 600_000 - 1000 && r.json.expires_at <= Date.now() + 600_000);
  await settled(c, 55, 'rebalanced');
  assert.equal(sizes(c)[0], 55);
  assert.ok(maxPerSecond(a.shedAt) <= SHED_RATE);
  assert.deepEqual(Object.fromEntries(c.stats.errors), {});
  // Listed with its expiry; audited with the limits it set.
  const lim = (await c.m.call('GET', `/api/fleet/gateways/${a.id}/limit`, { token: c.op })).json;
  assert.deepEqual([lim.limit, lim.expires_at], [55, r.json.expires_at]);
  const audit = (await c.m.call('GET', '/api/fleet/audit', { token: c.m.token('root') })).json;
  const entry = (audit.items as Array<{ action: string; detail?: string }>).find(
    (e) => e.action.includes('rebalance') && e.detail?.includes('"dryRun":false'),
  );
  assert.ok(entry, `an audit entry for the rebalance: ${JSON.stringify(audit).slice(0, 400)}`);
  assert.match(entry.detail!, new RegExp(`${a.id}=55`));
  // A rebalanced cluster is left alone by the next one. Once in CI the registry showed the first
  // gateway at 56 against its limit of 55 just after the cluster had settled, with 150 in all;
  // the cause is not established (not reproduced locally). So the check waits for a settled
  // cluster and fresh registrations, asks again within a bound, and still fails if they stay
  // uneven.
  let again: { json: { moved: number } } | undefined;
  const deadline = Date.now() + 15_000;
  do {
    await settled(c, 55, 'still rebalanced');
    await renew(c);
    again = await c.m.call('POST', '/api/fleet/gateways/rebalance', { token: c.op, body: { dry_run: true } });
  } while (again.json.moved !== 0 && Date.now() < deadline);
  assert.equal(again.json.moved, 0, JSON.stringify(again.json));
});

test('rebalance input: bad slack or expiry refused; a lone or even cluster gets no limits', async (t) => {
  const m = await startTestManager(t);
  const op = await m.user('op', 'operator');
  const reg = createRegistryStore({ client: m.db.client, tablePrefix: m.db.prefix });
  for (const bad of [{ slack: -1 }, { slack: 'x' }, { expires_in_s: 0 }, { dry_run: 'yes' }]) {
    const r = await m.call('POST', '/api/fleet/gateways/rebalance', { token: op, body: bad });
    assert.equal(r.status, 400, JSON.stringify(bad));
  }
  await reg.register({ name: 'hids_svr_grpc', ip: '10.0.0.1', port: 6751, weight: 900 });
  const lone = await m.call('POST', '/api/fleet/gateways/rebalance', { token: op });
  assert.deepEqual([lone.status, lone.json.moved, lone.json.gateways[0].limit], [200, 0, null]);
  await reg.register({ name: 'hids_svr_grpc', ip: '10.0.0.2', port: 6751, weight: 880 });
  await reg.register({ name: 'hids_svr_grpc', ip: '10.0.0.3', port: 6751, weight: 20 });
  const r = await m.call('POST', '/api/fleet/gateways/rebalance', {
    token: op,
    body: { slack: 0.5, expires_in_s: 60 },
  });
  // mean 600, target 900: nobody is above it.
  assert.deepEqual([r.json.target, r.json.moved], [900, 0]);
  const tight = await m.call('POST', '/api/fleet/gateways/rebalance', { token: op, body: { slack: 0 } });
  assert.deepEqual(
    tight.json.gateways.map((g: { limit: number | null }) => g.limit),
    [600, 600, null],
  );
  assert.equal(tight.json.moved, 300 + 280);
});
