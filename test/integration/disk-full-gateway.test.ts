/**
 * A full disk under the real `fleetgate gateway` process: its data dir is a
 * small tmpfs, Kafka (a disposable broker) is down, numbered simulator agents stream, and the
 * disk is filled. The gateway must pause its agents (not end their streams), report not ready
 * with the cause, log and count it, resume by itself when space returns (Kafka still down), and,
 * the disk full again, survive Kafka coming back while it is (the ack path), resume by itself,
 * and in the end every record sent is in Kafka exactly once and in
 * order — with the same gateway process all along.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  ensureKafka,
  findFreePortPair,
  killKafka,
  startKafka,
  stopKafka,
} from '../../infra/local/kafka-control.mjs';
import { readAgentTls } from '../../loadtest/agent/raw-agent.js';
import { runFleet } from '../../loadtest/sim/fleet.js';
import { SCENARIOS } from '../../loadtest/sim/scenario.js';
import { verifyTopic } from '../../loadtest/sim/verify-kafka.js';
import { spawnFleetgate, tempDir } from '../helpers/gateway.js';
import { createTopic } from '../helpers/kafka.js';
import { fillDisk, mountTmpfs } from '../helpers/tmpfs.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function poll<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && ok(v)) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(v)})`);
    await sleep(200);
  }
}

function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

test('disk full with Kafka down: agents paused, not ready, nothing lost or doubled, the same process resumes', {
  timeout: 300_000,
}, async (t) => {
  const mount = mountTmpfs(t, 24 * 1024 * 1024);
  if (!mount) return;
  const port: number = await findFreePortPair();
  const instance = { port, stateDir: tempDir(t, 'fg-kafka-') };
  t.after(async () => {
    await stopKafka({ log: () => {} }, instance).catch(() => killKafka(instance).catch(() => {}));
  });
  await ensureKafka({ log: () => {} }, instance);
  const brokers = [`127.0.0.1:${port}`];
  const topic = await createTopic(t, 4, brokers);
  await killKafka(instance, 'SIGKILL');

  const gw = spawnFleetgate('gateway', mount, {
    FLEETGATE_KAFKA_BROKERS: brokers.join(','),
    FLEETGATE_KAFKA_TOPIC: topic,
  });
  t.after(() => gw.child.kill('SIGKILL'));
  const grpcPort = await gw.port;
  const pid = gw.child.pid;
  const control = Number(/control API\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(gw.output())![1]);
  const base = `http://127.0.0.1:${control}`;
  const readyz = async () => {
    const r = await fetch(`${base}/readyz`);
    return { status: r.status, body: (await r.json()) as { status: string; reasons?: string[] } };
  };
  const metrics = async () => (await fetch(`${base}/metrics`)).text();
  const pki = tempDir(t, 'fg-pki-');
  const tls = readAgentTls(path.join(mount, 'pki'));
  writeFileSync(path.join(pki, 'ca.crt'), tls.ca);
  writeFileSync(path.join(pki, 'client.crt'), tls.cert);
  writeFileSync(path.join(pki, 'client.key'), tls.key);

  const AGENTS = 8;
  const RECORDS = 5000;
  // The fleet runs until the test has seen the last resume and RECORDS records arrived (`stop`);
  // durationS only bounds a run that never gets there.
  const scenario = { ...SCENARIOS.steady!, durationS: 240, rampS: 0, eventsPerAgentPerS: 40 };
  const idSeed = `disk-full-${Date.now()}`;
  const stopFleet = new AbortController();
  const fleet = runFleet({
    agents: AGENTS,
    scenario,
    pkiDir: pki,
    gateway: { host: '127.0.0.1', port: grpcPort },
    sourceAddresses: 1,
    idSeed,
    stop: stopFleet.signal,
  });

  // Kafka down: records go to the spool. Then the disk fills.
  await poll(metrics, (m) => metric(m, 'fleetgate_ingest_spooling') === 1, 30_000, 'spooling');
  assert.equal((await readyz()).status, 200, 'ready while the spool takes records');
  const filler = fillDisk(mount);
  const blocked = await poll(readyz, (r) => r.status === 503, 20_000, 'not ready on ENOSPC');
  assert.match(blocked.body.reasons?.join(' ') ?? '', /spool write failing: .*ENOSPC/);
  const m1 = await metrics();
  assert.equal(metric(m1, 'fleetgate_spool_blocked'), 1);
  assert.ok(metric(m1, 'fleetgate_spool_disk_errors_total') > 0);
  // Paused, not ended: no stream got a status, every agent is still connected.
  await sleep(3000);
  const m2 = await metrics();
  assert.equal(metric(m2, 'elkeid_ac_grpc_conn_count'), AGENTS, 'every agent still connected');
  assert.equal(metric(m2, 'fleetgate_agent_connects_total'), AGENTS, 'no agent had to reconnect');
  assert.equal((await readyz()).status, 503, 'still not ready while the disk is full');

  // Space returns while Kafka is still down: the same process resumes by itself (the spool
  // takes records again), then the disk fills once more.
  const spooledBefore = metric(await metrics(), 'fleetgate_ingest_records_total');
  rmSync(filler);
  await poll(readyz, (r) => r.status === 200, 30_000, 'ready again once space returned');
  await poll(
    metrics,
    (m) =>
      metric(m, 'fleetgate_spool_blocked') === 0 &&
      metric(m, 'fleetgate_ingest_records_total') > spooledBefore,
    30_000,
    'spool writes resumed with Kafka still down',
  );
  const filler2 = fillDisk(mount);
  await poll(readyz, (r) => r.status === 503, 20_000, 'not ready on ENOSPC again');

  // Kafka comes back while the disk is still full: the spool ships, its ack cannot be written
  // at first, shipping frees the space, and the gateway resumes by itself.
  await startKafka(instance, { log: () => {} });
  await poll(readyz, (r) => r.status === 200, 90_000, 'ready again after Kafka freed the spool');
  rmSync(filler2);
  // Records keep flowing after the resume (every agent stays connected) until there are enough to
  // check; only then do the agents stop.
  await poll(
    metrics,
    (m) => metric(m, 'fleetgate_records_received_total') > RECORDS,
    120_000,
    `more than ${RECORDS} records received`,
  );
  stopFleet.abort();
  const stats = await fleet;
  assert.equal(gw.child.exitCode, null, 'the gateway never exited');
  assert.equal(gw.child.pid, pid);
  assert.equal(stats.connects, AGENTS, 'no agent stream was ended: each connected once');

  const v = await verifyTopic({ brokers, topic, run: idSeed, sent: stats.recordsSent, waitMs: 60_000 });
  t.diagnostic(
    `sent ${v.sent}, stored ${v.stored}, missing ${v.missing}, duplicated ${v.duplicated}, out of order ${v.outOfOrder}`,
  );
  assert.ok(v.sent > RECORDS, `records sent ${v.sent}`);
  assert.deepEqual(
    { missing: v.missing, duplicated: v.duplicated, outOfOrder: v.outOfOrder, distinct: v.distinct },
    { missing: 0, duplicated: 0, outOfOrder: 0, distinct: v.sent },
  );
  const out = gw.output();
  const errorLines = out.split('\n').filter((l) => l.includes('spool write failed'));
  assert.ok(errorLines.length >= 1, 'the failure is logged');
  assert.match(errorLines[0]!, /"level":50/, 'at error level');
  assert.match(errorLines[0]!, /ENOSPC/);
  assert.ok(
    errorLines.length <= 12,
    `logged once per interval, not per failure (${errorLines.length} lines)`,
  );
  assert.doesNotMatch(out, /unhandled|uncaught/i);
});
