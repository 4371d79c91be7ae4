/**
 * docs/capacity.md against the model: its generated tables must be what scripts/capacity.ts
 * computes from the committed benchmark JSON (loadtest/results/), and the model must move the
 * right way when its inputs do. The Terraform sizing comes from the same model: the
 * million-agents example's capacity.auto.tfvars.json and sizing.tf's bench_* locals.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  ASSUMPTIONS,
  applyTables,
  CAPACITY_TF_PATH,
  DEPLOY,
  DOC_PATH,
  deploySizing,
  docTables,
  endToEndHeld,
  generatedFiles,
  loadMeasured,
  type Measured,
  messagesPerAgentS,
  payloadMix,
  root,
  size,
  TFVARS_PATH,
  terraformSizing,
} from '../../scripts/capacity.js';

const measured = loadMeasured(path.join(root, 'loadtest', 'results'));
const mix = payloadMix();

test('docs/capacity.md carries exactly the tables computed from loadtest/results (npm run capacity -- --write)', () => {
  const doc = readFileSync(DOC_PATH, 'utf8');
  const expected = applyTables(doc, docTables(measured, mix));
  if (expected !== doc) {
    const a = doc.split('\n');
    const b = expected.split('\n');
    const i = a.findIndex((line, k) => line !== b[k]);
    assert.fail(
      `docs/capacity.md has drifted from the model at line ${i + 1}:\n  doc:   ${a[i]}\n  model: ${b[i]}\nrun npm run capacity -- --write`,
    );
  }
});

test('every generated table has its markers, and a missing marker is an error', () => {
  const tables = docTables(measured, mix);
  assert.ok(Object.keys(tables).length >= 8);
  assert.throws(() => applyTables('# no markers here\n', tables), /markers/);
  const doc = '<!-- capacity:sizing -->\nold\n<!-- /capacity:sizing -->\n';
  assert.equal(
    applyTables(doc, { sizing: 'new' }),
    '<!-- capacity:sizing -->\nnew\n<!-- /capacity:sizing -->\n',
  );
});

test('gateways grow with agents and with the event rate; storms settle faster with more handshakes', () => {
  const small = size(measured, mix, 100_000, 2);
  const big = size(measured, mix, 1_000_000, 2);
  // Same rate, same per-gateway capacity: ten times the agents, ten times the gateways (rounded up).
  assert.equal(big.perGateway.chosen, small.perGateway.chosen);
  assert.equal(big.gateways, Math.ceil(1_000_000 / big.perGateway.chosen));
  assert.ok(big.gateways >= 10 * (small.gateways - 1), `${big.gateways} vs ${small.gateways}`);
  const quiet = size(measured, mix, 1_000_000, 0.25);
  assert.ok(big.cpuUsPerAgentS > quiet.cpuUsPerAgentS);
  assert.ok(big.kafka.mbPerS > 5 * quiet.kafka.mbPerS);
  assert.ok(big.dynamo.monthlyUsd > 0);
  const faster: Measured = {
    ...measured,
    handshakesPerCpuS: { ...measured.handshakesPerCpuS, value: measured.handshakesPerCpuS.value * 2 },
    ...(measured.stormReadmitPerCpuS
      ? {
          stormReadmitPerCpuS: {
            ...measured.stormReadmitPerCpuS,
            value: measured.stormReadmitPerCpuS.value * 2,
          },
        }
      : {}),
  };
  const a = size(measured, mix, 1_000_000, 0.25);
  const b = size(faster, mix, 1_000_000, 0.25);
  if (a.gateways === b.gateways) {
    const work = (s: typeof a) => s.stormSettleS - 2 * ASSUMPTIONS.reconnectDelayS;
    assert.ok(Math.abs(work(b) - work(a) / 2) < 1e-6);
  }
  assert.ok(
    b.perGateway.storm === 2 * a.perGateway.storm || b.perGateway.storm === 2 * a.perGateway.storm + 1,
  );
});

test('messages per agent: one per non-empty 100 ms tick, at most ten a second, plus the heartbeat', () => {
  assert.ok(Math.abs(messagesPerAgentS(0) - 1 / 60) < 1e-9);
  assert.ok(messagesPerAgentS(0.25) < 0.25 + 1 / 60);
  assert.ok(messagesPerAgentS(1000) <= 10 + 1 / 60);
  assert.ok(messagesPerAgentS(2) > messagesPerAgentS(1));
});

test('record sizes come from the event mix as MQData', () => {
  assert.ok(mix.eventValueBytes > 500 && mix.eventValueBytes < 1200, `${mix.eventValueBytes}`);
  assert.ok(mix.heartbeatValueBytes > mix.eventValueBytes);
  assert.ok(mix.lz4Ratio > 0 && mix.lz4Ratio < 1);
});

test('every file npm run capacity -- --write generates is committed as the model computes it', () => {
  const files = generatedFiles(measured, mix, (f) => readFileSync(f, 'utf8'));
  // docs/capacity.md, the two deploy tables, capacity.tf.json, the tfvars, two expected files.
  assert.ok(files.size >= 7, `${files.size} files`);
  for (const [file, want] of files) {
    const have = readFileSync(file, 'utf8');
    if (have !== want) {
      const a = have.split('\n');
      const b = want.split('\n');
      const i = a.findIndex((line, k) => line !== b[k]);
      assert.fail(
        `${path.relative(root, file)} has drifted from the model at line ${i + 1}:\n  file:  ${a[i]}\n  model: ${b[i]}\nrun npm run capacity -- --write`,
      );
    }
  }
  assert.ok(files.has(TFVARS_PATH));
  assert.ok(files.has(CAPACITY_TF_PATH));
});

test('the million-agent deployment: a zone of headroom, within what was held end to end, a multiple of the zones', () => {
  const rate = Number(terraformSizing(measured, mix).records_per_agent_per_second);
  const d = deploySizing(measured, mix, 1_000_000, rate);
  const s = size(measured, mix, 1_000_000, rate);
  assert.equal(d.limit, s.perGateway.chosen, 'the limit is the model agents per gateway');
  assert.ok(d.planned <= Math.floor((d.limit * 2) / 3), `planned ${d.planned} leaves a zone of headroom`);
  const held = endToEndHeld(measured, rate);
  assert.ok(held, 'an end-to-end run at this rate or above');
  assert.ok(d.planned <= held.agents, `planned ${d.planned} <= held ${held.agents}`);
  assert.equal(d.gateways % DEPLOY.azs, 0);
  assert.ok(d.gateways * d.planned >= 1_000_000);
  assert.ok(d.agentsPerGateway < d.limit, 'no gateway starts at its limit');
  assert.ok(d.zoneLossCpu <= ASSUMPTIONS.cpuTarget + 0.01, `zone loss CPU ${d.zoneLossCpu}`);
  assert.ok(d.steadyCpu < d.zoneLossCpu);
  assert.equal(d.maxGateways, d.gateways * DEPLOY.maxScaleFactor);
  // The storm's writes within the spread need more than a new table's warm floor at 1M.
  assert.ok(d.warm.write > DEPLOY.dynamoWarmFloor.write);
  assert.equal(deploySizing(measured, mix, 1000, rate).warm.write, DEPLOY.dynamoWarmFloor.write);
});

test('an end-to-end run caps the planned load: fewer agents held, fewer planned, more gateways', () => {
  const rate = 2;
  const base = deploySizing(measured, mix, 1_000_000, rate);
  const fleetOther = measured.fleetOther.map((o) =>
    o.file !== 'fleet-high-rate.json'
      ? o
      : {
          ...o,
          doc: {
            ...o.doc,
            results: o.doc.results.map((r) => (r.name === 'fleet.agents_held' ? { ...r, value: 3000 } : r)),
          },
        },
  );
  const capped = deploySizing({ ...measured, fleetOther }, mix, 1_000_000, rate);
  assert.equal(capped.planned, 3000);
  assert.match(capped.plannedBy, /held end to end/);
  assert.ok(capped.gateways > base.gateways);
  // No run at or above the rate: the zone headroom alone.
  assert.equal(endToEndHeld(measured, 1000), undefined);
});
