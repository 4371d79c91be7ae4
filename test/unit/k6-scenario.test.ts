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
