/** The agent simulator against a real gateway: it connects, streams, and behaves as an Elkeid agent. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { decodeItem } from '../../gateway/agent/item.js';
import { runSim } from '../../loadtest/sim/command.js';
import { runFleet, runFleetProcesses } from '../../loadtest/sim/fleet.js';
import type { SimReport } from '../../loadtest/sim/report.js';
import { SCENARIOS } from '../../loadtest/sim/scenario.js';
import { captureErrors } from '../helpers/console.js';
import { startFleetgateProcess, startTestGateway, waitFor } from '../helpers/gateway.js';
import { metricValue } from '../helpers/metrics.js';

async function gatewayWithClientFiles(t: import('node:test').TestContext) {
  const g = await startTestGateway(t);
  writeFileSync(path.join(g.pkiDir, 'client.crt'), g.pki.fleet.cert);
  writeFileSync(path.join(g.pkiDir, 'client.key'), g.pki.fleet.key);
  return g;
}

test('simulated agents connect, stream, apply configs and answer plugin tasks with their token', async (t) => {
  const g = await gatewayWithClientFiles(t);
  const scenario = { ...SCENARIOS.steady!, durationS: 4, rampS: 0, eventsPerAgentPerS: 20 };
  const run = runFleet({ agents: 10, scenario, pkiDir: g.pkiDir, gateway: g.address, sourceAddresses: 1 });
  await waitFor(() => g.gateway.sessions.size === 10, 5000, '10 agents');
  // Every agent heartbeats at start (the session has its detail).
  await waitFor(() => [...g.gateway.sessions.all()].every((s) => s.detail !== undefined), 5000, 'heartbeats');
  const ids = g.gateway.sessions.ids();
  const config = await g.gateway.sessions.sendMany(ids, {
    Config: [
      {
        Name: 'collector',
        Type: 'exec',
        Version: '1.2.3',
        SHA256: 'x',
        Signature: 'x',
        DownloadURL: ['http://x'],
      },
    ],
  });
  assert.ok([...config.values()].every((r) => r === 'sent'));
  const target = ids[0]!;
  assert.equal(
    await g.gateway.sessions.send(target, {
      Task: { DataType: 2001, Name: 'collector', Data: '{}', Token: 'tok-sim' },
    }),
    'sent',
  );
  const report = await run;
  assert.equal(report.agents, 10);
  assert.equal(report.connects, 10);
  assert.ok(report.recordsSent > 500, `records sent ${report.recordsSent}`);
  assert.equal(report.configsApplied, 10);
  assert.equal(report.taskResults, 1);
  // The task result came back with the token, and the plugin shows in the next plugin heartbeat.
  const results = g.sink.batches.flatMap((b) => b.raw.Data.filter((r) => r.DataType === 2001));
  assert.equal(results.length, 1);
  assert.equal(decodeItem(results[0]!.Body!).token, 'tok-sim');
  assert.equal(decodeItem(results[0]!.Body!).status, 'succeed');
  assert.deepEqual(report.errors, {});
});

test('simulator spread over two processes reports merged counters', async (t) => {
  const g = await gatewayWithClientFiles(t);
  const scenario = { ...SCENARIOS.steady!, durationS: 3, rampS: 0, eventsPerAgentPerS: 10 };
  const report = await runFleetProcesses({
    agents: 12,
    processes: 2,
    scenario,
    pkiDir: g.pkiDir,
    gateway: g.address,
    sourceAddresses: 1,
  });
  assert.equal(report.agents, 12);
  assert.equal(report.connects, 12);
  assert.ok(report.recordsSent > 100);
  await waitFor(() => g.sink.records >= report.recordsSent, 5000, 'gateway received every record sent');
});

/** `p`, or a rejection after `ms` (a signal that never arrives fails the test, not hangs it). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms).unref(),
    ),
  ]);
}

function tmp(t: import('node:test').TestContext): string {
  const dir = path.join(os.tmpdir(), `fleetgate-sim-${process.pid}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir, { recursive: true });
  t.after(() => import('node:fs').then((fs) => fs.rmSync(dir, { recursive: true, force: true })));
  return dir;
}

test('reconnect storm: every agent is dropped at once, all come back, and the time is measured', async (t) => {
  const g = await gatewayWithClientFiles(t);
  // A short reconnect delay keeps the run short; the storm is the scenario's.
  const scenario = {
    ...SCENARIOS['reconnect-storm']!,
    durationS: 4,
    rampS: 0,
    reconnectDelayMs: 1000,
    disrupt: { atS: 1, kind: 'reconnect-storm' as const },
  };
  const progress: Array<import('../../loadtest/sim/fleet.js').FleetSnapshot> = [];
  const report = await runFleet({
    agents: 6,
    scenario,
    pkiDir: g.pkiDir,
    gateway: g.address,
    sourceAddresses: 1,
    onProgress: (s) => progress.push(s),
  });
  assert.equal(report.connects, 12, 'every agent connected twice');
  assert.equal(report.connected, 6, 'all connected at the end');
  assert.ok(report.disruption, 'the storm is in the report');
  assert.equal(report.disruption.lost, 6);
  assert.equal(report.disruption.back, 6);
  assert.ok(
    report.disruption.allBackMs >= 1000 && report.disruption.allBackMs < 2500,
    `all back in ${report.disruption.allBackMs} ms`,
  );
  assert.equal(report.reconnectMs.length, 6);
  assert.ok(
    report.reconnectMs.every((ms) => ms >= 1000 && ms < 2500),
    `${report.reconnectMs}`,
  );
  // The progress line shows it too.
  const { formatProgress } = await import('../../loadtest/sim/command.js');
  const last = progress.at(-1)!;
  assert.match(formatProgress(last, undefined), /disrupted: back 6\/6 in \d\.\ds/);
});

test('reconnect storm over two processes: merged counts of lost and reconnected agents', async (t) => {
  const g = await gatewayWithClientFiles(t);
  const scenario = {
    ...SCENARIOS.steady!,
    durationS: 4,
    rampS: 0,
    reconnectDelayMs: 1000,
    disrupt: { atS: 1, kind: 'reconnect-storm' as const },
  };
  const report = await runFleetProcesses({
    agents: 6,
    processes: 2,
    scenario,
    pkiDir: g.pkiDir,
    gateway: g.address,
    sourceAddresses: 1,
  });
  assert.equal(report.connects, 12);
  assert.deepEqual({ lost: report.disruption?.lost, back: report.disruption?.back }, { lost: 6, back: 6 });
  assert.ok((report.disruption?.allBackMs ?? -1) >= 1000);
});

test('gateway-loss: the simulator sends SIGKILL to --gateway-pid at the disruption and reports the lost agents', async (t) => {
  const gw = await startFleetgateProcess(t, 'gateway');
  const pki = tmp(t);
  writeFileSync(path.join(pki, 'ca.crt'), gw.tls.ca);
  writeFileSync(path.join(pki, 'client.crt'), gw.tls.cert);
  writeFileSync(path.join(pki, 'client.key'), gw.tls.key);
  const json = path.join(pki, 'report.json');
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    gw.child.once('exit', (_c, sig) => resolve(sig)),
  );
  const started = Date.now();
  const code = await runSim([
    '--scenario',
    'gateway-loss',
    '--agents',
    '3',
    '--duration',
    '3',
    '--ramp',
    '0',
    '--disrupt-at',
    '1',
    '--gateway',
    `127.0.0.1:${gw.port}`,
    '--gateway-pid',
    String(gw.child.pid),
    '--pki',
    pki,
    '--json',
    json,
  ]);
  assert.equal(code, 0);
  assert.equal(await within(exited, 3000, 'gateway exit'), 'SIGKILL');
  const report = JSON.parse(readFileSync(json, 'utf8')) as SimReport;
  assert.equal(report.connects, 3);
  assert.equal(report.disruption?.kind, 'gateway-sigkill');
  assert.equal(report.disruption?.agentsLost, 3);
  assert.equal(report.disruption?.agentsReconnected, 0, 'no gateway to come back to');
  assert.equal(report.disruption?.allBackMs, null);
  const action = report.disruption?.actions[0];
  assert.equal(action?.action, `SIGKILL to pid ${gw.child.pid}`);
  assert.ok(action && action.atS >= 0.9 && action.atS < 2, `signalled at ${action?.atS}s`);
  assert.ok(Date.now() - started < 6000);
});

test('gateway-sigterm reaches a child process', async (t) => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [
    '-e',
    'process.on("SIGTERM", () => process.exit(42)); console.log("ready"); setInterval(() => {}, 1000)',
  ]);
  t.after(() => child.kill('SIGKILL'));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  // The handler is installed before "ready": on a loaded machine Node's start can take longer
  // than the disruption's 1 s, and a SIGTERM before the handler would end the child with no code.
  await within(new Promise((resolve) => child.stdout.once('data', resolve)), 20_000, 'child ready');
  const scenario = { ...SCENARIOS['gateway-loss']!, disrupt: { atS: 1, kind: 'gateway-sigterm' as const } };
  const { scheduleDisruption } = await import('../../loadtest/sim/disrupt.js');
  const parent = scheduleDisruption({ ...scenario, durationS: 3 }, { gatewayPid: child.pid! });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(child.exitCode, null, 'not before atS');
  assert.equal(await within(exited, 3000, 'child exit'), 42);
  await parent.stop();
  assert.equal(parent.actions.length, 1);
});

test('kafka-outage runs --on-disrupt at atS and --on-recover after --outage-seconds, and counts records sent meanwhile', async (t) => {
  const g = await gatewayWithClientFiles(t);
  const dir = tmp(t);
  const down = path.join(dir, 'down');
  const up = path.join(dir, 'up');
  const json = path.join(dir, 'report.json');
  const started = Date.now();
  const run = runSim([
    '--scenario',
    'kafka-outage',
    '--agents',
    '3',
    '--duration',
    '4',
    '--ramp',
    '0',
    '--rate',
    '20',
    '--disrupt-at',
    '1',
    '--outage-seconds',
    '1.5',
    '--on-disrupt',
    `touch ${down}`,
    '--on-recover',
    `touch ${up}`,
    '--gateway',
    `${g.address.host}:${g.address.port}`,
    '--pki',
    g.pkiDir,
    '--json',
    json,
  ]);
  await new Promise((r) => setTimeout(r, 600));
  assert.ok(!existsSync(down) && !existsSync(up), 'nothing runs before atS');
  assert.equal(await run, 0);
  const at = (f: string) => (statSync(f).mtimeMs - started) / 1000;
  assert.ok(at(down) >= 0.9 && at(down) < 1.8, `on-disrupt at ${at(down)}s`);
  assert.ok(at(up) >= 2.4 && at(up) < 3.3, `on-recover at ${at(up)}s`);
  const report = JSON.parse(readFileSync(json, 'utf8')) as SimReport;
  assert.equal(report.disruption?.kind, 'kafka-outage');
  assert.deepEqual(
    report.disruption?.actions.map((a) => [a.action.split(':')[0], a.exitCode]),
    [
      ['on-disrupt', 0],
      ['on-recover', 0],
    ],
  );
  // 3 agents x 20/s x 1.5 s ≈ 90 records.
  const during = report.disruption?.recordsDuringOutage ?? 0;
  assert.ok(during >= 60 && during <= 120, `records during the outage ${during}`);
});

test('disruptions that need an outside action are refused at start without one', async () => {
  const { lines: errors } = await captureErrors(async () => {
    const base = ['--gateway', '127.0.0.1:1', '--agents', '1', '--duration', '1'];
    assert.equal(await runSim(['--scenario', 'gateway-loss', ...base]), 2);
    assert.equal(await runSim(['--scenario', 'kafka-outage', ...base]), 2);
    assert.equal(await runSim(['--scenario', 'rolling-task', ...base]), 2);
  });
  assert.match(errors[0]!, /scenario gateway-loss needs --gateway-pid or --on-disrupt/);
  assert.match(errors[1]!, /scenario kafka-outage needs --on-disrupt/);
  assert.match(errors[2]!, /scenario rolling-task needs --manager URL and --api-key KEY/);
});

test('--disrupt-at-time: two simulators started 1.2 s apart disrupt at the same wall-clock moment', async (t) => {
  const g = await gatewayWithClientFiles(t);
  const dir = tmp(t);
  const at = Date.now() + 2500;
  const marks = [path.join(dir, 'a'), path.join(dir, 'b')];
  const sim = (mark: string) =>
    runSim([
      '--scenario',
      'kafka-outage',
      '--agents',
      '2',
      '--duration',
      '5',
      '--ramp',
      '0',
      '--disrupt-at-time',
      new Date(at).toISOString(),
      '--on-disrupt',
      `touch ${mark}`,
      '--gateway',
      `${g.address.host}:${g.address.port}`,
      '--pki',
      g.pkiDir,
    ]);
  const first = sim(marks[0]!);
  await new Promise((r) => setTimeout(r, 1200));
  const second = sim(marks[1]!);
  assert.deepEqual(await Promise.all([first, second]), [0, 0]);
  for (const m of marks) {
    const off = statSync(m).mtimeMs - at;
    assert.ok(off >= -50 && off < 400, `${path.basename(m)} disrupted ${off} ms from the moment`);
  }
  // A moment outside the run is refused at start.
  const refused = await captureErrors(() =>
    runSim(['--scenario', 'reconnect-storm', '--gateway', '127.0.0.1:1', '--disrupt-at-time', '1000']),
  );
  assert.equal(refused.value, 2);
  const errors = refused.lines;
  assert.match(errors.join('\n'), /--disrupt-at-time 1000 must be a moment within the run/);
});

test('--max-dials: a storm against a gateway admitting 2 handshakes at a time is refused without the bound and not with it', async (t) => {
  const g = await startTestGateway(t, {
    limits: { maxPendingHandshakes: 2, maxPendingHandshakesPerSource: 2 },
  });
  writeFileSync(path.join(g.pkiDir, 'client.crt'), g.pki.fleet.cert);
  writeFileSync(path.join(g.pkiDir, 'client.key'), g.pki.fleet.key);
  const scenario = { ...SCENARIOS.steady!, durationS: 2.5, rampS: 0, eventsPerAgentPerS: 0 };
  const run = (maxDials: number) =>
    runFleet({ agents: 24, scenario, pkiDir: g.pkiDir, gateway: g.address, sourceAddresses: 1, maxDials });
  // One dial at a time: the gateway never has more than this one and the one finishing before it.
  const bounded = await run(1);
  assert.equal(bounded.connects, 24, `every agent connected: ${JSON.stringify(bounded.errors)}`);
  assert.deepEqual(bounded.errors, {});
  // 0: unbounded (stock), all 24 at once: the gateway resets those beyond its 2 slots.
  const unbounded = await run(0);
  assert.ok(
    (unbounded.errors.dial_ECONNRESET ?? 0) > 0,
    `refusals seen: ${JSON.stringify(unbounded.errors)}`,
  );
  assert.ok(
    (await metricValue(g.gateway.metrics.registry, 'fleetgate_connections_refused_total', {
      reason: 'handshakes',
    })) > 0,
  );
});

test('--per-agent-certs: each agent presents its own certificate and a per-agent-identity gateway admits it', async (t) => {
  const g = await startTestGateway(t, { config: { identity: 'per-agent' } });
  writeFileSync(path.join(g.pkiDir, 'ca.key'), g.pki.ca.key, { mode: 0o600 });
  writeFileSync(path.join(g.pkiDir, 'client.crt'), g.pki.fleet.cert);
  writeFileSync(path.join(g.pkiDir, 'client.key'), g.pki.fleet.key);
  const scenario = { ...SCENARIOS.steady!, durationS: 2, rampS: 0, eventsPerAgentPerS: 5 };
  const seen = new Set<string>();
  const poll = setInterval(() => {
    for (const s of g.gateway.sessions.all()) seen.add(s.agentId);
  }, 50);
  t.after(() => clearInterval(poll));
  const own = await runFleet({
    agents: 4,
    scenario,
    pkiDir: g.pkiDir,
    gateway: g.address,
    sourceAddresses: 1,
    perAgentCerts: true,
    idSeed: 'per-agent-test',
  });
  clearInterval(poll);
  assert.deepEqual(own.errors, {}, 'no agent refused');
  assert.equal(own.connects, 4);
  assert.equal(seen.size, 4, `the gateway held four agents: ${[...seen]}`);
  assert.ok(own.recordsSent > 0);
  // The fleet certificate names no agent: the same gateway refuses those streams.
  const fleet = await runFleet({
    agents: 2,
    scenario,
    pkiDir: g.pkiDir,
    gateway: g.address,
    sourceAddresses: 1,
  });
  assert.ok(
    Object.keys(fleet.errors).some((k) => k.startsWith('status_')),
    JSON.stringify(fleet.errors),
  );
});

test('--per-agent-certs without the CA key is refused at start, naming the file', async (t) => {
  const dir = tmp(t);
  const { value: code, lines: errors } = await captureErrors(() =>
    runSim(['--per-agent-certs', '--pki', dir, '--gateway', '127.0.0.1:1', '--agents', '1']),
  );
  assert.equal(code, 2);
  assert.match(
    errors.join('\n'),
    /--per-agent-certs signs a certificate for each agent with the CA: .*ca\.key is missing/,
  );
});
