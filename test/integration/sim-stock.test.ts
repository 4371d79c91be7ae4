/**
 * The simulator's agreement with stock agents and its own hygiene: `--sd host:port` as
 * FLEETGATE_SD_ADDRS takes it, exit after the report (no connection left open), a sample message
 * per error kind, and plugin-task answers a stock manager decides by.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeItem } from '../../gateway/agent/item.js';
import { runFleet } from '../../loadtest/sim/fleet.js';
import type { SimReport } from '../../loadtest/sim/report.js';
import { SCENARIOS } from '../../loadtest/sim/scenario.js';
import { newStats, SimAgent } from '../../loadtest/sim/sim-agent.js';
import {
  CLI_ENTRY,
  ROOT,
  startFleetgateProcess,
  startTestGateway,
  tempDir,
  waitFor,
} from '../helpers/gateway.js';
import { sleep } from '../helpers/time.js';

test('fleetgate sim --sd host:port (no scheme) finds the gateway through discovery and exits after its report', async (t) => {
  const sdBanner = /discovery\s+http:\/\/127\.0\.0\.1:(\d+)/;
  const gw = await startFleetgateProcess(
    t,
    'all',
    { FLEETGATE_ADVERTISE_HOST: '127.0.0.1', FLEETGATE_SD_PORT: '0' },
    { readyMs: 30_000, ready: (out) => sdBanner.test(out) },
  );
  const sdPort = Number(sdBanner.exec(gw.output())![1]);
  const json = path.join(tempDir(t), 'report.json');
  const args = ['--sd', `127.0.0.1:${sdPort}`, '--pki', path.join(gw.dataDir, 'pki')];
  const sim = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CLI_ENTRY,
      'sim',
      ...args,
      '--agents',
      '5',
      '--duration',
      '3',
      '--ramp',
      '0',
      '--json',
      json,
    ],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  sim.stderr?.on('data', (d) => {
    err += String(d);
  });
  t.after(() => sim.kill('SIGKILL'));
  const code = await new Promise<number | null>((resolve) => sim.once('exit', (c) => resolve(c)));
  assert.equal(code, 0, err);
  const report = JSON.parse(readFileSync(json, 'utf8')) as SimReport;
  assert.ok(report.connects >= 5, JSON.stringify(report.errors));
  assert.equal(report.errors.discovery_error, undefined, JSON.stringify(report.errorSamples));
});

test('an agent stopped while it dials leaves no connection behind', async (t) => {
  const g = await startTestGateway(t);
  const stats = newStats();
  const scenario = { ...SCENARIOS.steady!, eventsPerAgentPerS: 0 };
  for (let i = 0; i < 5; i++) {
    const a = new SimAgent(`stop-early-${i}`, i, { tls: g.tls, gateway: g.address, scenario, stats });
    a.start();
    a.stop();
  }
  await sleep(1000);
  assert.equal(g.gateway.grpc.sessions.size, 0, 'no HTTP/2 session of a stopped agent stays open');
});

test('every error kind in the report carries a sample message', async (t) => {
  const pkiDir = tempDir(t);
  const g = await startTestGateway(t);
  writeFileSync(path.join(pkiDir, 'ca.crt'), g.pki.ca.cert);
  writeFileSync(path.join(pkiDir, 'client.crt'), g.pki.fleet.cert);
  writeFileSync(path.join(pkiDir, 'client.key'), g.pki.fleet.key);
  await g.gateway.shutdown(0);
  const scenario = { ...SCENARIOS.steady!, durationS: 1, rampS: 0, reconnectDelayMs: 200 };
  const report = await runFleet({
    agents: 2,
    scenario,
    pkiDir,
    discovery: 'http://127.0.0.1:1',
    gateway: g.address,
    sourceAddresses: 1,
  });
  const kinds = Object.keys(report.errors);
  assert.ok(kinds.includes('discovery_error'), kinds.join());
  assert.ok(
    kinds.some((k) => k.startsWith('dial')),
    kinds.join(),
  );
  for (const k of kinds) assert.ok((report.errorSamples?.[k] ?? '').length > 0, `sample for ${k}`);
  assert.match(report.errorSamples!.discovery_error!, /fetch failed|ECONNREFUSED/);
});

test('a plugin task of a data type the manager decides by (5100) is answered with that type', async (t) => {
  const g = await startTestGateway(t);
  const stats = newStats();
  const scenario = { ...SCENARIOS.steady!, eventsPerAgentPerS: 0 };
  const a = new SimAgent('answers-5100', 0, { tls: g.tls, gateway: g.address, scenario, stats });
  t.after(() => a.stop());
  a.start();
  await waitFor(() => g.gateway.sessions.get('answers-5100') !== undefined, 5000, 'agent');
  const config = {
    Name: 'collector',
    Type: 'exec',
    Version: '1',
    SHA256: 'x',
    Signature: 'x',
    DownloadURL: ['http://x'],
  };
  await g.gateway.sessions.send('answers-5100', { Config: [config] });
  await waitFor(() => stats.configsApplied === 1, 5000, 'config');
  await g.gateway.sessions.send('answers-5100', {
    Task: { DataType: 5100, Name: 'collector', Data: '{}', Token: 'tok-5100' },
  });
  await waitFor(
    () => g.sink.batches.some((b) => b.raw.Data.some((r) => r.DataType === 5100)),
    5000,
    'a 5100 answer',
  );
  const rec = g.sink.batches.flatMap((b) => b.raw.Data).find((r) => r.DataType === 5100)!;
  assert.deepEqual({ ...decodeItem(rec.Body!) }, { token: 'tok-5100', status: 'succeed', msg: '' });
});
