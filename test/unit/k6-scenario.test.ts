import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { prng } from '../../loadtest/bench/payloads.js';
import { EVENT_MIX, pickEvent, SCENARIOS, scenarioJson } from '../../loadtest/sim/scenario.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('loadtest/k6/scenario.json is generated from the simulator scenario module (npm run gen:k6)', () => {
  assert.equal(readFileSync(path.join(root, 'loadtest/k6/scenario.json'), 'utf8'), scenarioJson());
});

test('scenarios are bounded and the event mix is a distribution', () => {
  for (const s of Object.values(SCENARIOS)) {
    assert.ok(s.durationS > 0 && s.durationS <= 3600, `${s.name} bounded`);
    assert.ok(s.rampS <= s.durationS);
    if (s.disrupt) assert.ok(s.disrupt.atS < s.durationS);
  }
  const sum = EVENT_MIX.reduce((a, e) => a + e.weight, 0);
  assert.ok(Math.abs(sum - 1) < 1e-9);
  const rand = prng(7);
  const counts = new Map<number, number>();
  for (let i = 0; i < 20_000; i++) {
    const e = pickEvent(rand);
    counts.set(e.dataType, (counts.get(e.dataType) ?? 0) + 1);
  }
  for (const e of EVENT_MIX) assert.ok(Math.abs((counts.get(e.dataType) ?? 0) / 20_000 - e.weight) < 0.02);
});

test('the k6 script reads the shared scenario file and the project proto', () => {
  const script = readFileSync(path.join(root, 'loadtest/k6/agents.js'), 'utf8');
  assert.match(script, /open\('\.\/scenario\.json'\)/);
  assert.match(script, /client\.load\(\['\.\.\/\.\.\/proto'\], 'elkeid\.proto'\)/);
  assert.match(script, /grpc\.Transfer\/Transfer/);
});

/** What `bench:fleet` measured of its simulator processes, in a committed result file. */
function simulatorCost(file: string) {
  const doc = JSON.parse(readFileSync(path.join(root, 'loadtest/results', file), 'utf8'));
  const value = (name: string) => doc.results.find((r: { name: string }) => r.name === name)?.value as number;
  const agents = value('fleet.agents_held');
  const cpuPct = value('fleet.sim_cpu_pct');
  const usPerAgentS = Math.round((cpuPct * 1e4 * 10) / agents) / 10;
  return {
    rate: doc.config.rate as number,
    agents,
    processes: doc.config.processes as number,
    cpuPct,
    usPerAgentS,
    perCore: Math.round(1e6 / usPerAgentS / 100) * 100,
    perCore70: Math.round(7e5 / usPerAgentS / 100) * 100,
    lagMs: Math.round(value('fleet.sim_loop_lag_p99_max_ms')),
  };
}

test("docs/capacity.md's load-fleet table is what loadtest/results says the simulator cost", () => {
  const doc = readFileSync(path.join(root, 'docs/capacity.md'), 'utf8');
  const open = '<!-- loadgen:measured -->';
  const body = doc.slice(doc.indexOf(open) + open.length, doc.indexOf('<!-- /loadgen:measured -->'));
  const rows = body
    .trim()
    .split('\n')
    .slice(2)
    .map((l) => l.split('|').map((c) => c.trim()));
  assert.equal(rows.length, 5);
  const n = (x: number) => x.toLocaleString('en-US');
  const worst = new Map<number, number>();
  for (const cells of rows) {
    const file = cells[2]!.split(' ')[0]!;
    const c = simulatorCost(file);
    assert.equal(cells[1], String(c.rate), file);
    assert.equal(cells[3], `${n(c.agents)} (${c.processes})`, file);
    assert.match(cells[4]!, new RegExp(`^${c.cpuPct} %`), file);
    assert.equal(cells[5], `${c.usPerAgentS.toFixed(1)} µs`, file);
    assert.equal(cells[6], `${n(c.perCore)} / ${n(c.perCore70)}`, file);
    assert.equal(cells[7], `${n(c.lagMs)} ms`, file);
    worst.set(c.rate, Math.max(worst.get(c.rate) ?? 0, c.usPerAgentS));
  }
  // The million-agent plan uses the worst run of each rate.
  for (const [rate, us] of worst) {
    const cores = Math.round(us);
    assert.ok(
      doc.includes(`| ${rate} |`) && doc.includes(`≈ ${cores} cores (${us.toFixed(1)} µs × 1M)`),
      `${rate}`,
    );
    assert.ok(
      doc.includes(`CPU allows ${n(Math.round(7e5 / us / 100) * 100)}`),
      `${rate}: per-process CPU bound`,
    );
  }
});
