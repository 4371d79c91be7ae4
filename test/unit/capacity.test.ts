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
  DOC_PATH,
  docTables,
  loadMeasured,
  type Measured,
  messagesPerAgentS,
  payloadMix,
  root,
  size,
  TFVARS_PATH,
  terraformSizing,
  tfvarsJson,
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

const tfRoot = path.join(root, 'infra', 'terraform');
const exampleDir = path.join(tfRoot, 'examples', 'million-agents');
const declared = (file: string) =>
  new Set([...readFileSync(file, 'utf8').matchAll(/^variable "(\w+)"/gm)].map((m) => m[1]!));

test('the million-agents example carries the sizing the model computes (npm run capacity -- --write)', () => {
  const have = readFileSync(TFVARS_PATH, 'utf8');
  assert.equal(
    have,
    tfvarsJson(measured, mix),
    `${path.relative(root, TFVARS_PATH)} has drifted from the model: run npm run capacity -- --write`,
  );
  // The same numbers as docs/capacity.md's 1M-agent row at the steady rate.
  const vars = terraformSizing(measured, mix);
  const s = size(measured, mix, 1_000_000, Number(vars.records_per_agent_per_second));
  assert.equal(vars.gateway_count, s.gateways);
  assert.equal(vars.gateway_max_connections, s.perGateway.chosen);
  assert.equal(vars.kafka_partitions, s.kafka.partitions);
  assert.equal(vars.gateway_cpu, ASSUMPTIONS.gatewayVcpu * 1024);
  assert.equal(vars.gateway_memory, ASSUMPTIONS.gatewayMemGiB * 1024);
  assert.ok(
    Number(vars.gateway_count) * Number(vars.gateway_max_connections) >= Number(vars.expected_agents),
  );
});

test('every variable of capacity.auto.tfvars.json is declared by the example, passed to the root module, and declared there', () => {
  const vars = Object.keys(JSON.parse(readFileSync(TFVARS_PATH, 'utf8')) as object);
  const example = declared(path.join(exampleDir, 'variables.tf'));
  const rootVars = declared(path.join(tfRoot, 'variables.tf'));
  const main = readFileSync(path.join(exampleDir, 'main.tf'), 'utf8');
  for (const v of vars) {
    assert.ok(example.has(v), `examples/million-agents/variables.tf does not declare ${v}`);
    assert.ok(rootVars.has(v), `infra/terraform/variables.tf does not declare ${v}`);
    assert.match(main, new RegExp(`^\\s*${v}\\s*=\\s*var\\.${v}\\s*$`, 'm'), `main.tf: ${v} = var.${v}`);
  }
});

test("sizing.tf's bench_* locals are docs/capacity.md's measured figures", () => {
  const sizing = readFileSync(path.join(tfRoot, 'sizing.tf'), 'utf8');
  const local = (name: string) => {
    const m = new RegExp(`^\\s*${name}\\s*=\\s*(\\d+)`, 'm').exec(sizing);
    assert.ok(m, `sizing.tf: ${name}`);
    return Number(m[1]);
  };
  const rssKB = Math.max(measured.rssPerAgentIdleKB.value, measured.rssPerAgentStreamingKB?.value ?? 0);
  assert.equal(local('bench_rss_per_agent_bytes'), Math.round(rssKB * 1024));
  assert.equal(local('bench_handshakes_per_cpu_s'), Math.round(measured.handshakesPerCpuS.value));
  assert.equal(local('bench_records_per_cpu_s'), Math.round(measured.batchedRecordsPerCpuS.value));
  assert.equal(local('bench_ingest_per_cpu_s'), Math.round(measured.ingestRecordsPerCpuS.value));
});
