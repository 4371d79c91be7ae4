// loadtest/k6/agents.js evaluated under Node with fakes of the k6 modules (test/helpers/k6-fakes.ts):
// k6 itself is AGPL and is not run here, so these tests check the script's own logic — checks
// that can fail, failures counted, the backoff, discovery, redial, the iteration's end, per-VU
// certificates — and the mergeable summary with its merge tool, run as a process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeAgentCertRange } from '../../loadtest/k6/agent-certs.js';
import { writePkiDir } from '../../platform/pki/certs.js';
import { K6World } from '../helpers/k6-fakes.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '../..');
const K6_DIR = path.join(root, 'loadtest/k6');
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const TRANSFER = 'grpc.Transfer/Transfer';

/** A world whose clock is node:test's mock clock at T0, with the real scenario file plus `test`. */
function world(t: TestContext, env: Record<string, string>, patch: Record<string, number> = {}): K6World {
  t.mock.timers.reset(); // a test may build a second world: its clock starts at T0 again
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: T0 });
  const w = new K6World();
  w.startTime = T0;
  const data = JSON.parse(readFileSync(path.join(K6_DIR, 'scenario.json'), 'utf8'));
  data.scenarios.test = {
    name: 'test',
    description: 'unit test',
    durationS: 120,
    rampS: 0,
    eventsPerAgentPerS: 2,
    reconnectDelayMs: 5000,
    ...patch,
  };
  w.files.set('./scenario.json', JSON.stringify(data));
  w.files.set('./pki/ca.crt', 'CA PEM');
  w.files.set('./pki/client.crt', 'FLEET CERT PEM');
  w.files.set('./pki/client.key', 'FLEET KEY PEM');
  w.env = { SCENARIO: 'test', AGENTS: '10', ...env };
  return w;
}

const registry = (entries: Array<{ ip: string; port: number }>) => ({
  status: 200,
  body: JSON.stringify({ msg: 'ok', data: entries.map((e) => ({ ...e, weight: 1 })) }),
});
/**
 * Advances the mock clock 1 ms at a time: Node 20's mock tick moves Date to the end of the whole
 * tick before running the timers due in it, so one long tick would show every timer the same time.
 */
function advance(t: TestContext, ms: number): void {
  for (let i = 0; i < ms; i++) t.mock.timers.tick(1);
}
const gaps = (times: number[]) => times.slice(1).map((x, i) => x - times[i]!);

test('options: one iteration per VU bounded by the scenario, thresholds that can fail and abort', async (t) => {
  const w = world(t, { AGENTS: '5000' }, { durationS: 600, rampS: 60 });
  const { options } = await w.initVu(0);
  assert.deepEqual(options.scenarios.agents, {
    executor: 'per-vu-iterations',
    vus: 5000,
    iterations: 1,
    maxDuration: '660s',
    gracefulStop: '30s',
  });
  assert.deepEqual(options.thresholds.fleetgate_dial_ok, [
    { threshold: 'rate>=0.5', abortOnFail: true, delayAbortEval: '1m' },
  ]);
  assert.deepEqual(options.thresholds.checks, ['rate>=0.99']);
  assert.deepEqual(options.thresholds.fleetgate_streams_held, ['rate>=0.99']);
  assert.deepEqual(options.thresholds['fleetgate_command_latency_bucket{le:250}'], ['count>=0']);
  w.env.MIN_CHECKS = '0.9';
  assert.deepEqual((await w.initVu(0)).options.thresholds.checks, ['rate>=0.9']);
  w.env.AGENTS = 'many';
  await assert.rejects(w.initVu(0), /AGENTS=many: want an integer ≥ 1/);
  w.env.AGENTS = '10';
  w.env.SCENARIO = 'nope';
  await assert.rejects(w.initVu(0), /SCENARIO=nope: want one of steady, ramp, .*test/);
});

test('a VU that cannot dial backs off ~5 s (jittered), counts every failure, and its checks fail', async (t) => {
  const w = world(t, { GATEWAY: '10.0.0.9:6751' });
  w.dialResult = () => new Error('context deadline exceeded');
  await w.runVu(1);
  advance(t, 60_000);
  const times = w.dials.map((d) => d.at - T0);
  assert.ok(times[0]! <= 1, 'the first dial at the start (a 0 ms timer runs 1 ms later here)');
  assert.ok(times.length >= 11 && times.length <= 13, `${times.length} dials in 60 s`);
  for (const g of gaps(times)) assert.ok(g >= 5000 && g <= 5500, `redial after ${g} ms`);
  assert.ok(new Set(gaps(times)).size > 1, 'the delays are jittered');
  assert.equal(w.sum('fleetgate_dial_failures', { reason: 'timeout' }), times.length);
  assert.equal(w.sum('fleetgate_dial_ok'), 0);
  assert.equal(w.samplesOf('fleetgate_dial_ok').length, times.length);
  assert.deepEqual([...new Set(w.checksNamed('gateway dial succeeded'))], [false]);
  assert.equal(w.streams.length, 0);
  advance(t, 60_000);
  // The end: the agent never held a stream, which its last check and the held rate say.
  assert.deepEqual(w.checksNamed('stream not lost before the scenario end'), [false]);
  assert.deepEqual(
    w.samplesOf('fleetgate_streams_held').map((s) => s.value),
    [0],
  );
  assert.equal(w.activeTimers.size, 0, 'nothing left running');
  assert.ok(
    w.dials.every((d) => d.at < T0 + 120_000),
    'no dial started after the end',
  );
});

test('discovery: the agent asks /registry/detail and dials the gateways in the order given', async (t) => {
  const w = world(t, { DISCOVERY: 'http://sd.internal:8088/' });
  w.httpResult = () =>
    registry([
      { ip: '10.0.0.1', port: 6751 },
      { ip: 'fd00::2', port: 6751 },
      { ip: '10.0.0.3', port: 6751 },
    ]);
  w.dialResult = (a) =>
    a === '10.0.0.3:6751' ? undefined : new Error('dial tcp: connect: connection refused');
  await w.runVu(1);
  advance(t, 1000);
  assert.deepEqual(
    w.httpGets.map((g) => g.url),
    ['http://sd.internal:8088/registry/detail?name=hids_svr_grpc&count=10'],
  );
  assert.deepEqual(
    w.dials.map((d) => d.address),
    ['10.0.0.1:6751', '[fd00::2]:6751', '10.0.0.3:6751'],
  );
  assert.deepEqual(w.checksNamed('discovery listed a gateway'), [true]);
  assert.deepEqual(w.checksNamed('gateway dial succeeded'), [false, false, true]);
  assert.equal(w.sum('fleetgate_dial_failures', { reason: 'refused' }), 2);
  assert.equal(w.streams.length, 1);
  assert.equal(w.streams[0]!.method, TRANSFER);
});

test('discovery failures are checked and counted by kind; the agent falls back to GATEWAY or waits', async (t) => {
  const cases: Array<[{ status: number; body: string }, string]> = [
    [{ status: 503, body: '{"msg":"busy"}' }, 'status_503'],
    [{ status: 200, body: '<html>' }, 'bad_json'],
    [
      { status: 200, body: '{"msg":"ok","data":[{"ip":"","port":6751},{"ip":"10.0.0.1","port":0}]}' },
      'empty',
    ],
    [{ status: 0, body: '' }, 'unreachable'],
  ];
  for (const [answer, reason] of cases) {
    const w = world(t, { DISCOVERY: 'http://sd:8088', GATEWAY: '10.9.9.9:6751' });
    w.httpResult = () => answer;
    await w.runVu(1);
    advance(t, 100);
    assert.equal(w.sum('fleetgate_discovery_failures', { reason }), 1, reason);
    assert.deepEqual(w.checksNamed('discovery listed a gateway'), [false], reason);
    assert.deepEqual(
      w.dials.map((d) => d.address),
      ['10.9.9.9:6751'],
      `${reason}: the fixed gateway`,
    );
    advance(t, 200_000);
  }
  // No fallback: no dial at all, and discovery is asked again after the backoff, not in a loop.
  const w = world(t, { DISCOVERY: 'http://sd:8088' });
  w.httpResult = () => ({ status: 503, body: '' });
  await w.runVu(1);
  advance(t, 30_000);
  assert.equal(w.dials.length, 0);
  const times = w.httpGets.map((g) => g.at - T0);
  assert.ok(times.length >= 5 && times.length <= 7, `${times.length} discovery requests in 30 s`);
  for (const g of gaps(times)) assert.ok(g >= 5000 && g <= 5500);
});

test('a lost stream is counted and checked, and the agent redials through discovery ~5 s later', async (t) => {
  const w = world(t, { DISCOVERY: 'http://sd:8088' });
  w.httpResult = () => registry([{ ip: '10.0.0.1', port: 6751 }]);
  await w.runVu(1);
  advance(t, 2000);
  const first = w.streams[0]!;
  assert.ok(first.writes.length > 0);
  first.serverEnd({ code: 14, message: 'transport is closing' });
  assert.equal(w.sum('fleetgate_stream_errors', { code: '14' }), 1);
  assert.deepEqual(w.checksNamed('stream not lost before the scenario end'), [false]);
  const writesAtLoss = first.writes.length;
  advance(t, 4999);
  assert.equal(w.streams.length, 1, 'no redial before the 5 s delay');
  assert.equal(first.writes.length, writesAtLoss, 'nothing written to the lost stream');
  advance(t, 600);
  assert.equal(w.streams.length, 2);
  assert.equal(w.httpGets.length, 2, 'discovery asked again before the redial');
  const [reconnect] = w.samplesOf('fleetgate_reconnect_ms');
  assert.ok(reconnect && reconnect.value >= 5000 && reconnect.value <= 5500, `${reconnect?.value}`);
  const [bucket] = w.samplesOf('fleetgate_reconnect_bucket');
  assert.equal(bucket?.tags.le, reconnect.value === 5000 ? '5000' : '6000');
  // The new stream carries what accrued while disconnected, and the heartbeat of a new stream.
  advance(t, 100);
  const second = w.streams[1]!.writes[0]!;
  assert.ok(second.Data.some((r) => r.DataType === 1000));
  assert.ok(second.Data.length > 5, `${second.Data.length} records after ~5 s away`);
  // A clean end (status OK) is a lost stream too, without an error status.
  w.streams[1]!.serverEnd();
  assert.equal(w.sum('fleetgate_stream_errors'), 1);
  assert.deepEqual(w.checksNamed('stream not lost before the scenario end'), [false, false]);
});

test('records: one RawData per send tick with the agent header, heartbeat first, the scenario rate', async (t) => {
  const w = world(t, { GATEWAY: 'gw:6751', AGENTS: '1' });
  await w.runVu(1);
  advance(t, 10_000);
  const s = w.streams[0]!;
  assert.ok(s.writes.length >= 19 && s.writes.length <= 100, `${s.writes.length} messages`);
  assert.deepEqual([...new Set(s.writes.map((m) => m.AgentID))], ['k6-0']);
  const all = s.writes.flatMap((m) => m.Data);
  assert.equal(all[0]!.DataType, 1000);
  assert.match(Buffer.from(all[0]!.Body, 'base64').toString('latin1'), /state.*running/);
  const events = all.filter((r) => r.DataType !== 1000);
  assert.ok(events.length >= 19 && events.length <= 20, `${events.length} events at 2/s in 10 s`);
  const mix = new Set([59, 42, 601, 5003]);
  assert.ok(events.every((e) => mix.has(e.DataType)));
  assert.equal(w.sum('fleetgate_records_sent'), all.length);
  // RATE overrides the scenario's rate.
  const slow = world(t, { GATEWAY: 'gw:6751', AGENTS: '1', RATE: '0.2' });
  await slow.runVu(1);
  advance(t, 10_000);
  const slowEvents = slow.streams[0]!.writes.flatMap((m) => m.Data).filter((r) => r.DataType !== 1000);
  assert.ok(slowEvents.length >= 1 && slowEvents.length <= 2, `${slowEvents.length} events at 0.2/s in 10 s`);
});

test('the ramp and the end: VUs join at their place and all end together, nothing cut off or left', async (t) => {
  const w = world(t, { GATEWAY: 'gw:6751', AGENTS: '4' }, { durationS: 60, rampS: 20 });
  for (let vu = 1; vu <= 4; vu++) await w.runVu(vu);
  advance(t, 59_999);
  assert.deepEqual(
    w.dials.map((d) => [d.vu, d.at - T0]),
    [
      [1, 1],
      [2, 5000],
      [3, 10_000],
      [4, 15_000],
    ],
  );
  assert.ok(w.streams.every((s) => !s.ended));
  advance(t, 1);
  assert.ok(w.streams.every((s) => s.ended));
  assert.deepEqual(w.checksNamed('stream not lost before the scenario end'), [true, true, true, true]);
  assert.equal(w.sum('fleetgate_streams_held'), 4);
  assert.equal(w.activeTimers.size, 0, 'every VU released its timers');
  assert.ok(w.closes >= 4);
});

test('per-VU certificates: VU n presents agent-<ID_PREFIX><AGENT_BASE+n-1> and sends that AgentID', async (t) => {
  const w = world(t, {
    GATEWAY: 'gw:6751',
    CERTS: '/certs',
    AGENTS: '3',
    AGENT_BASE: '1000',
    ID_PREFIX: 'host-',
  });
  for (const n of [1000, 1001, 1002]) {
    w.files.set(`/certs/agent-host-${n}.crt`, `CERT host-${n}`);
    w.files.set(`/certs/agent-host-${n}.key`, `KEY host-${n}`);
  }
  await w.runVu(2);
  advance(t, 200);
  const [dial] = w.dials;
  assert.deepEqual(dial?.params, {
    tls: { cert: 'CERT host-1001', key: 'KEY host-1001', cacerts: ['CA PEM'] },
    timeout: '15000ms',
    authority: 'elkeid.com',
  });
  assert.equal(w.streams[0]!.writes[0]!.AgentID, 'host-1001');
  assert.ok(!w.opened.includes('./pki/client.crt'), 'the fleet certificate is not used');
  w.files.delete('/certs/agent-host-1002.key');
  await assert.rejects(w.initVu(1), /open \/certs\/agent-host-1002\.key/);
});

test('agent-certs.ts writes the range of per-agent certificates that agents.js picks per VU', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'k6-certs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pki = path.join(dir, 'pki');
  const out = path.join(dir, 'certs');
  await writePkiDir(pki);
  const ids = await writeAgentCertRange({ pki, out, prefix: 'host-', base: 1000, count: 3 });
  assert.deepEqual(ids, ['host-1000', 'host-1001', 'host-1002']);
  const ca = new X509Certificate(readFileSync(path.join(pki, 'ca.crt')));
  for (const id of ids) {
    const cert = new X509Certificate(readFileSync(path.join(out, `agent-${id}.crt`)));
    assert.equal(cert.subject, `CN=${id}`);
    assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), `${id} signed by the fleet CA`);
    assert.equal(statSync(path.join(out, `agent-${id}.key`)).mode & 0o777, 0o600);
  }
  const w = world(t, {
    GATEWAY: 'gw:6751',
    CERTS: out,
    PKI: pki,
    AGENTS: '3',
    AGENT_BASE: '1000',
    ID_PREFIX: 'host-',
  });
  await w.runVu(2);
  advance(t, 200);
  assert.equal(w.dials[0]?.params.tls.cert, readFileSync(path.join(out, 'agent-host-1001.crt'), 'utf8'));
  assert.deepEqual(w.dials[0]?.params.tls.cacerts, [readFileSync(path.join(pki, 'ca.crt'), 'utf8')]);
  assert.equal(w.streams[0]!.writes[0]!.AgentID, 'host-1001');
  const cli = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(K6_DIR, 'agent-certs.ts'), '--pki', pki, '--count', 'x'],
    { encoding: 'utf8', cwd: root },
  );
  assert.equal(cli.status, 2);
  assert.match(cli.stderr, /--count must be a whole number/);
});

test('fleet identity: every VU presents the shared certificate; AUTHORITY= omits the authority', async (t) => {
  const w = world(t, { GATEWAY: 'gw:6751', AUTHORITY: '' });
  await w.runVu(1);
  advance(t, 100);
  assert.deepEqual(w.dials[0]?.params, {
    tls: { cert: 'FLEET CERT PEM', key: 'FLEET KEY PEM', cacerts: ['CA PEM'] },
    timeout: '15000ms',
  });
});

test('commands: a plugin task is answered with a result record; latency from sent_ms is recorded', async (t) => {
  const w = world(t, { GATEWAY: 'gw:6751' }, { eventsPerAgentPerS: 0 });
  await w.runVu(1);
  advance(t, 1000);
  const s = w.streams[0]!;
  const data = JSON.stringify({ sent_ms: Date.now() - 250, result_data_type: 5100 });
  s.command({ Task: { Name: 'collector', Token: 'tok-1', Data: data, DataType: 5000 } });
  s.command({ Task: { Name: 'elkeid-agent', Token: 'tok-2', Data: '' } });
  s.command({ Task: { Name: 'driver', Token: 'tok-3', Data: 'not json' } });
  s.command({ AgentCtrl: 0, Config: [] });
  advance(t, 100);
  const last = s.writes.at(-1)!;
  assert.deepEqual(
    last.Data.map((r) => r.DataType),
    [5100, 2001],
  );
  assert.match(Buffer.from(last.Data[0]!.Body, 'base64').toString('latin1'), /tok-1[\s\S]*succeed/);
  assert.equal(w.sum('fleetgate_commands_received'), 4);
  assert.deepEqual(
    w.samplesOf('fleetgate_command_latency_ms').map((x) => x.value),
    [250],
  );
  assert.deepEqual(
    w.samplesOf('fleetgate_command_latency_bucket').map((x) => x.tags.le),
    ['250'],
  );
});

/** End-of-test data in the shape k6 passes to handleSummary. */
function k6Summary(bucketCounts: Record<string, number>, extra: Record<string, unknown> = {}) {
  const metrics: Record<string, unknown> = {
    fleetgate_records_sent: { type: 'counter', values: { count: 1000, rate: 10 } },
    fleetgate_commands_received: { type: 'counter', values: { count: 100, rate: 1 } },
    'fleetgate_dial_failures{reason:refused}': {
      type: 'counter',
      values: { count: 3 },
      thresholds: { 'count>=0': { ok: true } },
    },
    fleetgate_dial_ok: {
      type: 'rate',
      values: { rate: 0.97, passes: 97, fails: 3 },
      thresholds: { 'rate>=0.5': { ok: true } },
    },
    fleetgate_streams_held: { type: 'rate', values: { rate: 1, passes: 100, fails: 0 } },
    checks: { type: 'rate', values: { rate: 0.98, passes: 98, fails: 2 } },
    ...extra,
  };
  for (const [le, count] of Object.entries(bucketCounts)) {
    metrics[`fleetgate_command_latency_bucket{le:${le}}`] = {
      type: 'counter',
      values: { count },
      thresholds: { 'count>=0': { ok: true } },
    };
  }
  return { metrics, state: { testRunDurationMs: 120_000 } };
}

function runMerge(args: string[]) {
  return spawnSync(process.execPath, [path.join(K6_DIR, 'merge-summaries.mjs'), ...args], {
    encoding: 'utf8',
  });
}

test('handleSummary writes mergeable counts; merge-summaries adds them and reads percentiles off the sum', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'k6-summary-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const w = world(t, { AGENTS: '100', AGENT_BASE: '0' });
  const a = (await w.initVu(0)).handleSummary(k6Summary({ 100: 99, 5000: 1 }));
  assert.match(a.stdout ?? '', /command latency: p50 ≤ 100 ms, p99 ≤ 100 ms, p99\.9 ≤ 5000 ms \(100\)/);
  assert.match(a.stdout ?? '', /dials succeeded: 97\.00 % of 100 \(failed: refused 3\)/);
  const reportA = JSON.parse(a['k6-summary-0.json']!);
  assert.equal(reportA.format, 'fleetgate-k6/1');
  assert.deepEqual(reportA.sources, [{ idPrefix: 'k6-', agentBase: 0, agents: 100 }]);
  assert.equal(reportA.counters['fleetgate_dial_failures{reason:refused}'], 3);
  w.env.AGENT_BASE = '100';
  const failed = {
    fleetgate_command_latency_ms: {
      type: 'trend',
      values: { 'p(99)': 20000 },
      thresholds: { 'p(99)<2000': { ok: false } },
    },
  };
  const b = (await w.initVu(0)).handleSummary(k6Summary({ 20000: 100 }, failed));
  writeFileSync(path.join(dir, 'a.json'), a['k6-summary-0.json']!);
  writeFileSync(path.join(dir, 'b.json'), b['k6-summary-100.json']!);
  const out = path.join(dir, 'merged.json');
  const r = runMerge(['--json', out, path.join(dir, 'a.json'), path.join(dir, 'b.json')]);
  assert.equal(r.status, 1, 'a threshold failed in one instance');
  // 200 samples: 99 ≤ 100 ms, 1 ≤ 5 s, 100 ≤ 20 s. The p99s of the parts were 100 ms and 20 s.
  assert.match(r.stdout, /200 agents in 2 instance\(s\)/);
  assert.match(r.stdout, /command latency: p50 ≤ 5000 ms, p99 ≤ 20000 ms, p99\.9 ≤ 20000 ms \(200\)/);
  assert.match(r.stdout, /thresholds failed: fleetgate_command_latency_ms: p\(99\)<2000 \(k6-100\+100\)/);
  const merged = JSON.parse(readFileSync(out, 'utf8'));
  assert.equal(merged.counters.fleetgate_records_sent, 2000);
  assert.deepEqual(merged.rates.checks, { passes: 196, fails: 4 });
  assert.equal(
    merged.histograms.command_latency_ms.counts.reduce((x: number, y: number) => x + y, 0),
    200,
  );
  // A merged summary merges again; overlapping agent ranges and mixed scenarios are refused.
  writeFileSync(path.join(dir, 'c.json'), a['k6-summary-0.json']!);
  const overlap = runMerge([path.join(dir, 'a.json'), path.join(dir, 'c.json')]);
  assert.equal(overlap.status, 2);
  assert.match(overlap.stderr, /agents overlap: k6-0 is in two summaries/);
  const other = JSON.parse(b['k6-summary-100.json']!);
  other.scenario = 'steady';
  other.sources[0].agentBase = 500;
  writeFileSync(path.join(dir, 'd.json'), JSON.stringify(other));
  const mixed = runMerge([out, path.join(dir, 'd.json')]);
  assert.equal(mixed.status, 2);
  assert.match(mixed.stderr, /different scenarios: test and steady/);
  assert.equal(runMerge(['--help']).status, 0);
  assert.equal(runMerge([]).status, 2);
});

test('the k6 files parse as ES modules (node --check)', () => {
  for (const f of ['agents.js', 'summary.js', 'merge-summaries.mjs']) {
    const r = spawnSync(process.execPath, ['--check', path.join(K6_DIR, f)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
  }
});
