/**
 * `fleetgate gateway --processes 2` as users run it: two gateway processes share the agent port
 * (SO_REUSEPORT, Node >= 22.12), the kernel spreads agents over both, each one's records reach
 * Kafka (its own pipeline: the `fleetgate-gw` header names its pid), a child killed with -9 is
 * restarted and serves again, and SIGTERM to the supervisor drains both. On a runtime without
 * reusePort (Node 20) the flag is refused with one line and exit 2.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { reusePortProblem } from '../../gateway/process/process-slot.js';
import { connectAgent, openTransfer, type TransferStream } from '../../loadtest/agent/raw-agent.js';
import { CLI_ENTRY, ROOT, startFleetgateProcess, tempDir, waitFor } from '../helpers/gateway.js';
import { BROKER, consumeAll, createTopic, kafkaReady } from '../helpers/kafka.js';

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

/** Agents this process holds (Elkeid's gauge on its control API's /metrics). */
async function agentsOn(c: Child): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${c.controlPort}/metrics`)).text();
  return Number(/^elkeid_ac_grpc_conn_count (\d+)/m.exec(text)?.[1] ?? 0);
}

test('fleetgate gateway --processes 2: agents on both processes reach Kafka, a killed one is restarted, SIGTERM drains both', {
  skip: noReusePort ?? false,
  timeout: 120_000,
}, async (t) => {
  await kafkaReady();
  const topic = await createTopic(t, 2);
  const gw = await startFleetgateProcess(
    t,
    'gateway',
    {
      FLEETGATE_KAFKA_BROKERS: BROKER,
      FLEETGATE_KAFKA_TOPIC: topic,
      FLEETGATE_WORKERS: '1',
      FLEETGATE_LOG_LEVEL: 'info',
    },
    { args: ['--processes', '2'], readyMs: 60_000, ready: (out) => bannerChildren(out).length === 2 },
  );
  const [p0, p1] = bannerChildren(gw.output()) as [Child, Child];
  assert.notEqual(p0.pid, p1.pid);
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

  // Every record reaches Kafka, through both processes' own pipelines.
  const records = await consumeAll(topic, sent, 30_000);
  assert.deepEqual(
    records.map((r) => r.key).sort(),
    Array.from({ length: sent }, (_, i) => `mp-${i + 1}`).sort(),
  );
  const producers = new Set(records.map((r) => /\/(\d+)-/.exec(r.headers['fleetgate-gw'] ?? '')?.[1]));
  assert.deepEqual([...producers].sort(), [String(p0.pid), String(p1.pid)].sort());

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
