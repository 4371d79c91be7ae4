/** The agent simulator against a real gateway: it connects, streams, and behaves as an Elkeid agent. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeItem } from '../../gateway/agent/item.js';
import { runFleet, runFleetProcesses } from '../../loadtest/sim/fleet.js';
import { SCENARIOS } from '../../loadtest/sim/scenario.js';
import { startTestGateway, waitFor } from '../helpers/gateway.js';

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
