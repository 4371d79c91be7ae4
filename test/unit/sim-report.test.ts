/** Simulator reports (`fleetgate sim --json`) and their merge (`fleetgate sim merge`). */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runSimMerge } from '../../loadtest/sim/command.js';
import { emptySnapshot, type FleetSnapshot } from '../../loadtest/sim/fleet.js';
import {
  buildReport,
  decodeHistogram,
  histogramOf,
  mergeReports,
  parseReport,
  REPORT_FORMAT,
  ReportFormatError,
} from '../../loadtest/sim/report.js';
import { rollingTaskReport } from '../../loadtest/sim/rolling-task.js';

function snapshot(over: Partial<FleetSnapshot>): FleetSnapshot {
  return emptySnapshot({ elapsedS: 60, ...over });
}

const range = (from: number, to: number, step = 1) => {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
};

// Machine A: 1,000 fast commands; machine B: 100 slow ones. The fleet's p99 is B's territory,
// which neither an average nor a maximum of the per-machine p99s gives.
const fastCommands = range(1, 1000).map((v) => 5 + (v % 20));
const slowCommands = range(1, 100).map((v) => 400 + v);
const a = buildReport(
  snapshot({
    agents: 1000,
    connected: 990,
    connects: 1010,
    recordsSent: 120_000,
    bytesSent: 9_000_000,
    commands: 1000,
    errors: { dial: 3, status_14: 1 },
    commandLatencyMs: fastCommands,
    reconnectMs: [5100, 5200],
  }),
  { scenario: 'steady', processes: 4, startedAt: new Date('2026-01-01T00:00:00Z') },
);
const b = buildReport(
  snapshot({
    elapsedS: 61,
    agents: 100,
    connected: 100,
    connects: 100,
    recordsSent: 12_000,
    bytesSent: 900_000,
    commands: 100,
    errors: { dial: 2 },
    commandLatencyMs: slowCommands,
  }),
  { scenario: 'steady', processes: 1, startedAt: new Date('2026-01-01T00:00:00Z') },
);

test('a report carries its counts and mergeable histograms', () => {
  assert.equal(a.format, REPORT_FORMAT);
  assert.equal(a.agents, 1000);
  assert.equal(a.commandLatencyMs.count, 1000);
  assert.equal(decodeHistogram(a.commandLatencyMs.histogram).totalCount, 1000);
  assert.equal(a.sources.length, 1);
  assert.equal(a.sources[0]!.processes, 4);
});

test('merging sums counts and errors and recomputes percentiles from the added histograms', () => {
  const m = mergeReports([a, b]);
  assert.equal(m.agents, 1100);
  assert.equal(m.connectedAtEnd, 1090);
  assert.equal(m.connects, 1110);
  assert.equal(m.recordsSent, 132_000);
  assert.equal(m.bytesSent, 9_900_000);
  assert.equal(m.commands, 1100);
  assert.deepEqual(m.errors, { dial: 5, status_14: 1 });
  assert.equal(m.elapsedS, 61);
  assert.equal(m.scenario, 'steady');
  assert.equal(m.sources.length, 2);
  // Exactly what one histogram of every sample says.
  const all = histogramOf([...fastCommands, ...slowCommands]);
  assert.equal(m.commandLatencyMs.count, 1100);
  assert.equal(m.commandLatencyMs.p50, all.getValueAtPercentile(50));
  assert.equal(m.commandLatencyMs.p99, all.getValueAtPercentile(99));
  assert.equal(m.commandLatencyMs.max, all.maxValue);
  assert.ok(m.commandLatencyMs.p99 > 400, `p99 ${m.commandLatencyMs.p99} comes from the slow machine`);
  assert.notEqual(m.commandLatencyMs.p99, Math.round((a.commandLatencyMs.p99 + b.commandLatencyMs.p99) / 2));
  assert.equal(m.reconnectMs.count, 2);
});

test('a merged report merges again to the same result (order and grouping do not matter)', () => {
  const c = buildReport(snapshot({ agents: 7, commandLatencyMs: [1, 2, 3000] }), {
    scenario: 'ramp',
    processes: 1,
    startedAt: new Date(),
  });
  const once = mergeReports([a, b, c]);
  const twice = mergeReports([mergeReports([c, a]), b]);
  for (const k of ['agents', 'recordsSent', 'commands'] as const) assert.equal(twice[k], once[k]);
  assert.deepEqual({ ...twice.commandLatencyMs, histogram: '' }, { ...once.commandLatencyMs, histogram: '' });
  assert.equal(once.scenario, 'mixed: ramp, steady');
});

test('reports of another format or with missing fields are refused', () => {
  assert.throws(() => parseReport({ ...a, format: 'other/1' }), ReportFormatError);
  const { recordsSent: _gone, ...noRecords } = a;
  assert.throws(() => parseReport(noRecords), /recordsSent/);
  assert.throws(() => parseReport({ ...a, commandLatencyMs: { p99: 3 } }), /histogram/);
  assert.throws(() => mergeReports([]), ReportFormatError);
  assert.equal(parseReport(JSON.parse(JSON.stringify(a))).agents, 1000);
});

test('fleetgate sim merge reads report files and writes the merged one', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fg-merge-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fa = path.join(dir, 'a.json');
  const fb = path.join(dir, 'b.json');
  const out = path.join(dir, 'merged.json');
  writeFileSync(fa, JSON.stringify(a));
  writeFileSync(fb, JSON.stringify(b));
  const log = t.mock.method(console, 'log', () => {});
  const err = t.mock.method(console, 'error', () => {});
  assert.equal(await runSimMerge([fa, fb, '--json', out]), 0);
  const merged = parseReport(JSON.parse(readFileSync(out, 'utf8')));
  assert.equal(merged.agents, 1100);
  assert.deepEqual(
    merged.sources.map((s) => s.file),
    [fa, fb],
  );
  assert.equal(log.mock.callCount(), 1);
  writeFileSync(path.join(dir, 'bad.json'), '{"format":"x"}');
  assert.equal(await runSimMerge([fa, path.join(dir, 'bad.json')]), 2);
  assert.equal(await runSimMerge([]), 2);
  assert.ok(err.mock.callCount() >= 2);
});

test('a rolling task survives a merge once; reports of two different tasks are refused', () => {
  const run = (taskId: string) => ({
    taskId,
    ids: ['a', 'b'],
    agents: 2,
    rollingPercent: 0.5,
    createdAt: 1000,
    batches: [
      { batch: 1, agents: 1, releasedAt: 1010, lastResultAt: 1300 },
      { batch: 2, agents: 1, releasedAt: 1400, lastResultAt: 1800 },
    ],
    subtasks: new Map([
      ['a', { agent_id: 'a', token: 'ta', status: 'result_succeed' }],
      ['b', { agent_id: 'b', token: 'tb', status: 'result_failed' }],
    ]),
    finalAt: new Map([
      ['a', 1300],
      ['b', 1800],
    ]),
    taskStatus: 'finished',
  });
  const arrivals = [
    { agentId: 'a', token: 'ta', atMs: 1050 },
    { agentId: 'b', token: 'tb', atMs: 1420 },
    { agentId: 'b', token: 'tb', atMs: 1430 },
  ];
  const rt = rollingTaskReport(run('t1'), arrivals, 0);
  assert.deepEqual(
    [
      rt.allResultsMs,
      rt.resultSucceed,
      rt.resultFailed,
      rt.other,
      rt.duplicateCommands,
      rt.agentsWithCommand,
    ],
    [800, 1, 1, 0, 1, 2],
  );
  assert.deepEqual(
    rt.batches.map((x) => [x.releasedAfterMs, x.lastResultMs]),
    [
      [10, 290],
      [400, 400],
    ],
  );
  // Release of the agent's batch → arrival: a 40 ms, b 20 and 30 ms.
  assert.deepEqual([rt.commandMs.count, rt.commandMs.max], [3, 40]);
  const withTask = { ...a, rollingTask: rt };
  const merged = mergeReports([withTask, b]);
  assert.deepEqual(merged.rollingTask, rt);
  assert.deepEqual(mergeReports([merged, parseReport(JSON.parse(JSON.stringify(merged)))]).rollingTask, rt);
  assert.throws(
    () => mergeReports([withTask, { ...b, rollingTask: rollingTaskReport(run('t2'), [], 0) }]),
    /several reports carry a rolling task \(t1, t2\)/,
  );
});
