/**
 * `fleetgate gateway --processes 2` as users run it: two gateway processes share the agent port
 * (SO_REUSEPORT, Node >= 22.12), the kernel spreads agents over both, each one's records reach
 * Kafka (its own pipeline: the `fleetgate-gw` header names its pid), each is a gateway of its own
 * in discovery (one shared agent address, a control API each) and in agent status (an agent's
 * item names the process holding it and its control API, where the manager sends its commands),
 * a child killed with -9 is restarted and serves again, and SIGTERM to the supervisor drains both. The
 * spools an earlier run left behind — p3 of `--processes 4`, the single process's own — are adopted
 * (p3 by p1, 3 mod 2; the single process's by p0): their records reach Kafka in order and p3's
 * directory is removed once drained. On a runtime without reusePort (Node 20) the flag is refused
 * with one line and exit 2.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createRegistryStore } from '../../discovery/registry-store.js';
import { startDiscovery } from '../../discovery/service.js';
import { GATEWAY_NODE_FLAGS } from '../../gateway/process/node-flags.js';
import { reusePortProblem } from '../../gateway/process/process-slot.js';
import { connectAgent, openTransfer, type TransferStream } from '../../loadtest/agent/raw-agent.js';
import { getAgentItem } from '../../manager/store/agents.js';
import { readGatewayAggregates } from '../../manager/store/fleet.js';
import { createManagerStore } from '../../manager/store/handle.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { startTestDynamo, storeGatewayEnv } from '../helpers/dynalite.js';
import { CLI_ENTRY, ROOT, startFleetgateProcess, tempDir, waitFor } from '../helpers/gateway.js';
import { BROKER, consumeAll, createTopic, kafkaReady } from '../helpers/kafka.js';
import { seqsOf, writeSpoolRecords } from '../helpers/spool.js';

const noReusePort = reusePortProblem();

test('without reusePort (Node < 22.12) --processes 2 is refused with one line naming the Node version, exit 2', {
  skip: noReusePort === undefined ? `Node ${process.versions.node} has reusePort: nothing to refuse` : false,
}, (t) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI_ENTRY, 'gateway', '--processes', '2'], {
    cwd: ROOT,
    env: {
      ...process.env,
      FLEETGATE_DATA_DIR: tempDir(t),
      FLEETGATE_GRPC_PORT: '0',
      FLEETGATE_HTTP_PORT: '0',
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /--processes 2: several gateway processes need Node\.js >= 22\.12/);
  assert.match(r.stderr, new RegExp(`this is ${process.versions.node.replaceAll('.', '\\.')}`));
});

interface Child {
  pid: number;
  controlPort: number;
}

/** `process p<i>  pid N, control API … on http://127.0.0.1:PORT` lines of the supervisor's banner. */
function bannerChildren(output: string): Child[] {
  return [...output.matchAll(/process p(\d)\s+pid (\d+), control API.*?http:\/\/127\.0\.0\.1:(\d+)/g)].map(
    (m) => ({ pid: Number(m[2]), controlPort: Number(m[3]) }),
  );
}

/** A metric without labels on this process's control API's /metrics. */
async function metricOn(c: Child, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${c.controlPort}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
}

/** Agents this process holds (Elkeid's gauge). */
const agentsOn = (c: Child) => metricOn(c, 'elkeid_ac_grpc_conn_count');

/** Records left by an earlier run: in the single process's spool, and in p3's of `--processes 4`. */
const ORPHANS = { root: { gw: 'old-host/1-single', records: 60 }, p3: { gw: 'old-host/2-p3', records: 90 } };

test('fleetgate gateway --processes 2: agents on both processes reach Kafka, a killed one is restarted, SIGTERM drains both', {
  skip: noReusePort ?? false,
  timeout: 120_000,
}, async (t) => {
  await kafkaReady();
  const topic = await createTopic(t, 2);
  // A store (agent status) and a discovery node the processes register with.
  const db = await startTestDynamo();
  t.after(() => db.close());
  const registry = createRegistryStore({ client: db.client, tablePrefix: db.prefix });
  const [ak, sk] = ['mpgatewayak', 'mpgatewaysecretkey01'];
  const sd = await startDiscovery({
    host: '127.0.0.1',
    port: 0,
    store: registry,
    aksk: [[ak, sk]],
    logger: silentLogger(),
    registry: new Registry(),
    cache: { freshMs: 0, maxAgeMs: 0, retryMs: 0 },
  });
  t.after(() => sd.close());
  const gw = await startFleetgateProcess(
    t,
    'gateway',
    {
      FLEETGATE_KAFKA_BROKERS: BROKER,
      FLEETGATE_KAFKA_TOPIC: topic,
      FLEETGATE_LOG_LEVEL: 'info',
      ...storeGatewayEnv(db),
      FLEETGATE_SD_ADDRS: `127.0.0.1:${sd.port}`,
      FLEETGATE_AKSK: `${ak}:${sk}`,
    },
    {
      args: ['--processes', '2'],
      readyMs: 60_000,
      ready: (out) => bannerChildren(out).length === 2,
      prepare: async (dataDir) => {
        const { root, p3 } = ORPHANS;
        await writeSpoolRecords(path.join(dataDir, 'spool'), root.gw, 'orphan-root', root.records);
        await writeSpoolRecords(path.join(dataDir, 'spool', 'p3'), p3.gw, 'orphan-p3', p3.records);
      },
    },
  );
  const [p0, p1] = bannerChildren(gw.output()) as [Child, Child];
  assert.notEqual(p0.pid, p1.pid);
  // The supervisor was started without the gateway's V8 flags; its children have them.
  for (const c of [p0, p1]) {
    const argv = readFileSync(`/proc/${c.pid}/cmdline`, 'utf8').split('\0');
    for (const f of GATEWAY_NODE_FLAGS) assert.ok(argv.includes(f), `process ${c.pid}: ${argv.join(' ')}`);
  }
  const streams: Array<{ s: TransferStream; ended: boolean }> = [];
  let n = 0;
  /** Connects agents in groups of 6 (each sends one record) until `until` holds of the processes. */
  async function connectUntil(children: Child[], until: (counts: number[]) => boolean): Promise<void> {
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 6; i++) {
        const session = await connectAgent({ host: '127.0.0.1', port: gw.port }, gw.tls);
        t.after(() => session.destroy());
        const s = openTransfer(session);
        const entry = { s, ended: false };
        void s.status.then(() => {
          entry.ended = true;
        });
        streams.push(entry);
        s.send({ AgentID: `mp-${++n}`, Data: [{ DataType: 1, Timestamp: 1, Body: Buffer.from(`r${n}`) }] });
      }
      // The gauge counts an agent once its first message is read: a few polls.
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline) {
        if (until(await Promise.all(children.map(agentsOn)))) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.fail('the kernel never put an agent on every process');
  }
  await connectUntil([p0, p1], ([a = 0, b = 0]) => a > 0 && b > 0);
  const sent = n;

  // Every record reaches Kafka, through both processes' own pipelines; so do the adopted ones.
  const adopted = ORPHANS.root.records + ORPHANS.p3.records;
  const all = await consumeAll(topic, sent + adopted, 30_000);
  for (const { gw: gwId, records: count } of Object.values(ORPHANS)) {
    const seqs = [...new Set(seqsOf(all, gwId))];
    assert.deepEqual(
      seqs,
      Array.from({ length: count }, (_, i) => i + 1),
      `${gwId}: all, in order`,
    );
  }
  // Counted once acked, just after Kafka took them.
  for (const [c, count] of [
    [p1, ORPHANS.p3.records],
    [p0, ORPHANS.root.records],
  ] as const) {
    let shipped = 0;
    for (let i = 0; i < 100 && shipped < count; i++) {
      shipped = await metricOn(c, 'fleetgate_spool_adopted_records_total');
      if (shipped < count) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(shipped, count);
  }
  await waitFor(() => !existsSync(path.join(gw.dataDir, 'spool', 'p3')), 10_000, 'p3 removed once drained');
  assert.match(gw.output(), /"dir":"[^"]*\/spool\/p3","records":90,"bytes":\d+,"msg":"adopting the spool/);
  const records = all.filter((r) => r.key.startsWith('mp-'));
  assert.deepEqual(
    records.map((r) => r.key).sort(),
    Array.from({ length: sent }, (_, i) => `mp-${i + 1}`).sort(),
  );
  const producers = new Set(records.map((r) => /\/(\d+)-/.exec(r.headers['fleetgate-gw'] ?? '')?.[1]));
  assert.deepEqual([...producers].sort(), [String(p0.pid), String(p1.pid)].sort());

  // Discovery: the shared agent address once, a control API per process.
  const addresses = async (name: string) =>
    (await registry.list(name)).map((i) => `${i.ip}:${i.port}`).sort();
  const controls = [p0, p1].map((c) => `127.0.0.1:${c.controlPort}`).sort();
  for (let i = 0; (await addresses('hids_svr_http')).length < 2 && i < 100; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(await addresses('hids_svr_grpc'), [`127.0.0.1:${gw.port}`]);
  assert.deepEqual(await addresses('hids_svr_http'), controls);
  // Agent status: each agent's item names the process holding it (host:port/p<i>), whose published
  // aggregate gives its own control API: where the manager sends the agent's commands.
  const store = createManagerStore(db.client, db.prefix);
  const id = (i: number) => `127.0.0.1:${gw.port}/p${i}`;
  let gateways = await readGatewayAggregates(store, Date.now());
  for (let i = 0; !(gateways.has(id(0)) && gateways.has(id(1))) && i < 150; i++) {
    await new Promise((r) => setTimeout(r, 100));
    gateways = await readGatewayAggregates(store, Date.now());
  }
  assert.equal(gateways.get(id(0))?.controlAddr, `127.0.0.1:${p0.controlPort}`);
  assert.equal(gateways.get(id(1))?.controlAddr, `127.0.0.1:${p1.controlPort}`);
  const holders = new Set<string>();
  for (let i = 1; i <= sent; i++) {
    let item = await getAgentItem(store, `mp-${i}`);
    for (let tries = 0; item?.gateway === undefined && tries < 100; tries++) {
      await new Promise((r) => setTimeout(r, 100));
      item = await getAgentItem(store, `mp-${i}`);
    }
    holders.add(String(item?.gateway));
  }
  assert.deepEqual([...holders].sort(), [id(0), id(1)]);

  // kill -9 p1: the supervisor restarts it, and the new p1 takes agents.
  process.kill(p1.pid, 'SIGKILL');
  const restarted = /"childPid":(\d+),"controlPort":(\d+),"msg":"gateway process restarted"/;
  await waitFor(() => restarted.test(gw.output()), 60_000, 'p1 restarted');
  const [, pid, port] = restarted.exec(gw.output())!;
  const p1b = { pid: Number(pid), controlPort: Number(port) };
  assert.equal((await fetch(`http://127.0.0.1:${p1b.controlPort}/readyz`)).status, 200);
  await connectUntil([p1b], ([b = 0]) => b > 0);

  // SIGTERM to the supervisor: each process drains (its agents told UNAVAILABLE), all exit 0.
  const live = streams.filter((x) => !x.ended);
  const exit = new Promise<number | null>((resolve) => gw.child.once('exit', (code) => resolve(code)));
  gw.child.kill('SIGTERM');
  const statuses = await Promise.all(live.map((x) => x.s.status));
  assert.deepEqual(new Set(statuses.map((s) => s.code)), new Set([14]));
  assert.equal(await exit, 0, gw.output());
  for (const c of [p0, p1b]) {
    assert.match(gw.output(), new RegExp(`"pid":${c.pid},"component":"gateway".*"msg":"drained"`));
    assert.throws(() => process.kill(c.pid, 0), { code: 'ESRCH' }, `process ${c.pid} exited`);
  }
});
