/**
 * `npm run capacity`: the capacity model of docs/capacity.md, computed from the benchmark JSON
 * committed under loadtest/results/ (bench:gateway, bench:ingest, bench:discovery, bench:fleet)
 * plus stated assumptions. `--write` rewrites the tables between the markers
 * `<!-- capacity:NAME -->` … `<!-- /capacity:NAME -->` of docs/capacity.md;
 * test/unit/capacity.test.ts recomputes them and fails when the document has drifted.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compressFrameSync } from 'lz4-napi';
import { agentHeader, execRecord, heartbeatRecord, prng } from '../loadtest/bench/payloads.js';
import { AGENT, EVENT_MIX, pickEvent, SCENARIOS } from '../loadtest/sim/scenario.js';
import { grpc } from '../proto/gen/elkeid.js';

// ---- inputs: measured ------------------------------------------------------------------------

interface BenchResult {
  name: string;
  value: number | null;
  unit?: string;
  [k: string]: unknown;
}
interface BenchFile {
  bench: string;
  machine: { cpu: string; cores: number; memory: string; node: string; loadAverageAtStart?: number[] };
  results: BenchResult[];
  baseline?: { name?: string; results?: BenchResult[] };
  config?: Record<string, unknown>;
  finishedAt?: string;
}

/** One measured input: its value and where it came from. */
export interface Measure {
  value: number;
  unit: string;
  source: string;
}

export interface Measured {
  machine: string;
  dates: Record<string, string>;
  rssPerAgentIdleKB: Measure;
  rssPerAgentStreamingKB?: Measure;
  handshakesPerCpuS: Measure;
  batchedRecordsPerCpuS: Measure;
  ingestRecordsPerCpuS: Measure;
  fleetCpuUsPerAgentS?: Measure;
  fleetRate?: number;
  /**
   * A second bench:fleet point at another event rate (loadtest/results/fleet-high-rate.json):
   * with it, gateway CPU per agent is fitted as a fixed part (pings, heartbeats, timers, GC of the
   * agent's state) plus a part per message, instead of all of it per message.
   */
  fleetHighRate?: { cpuUs: Measure; rate: number };
  /**
   * Agents re-admitted per gateway CPU-second in a storm that settled, under the other agents'
   * traffic (loadtest/results/fleet-storm.json): the storm cap uses the lower of this and
   * bench:gateway's clean handshake rate.
   */
  stormReadmitPerCpuS?: Measure;
  fleetAgentsHeld?: Measure;
  fleetStorm?: { agents: number; allBackS: number | null; back99S: number | null; source: string };
  discoveryReqPerCpuS: Measure;
  fleet?: BenchFile;
  /** Further bench:fleet runs (loadtest/results/fleet-*.json): shown, not used by the model. */
  fleetOther: Array<{ file: string; doc: BenchFile }>;
}

function readBench(dir: string, name: string, required: true): BenchFile;
function readBench(dir: string, name: string, required: false, bench?: string): BenchFile | undefined;
function readBench(dir: string, name: string, required: boolean, bench = name): BenchFile | undefined {
  const file = path.join(dir, `${name}.json`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (!required) return undefined;
    throw new Error(`${file}: ${(err as Error).message} (run npm run bench:${bench} -- --json ${file})`);
  }
  const doc = JSON.parse(text) as BenchFile;
  if (doc.bench !== bench) throw new Error(`${file}: bench is ${JSON.stringify(doc.bench)}, not ${bench}`);
  return doc;
}

function pick(doc: BenchFile, name: string, unit?: string): Measure {
  const r = doc.results.find((x) => x.name === name);
  if (!r || typeof r.value !== 'number' || !Number.isFinite(r.value) || r.value <= 0)
    throw new Error(`loadtest/results/${doc.bench}.json: no positive result ${name}`);
  return { value: r.value, unit: unit ?? r.unit ?? '', source: `bench:${doc.bench} ${name}` };
}

export function loadMeasured(dir: string): Measured {
  const gateway = readBench(dir, 'gateway', true);
  const ingest = readBench(dir, 'ingest', true);
  const discovery = readBench(dir, 'discovery', true);
  const fleet = readBench(dir, 'fleet', false);
  const fleetHigh = readBench(dir, 'fleet-high-rate', false, 'fleet');
  const fleetStormRun = readBench(dir, 'fleet-storm', false, 'fleet');
  const m = gateway.machine;
  const out: Measured = {
    machine: `${m.cpu}, ${m.cores} cores, ${m.memory}, Node ${m.node.replace(/^v/, '')}`,
    dates: Object.fromEntries(
      [gateway, ingest, discovery, ...(fleet ? [fleet] : [])].map((d) => [
        d.bench,
        (d.finishedAt ?? '').slice(0, 10),
      ]),
    ),
    rssPerAgentIdleKB: pick(gateway, 'idle.rss_per_agent'),
    handshakesPerCpuS: pick(gateway, 'handshakes.per_cpu_s'),
    batchedRecordsPerCpuS: pick(gateway, 'records.snappy.per_cpu_s'),
    // Paced (10k records/s, not saturated) is what a gateway in steady state sees; inline: one thread.
    ingestRecordsPerCpuS: pick(ingest, 'inline.paced.records_per_cpu_s'),
    discoveryReqPerCpuS: pick(discovery, 'detail.closed.per_server_cpu_s'),
    fleetOther: readdirSync(dir)
      .filter((f) => /^fleet-.+\.json$/.test(f))
      .sort()
      .map((f) => ({ file: f, doc: JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as BenchFile })),
  };
  const settled = fleetStormRun?.results.find((r) => r.name === 'fleet.storm_all_back_s');
  if (fleetStormRun && settled && settled.value !== null) {
    const r = pick(fleetStormRun, 'fleet.storm_handshakes_per_cpu_s');
    out.stormReadmitPerCpuS = { ...r, source: `${r.source} (fleet-storm.json)` };
  }
  if (fleet) {
    out.fleet = fleet;
    out.rssPerAgentStreamingKB = pick(fleet, 'fleet.rss_per_agent');
    out.fleetCpuUsPerAgentS = pick(fleet, 'fleet.cpu_us_per_agent_s');
    out.fleetAgentsHeld = pick(fleet, 'fleet.agents_held');
    out.fleetRate = Number(fleet.config?.rate ?? SCENARIOS.steady!.eventsPerAgentPerS);
    if (fleetHigh) {
      const cpuUs = pick(fleetHigh, 'fleet.cpu_us_per_agent_s');
      out.fleetHighRate = {
        cpuUs: { ...cpuUs, source: `${cpuUs.source} (fleet-high-rate.json)` },
        rate: Number(fleetHigh.config?.rate ?? SCENARIOS.steady!.eventsPerAgentPerS),
      };
    }
    // The storm to check the model against: the dedicated storm run's, else the headline run's.
    const stormDoc = fleetStormRun ?? fleet;
    const storm = stormDoc.results.find((r) => r.name === 'fleet.storm_all_back_s');
    if (storm) {
      out.fleetStorm = {
        agents: Number(storm.agents),
        allBackS: storm.value,
        back99S: typeof storm.back99S === 'number' ? storm.back99S : null,
        source: `bench:fleet fleet.storm_all_back_s${fleetStormRun ? ' (fleet-storm.json)' : ''}`,
      };
    }
  }
  return out;
}

// ---- inputs: payload mix (computed) ------------------------------------------------------------

export interface PayloadMix {
  /** Mean MQData value bytes of an event of the mix. */
  eventValueBytes: number;
  /** MQData value bytes of an agent heartbeat (data_type 1000). */
  heartbeatValueBytes: number;
  /** Kafka record bytes added per record: key (AgentID) and record framing. */
  recordOverheadBytes: number;
  /** Compressed / uncompressed, lz4 frame over 1,000 records of the mix (one batch). */
  lz4Ratio: number;
}

/** Encodes MQData records of the simulator's event mix as the gateway writes them to Kafka. */
export function payloadMix(samples = 1000): PayloadMix {
  const rand = prng(42);
  const header = agentHeader('5e5a0c1e-1d7e-4f5b-9a55-3c6a3b0c9f21', 1234);
  const now = 1_760_000_000;
  const mq = (r: grpc.Record.$Properties) =>
    grpc.MQData.encode({
      DataType: r.DataType ?? 0,
      AgentTime: now,
      Body: r.Body ?? new Uint8Array(0),
      AgentID: header.AgentID ?? '',
      IntranetIPv4: (header.IntranetIPv4 ?? []).join(','),
      ExtranetIPv4: '',
      IntranetIPv6: (header.IntranetIPv6 ?? []).join(','),
      ExtranetIPv6: '',
      Hostname: header.Hostname ?? '',
      Version: AGENT.version,
      Product: AGENT.product,
      SvrTime: now,
      PSMName: '',
      PSMPath: '',
      Tag: '',
    }).finish();
  const values: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < samples; i++) {
    const kind = pickEvent(rand);
    const r = execRecord(rand, now, header.Hostname ?? '', kind.bytes);
    r.DataType = kind.dataType;
    const v = mq(r);
    values.push(v);
    total += v.length;
  }
  const batch = Buffer.concat(values);
  return {
    eventValueBytes: Math.round(total / samples),
    heartbeatValueBytes: mq(heartbeatRecord(rand, now)).length,
    // key: a 36-character AgentID; record framing (length, attributes, deltas, key/value lengths,
    // header count) ≈ 8 bytes of varints; the RecordBatch header (61 B) is spread over the batch.
    recordOverheadBytes: (header.AgentID ?? '').length + 8,
    lz4Ratio: Number((compressFrameSync(batch).length / batch.length).toFixed(3)),
  };
}

// ---- inputs: assumptions -----------------------------------------------------------------------

export const ASSUMPTIONS = {
  gatewayVcpu: 1,
  gatewayMemGiB: 2,
  /** Steady-state CPU kept below this share, for bursts, GC and the loss of a neighbour. */
  cpuTarget: 0.6,
  /** Share of the task memory given to agent connections (the rest: heap headroom, buffers). */
  memTarget: 0.7,
  /** A full reconnect storm should settle within this (the design goal, docs/capacity.md). */
  stormGoalS: 60,
  /** Elkeid agents redial after a fixed 5 s. */
  reconnectDelayS: SCENARIOS.steady!.reconnectDelayMs / 1000,
  /** An agent gives up a dial (TCP + mTLS + HTTP/2) after this and redials 5 s later. */
  dialTimeoutS: AGENT.dialTimeoutMs / 1000,
  heartbeatS: AGENT.heartbeatS,
  /** Agent item size in DynamoDB (docs/manager.md): 3 WCU per item write. */
  agentItemKB: 3,
  /** Mean interval of an unchanged agent's refresh write (10 min + U(0, 60 s)). */
  refreshS: 630,
  /** How often an agent reconnects in steady state (agent restarts, network blips). */
  reconnectsPerAgentPerDay: 1,
  /** Item writes per connection: connect, first heartbeat, disconnect (docs/manager.md). */
  writesPerConnection: 3,
  gatewayAggregateS: 30,
  gatewayAggregateWcu: 10,
  registryRenewS: 5,
  registryNamesPerGateway: 2,
  registryItemBytes: 250,
  discoveryProcesses: 3,
  /** Kafka: planning write throughput per partition, and the floor (Elkeid's elkeidup default). */
  kafkaPartitionMBps: 10,
  kafkaMinPartitions: 12,
  kafkaReplication: 3,
  /** DynamoDB on-demand, us-east-1, after the 2024-11-01 price cut (docs/capacity.md §6). */
  prices: {
    region: 'us-east-1',
    asOf: '2024-11-01',
    wruPerMillion: 0.625,
    rruPerMillion: 0.125,
    storageGbMonth: 0.25,
  },
  hoursPerMonth: 730,
};
export type Assumptions = typeof ASSUMPTIONS;

// ---- the model ---------------------------------------------------------------------------------

export interface Sizing {
  agents: number;
  rate: number;
  msgsPerAgentS: number;
  cpuUsPerAgentS: number;
  perGateway: { cpu: number; memory: number; storm: number; chosen: number; binding: string };
  gateways: number;
  vcpu: number;
  memGiB: number;
  stormSettleS: number;
  discoveryCoresForStorm: number;
  dynamo: {
    wcuPerS: number;
    rcuPerS: number;
    wruPerMonthM: number;
    rruPerMonthM: number;
    storageGB: number;
    monthlyUsd: number;
    stormWru: number;
    stormUsd: number;
  };
  kafka: {
    recordsPerS: number;
    bytesPerRecord: number;
    mbPerS: number;
    mbPerSCompressed: number;
    partitions: number;
    bytesPerAgentS: number;
    tbPerDayReplicated: number;
  };
}

/** Non-empty 100 ms ticks per second for Poisson events at `rate`/s, plus the heartbeat's. */
export function messagesPerAgentS(rate: number, heartbeatS = ASSUMPTIONS.heartbeatS): number {
  const ticksPerS = 1000 / AGENT.sendTickMs;
  return ticksPerS * (1 - Math.exp(-rate / ticksPerS)) + 1 / heartbeatS;
}

/** Gateway CPU µs per agent-second at `rate`, with Kafka produce cost. */
/** Agents one gateway core re-admits per second in a storm: the clean handshake rate, or the rate measured in a settled bench:fleet storm if lower. */
export function readmitPerCpuS(m: Measured): number {
  return Math.min(m.handshakesPerCpuS.value, m.stormReadmitPerCpuS?.value ?? Number.POSITIVE_INFINITY);
}

/**
 * Seconds until all `agents` are back after they all lost their gateways at once: 5 s until they
 * redial, each gateway's share of handshakes at its re-admission rate, and one more 5 s cycle for
 * the last agents admission refused.
 */
export function stormSettleS(
  m: Measured,
  agents: number,
  gateways: number,
  a: Assumptions = ASSUMPTIONS,
): number {
  return 2 * a.reconnectDelayS + agents / (gateways * a.gatewayVcpu * readmitPerCpuS(m));
}

/** The terms of gateway CPU per agent-second: a fixed part, per message, per extra record, per Kafka record (µs). */
export function cpuTerms(m: Measured, a: Assumptions = ASSUMPTIONS) {
  const batchedUs = 1e6 / m.batchedRecordsPerCpuS.value;
  // The pipeline + Kafka producer's own cost per record: ingest (with Kafka) minus the gateway
  // bench's records (counting sink), both at 20 records per message.
  const kafkaUs = Math.max(0, 1e6 / m.ingestRecordsPerCpuS.value - batchedUs);
  // Cost of one small message (one tick of one agent, TLS + HTTP/2 + decode + session), from
  // bench:fleet; without it, the batched per-record cost (optimistic: no per-message overhead).
  const fleetMsgs = m.fleetRate !== undefined ? messagesPerAgentS(m.fleetRate, a.heartbeatS) : 0;
  let fixedUs = 0;
  let perMsgUs = m.fleetCpuUsPerAgentS && fleetMsgs > 0 ? m.fleetCpuUsPerAgentS.value / fleetMsgs : batchedUs;
  // Two bench:fleet points at different rates: a line through them (fixed + per message).
  const hi = m.fleetHighRate;
  if (m.fleetCpuUsPerAgentS && hi && m.fleetRate !== undefined) {
    const hiMsgs = messagesPerAgentS(hi.rate, a.heartbeatS);
    if (Math.abs(hiMsgs - fleetMsgs) > 1e-9) {
      const slope = (hi.cpuUs.value - m.fleetCpuUsPerAgentS.value) / (hiMsgs - fleetMsgs);
      if (slope > 0) {
        perMsgUs = slope;
        fixedUs = Math.max(0, m.fleetCpuUsPerAgentS.value - slope * fleetMsgs);
      }
    }
  }
  return { fixedUs, perMsgUs, batchedUs, kafkaUs };
}

export function cpuPerAgent(m: Measured, rate: number, a: Assumptions = ASSUMPTIONS): number {
  const t = cpuTerms(m, a);
  const msgs = messagesPerAgentS(rate, a.heartbeatS);
  const records = rate + 1 / a.heartbeatS;
  const extraRecords = Math.max(0, records - msgs);
  return t.fixedUs + msgs * t.perMsgUs + extraRecords * t.batchedUs + records * t.kafkaUs;
}

export function size(
  m: Measured,
  mix: PayloadMix,
  agents: number,
  rate: number,
  a: Assumptions = ASSUMPTIONS,
): Sizing {
  const cpuUs = cpuPerAgent(m, rate, a);
  const rssKB = Math.max(m.rssPerAgentIdleKB.value, m.rssPerAgentStreamingKB?.value ?? 0);
  const perCpu = Math.floor((a.gatewayVcpu * a.cpuTarget * 1e6) / cpuUs);
  const perMem = Math.floor((a.gatewayMemGiB * 2 ** 30 * a.memTarget) / (rssKB * 1024));
  // All of a gateway's agents redial in the same second after a restart (fixed 5 s, no jitter).
  // The gateway admits a bounded number of handshakes at a time (FLEETGATE_MAX_PENDING_HANDSHAKES)
  // and resets the rest before any TLS work, so none of its work is lost to the agents' 15 s dial
  // timeout; the refused retry 5 s later. It re-admits at its full handshake rate, and the last
  // agents may wait one more 5 s cycle: a gateway holds what it re-admits in the goal minus two
  // reconnect delays.
  const perStorm = Math.floor((a.stormGoalS - 2 * a.reconnectDelayS) * readmitPerCpuS(m) * a.gatewayVcpu);
  const chosen = Math.min(perCpu, perMem, perStorm);
  const binding = chosen === perCpu ? 'CPU' : chosen === perMem ? 'memory' : 'storm';
  const gateways = Math.max(1, Math.ceil(agents / chosen));
  const settleS = stormSettleS(m, agents, gateways, a);
  // Everyone asks discovery once, within the 5 s before they redial.
  const discoveryCoresForStorm = agents / a.reconnectDelayS / m.discoveryReqPerCpuS.value;

  const wcu = a.agentItemKB;
  const refreshW = agents / a.refreshS;
  const connW = (agents * a.reconnectsPerAgentPerDay * a.writesPerConnection) / 86400;
  const wcuPerS =
    (refreshW + connW) * wcu +
    (gateways / a.gatewayAggregateS) * a.gatewayAggregateWcu +
    (gateways * a.registryNamesPerGateway) / a.registryRenewS;
  const registryQueryRcu = Math.max(0.5, Math.ceil((gateways * a.registryItemBytes) / 4096) * 0.5);
  const rcuPerS = refreshW * 0.5 + a.discoveryProcesses * registryQueryRcu;
  const secondsPerMonth = a.hoursPerMonth * 3600;
  const wruPerMonthM = (wcuPerS * secondsPerMonth) / 1e6;
  const rruPerMonthM = (rcuPerS * secondsPerMonth) / 1e6;
  const storageGB = (agents * a.agentItemKB) / 1e6;
  const monthlyUsd =
    wruPerMonthM * a.prices.wruPerMillion +
    rruPerMonthM * a.prices.rruPerMillion +
    storageGB * a.prices.storageGbMonth;
  const stormWru = agents * a.writesPerConnection * wcu;

  const heartbeatRecords = 1 / a.heartbeatS;
  const recordsPerS = agents * (rate + heartbeatRecords);
  const bytesPerAgentS =
    rate * (mix.eventValueBytes + mix.recordOverheadBytes) +
    heartbeatRecords * (mix.heartbeatValueBytes + mix.recordOverheadBytes);
  const mbPerS = (agents * bytesPerAgentS) / 1e6;
  return {
    agents,
    rate,
    msgsPerAgentS: messagesPerAgentS(rate, a.heartbeatS),
    cpuUsPerAgentS: cpuUs,
    perGateway: { cpu: perCpu, memory: perMem, storm: perStorm, chosen, binding },
    gateways,
    vcpu: gateways * a.gatewayVcpu,
    memGiB: gateways * a.gatewayMemGiB,
    stormSettleS: settleS,
    discoveryCoresForStorm,
    dynamo: {
      wcuPerS,
      rcuPerS,
      wruPerMonthM,
      rruPerMonthM,
      storageGB,
      monthlyUsd,
      stormWru,
      stormUsd: (stormWru / 1e6) * a.prices.wruPerMillion,
    },
    kafka: {
      recordsPerS,
      bytesPerRecord: bytesPerAgentS / (rate + heartbeatRecords),
      mbPerS,
      mbPerSCompressed: mbPerS * mix.lz4Ratio,
      partitions: Math.max(a.kafkaMinPartitions, Math.ceil(mbPerS / a.kafkaPartitionMBps)),
      bytesPerAgentS,
      tbPerDayReplicated: (mbPerS * mix.lz4Ratio * 86400 * a.kafkaReplication) / 1e6,
    },
  };
}

// ---- rendering ---------------------------------------------------------------------------------

const n0 = (v: number) => Math.round(v).toLocaleString('en-US');
const n1 = (v: number) => v.toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const n2 = (v: number) => v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const usd = (v: number) => `$${v < 100 ? n2(v) : n0(v)}`;
const short = (v: number) => (v >= 1e6 ? `${n0(v / 1e6)}M` : v >= 1e3 ? `${n0(v / 1e3)}k` : n0(v));

function mdTable(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

export const DOC_FLEETS: ReadonlyArray<{ agents: number; rate: number }> = [
  { agents: 10_000, rate: 0.25 },
  { agents: 100_000, rate: 0.25 },
  { agents: 1_000_000, rate: 0.25 },
  { agents: 10_000, rate: 2 },
  { agents: 100_000, rate: 2 },
  { agents: 1_000_000, rate: 2 },
];

export function sizingTable(rows: Sizing[]): string {
  return mdTable(
    [
      'agents',
      'events/agent/s',
      'gateway CPU µs/agent-s',
      'agents per gateway (CPU / memory / storm)',
      'gateways at their limit (1 vCPU, 2 GiB)',
      'storm settles in',
      'discovery cores for a storm',
    ],
    rows.map((s) => [
      short(s.agents),
      String(s.rate),
      n1(s.cpuUsPerAgentS),
      `**${n0(s.perGateway.chosen)}** (${n0(s.perGateway.cpu)} / ${n0(s.perGateway.memory)} / ${n0(s.perGateway.storm)}; ${s.perGateway.binding})`,
      n0(s.gateways),
      `${n0(s.stormSettleS)} s`,
      n1(s.discoveryCoresForStorm),
    ]),
  );
}

export function dynamoTable(rows: Sizing[], a: Assumptions = ASSUMPTIONS): string {
  return mdTable(
    [
      'agents',
      'gateways',
      'WCU/s',
      'RCU/s',
      'write units/month',
      'read units/month',
      'storage',
      `on-demand $/month (${a.prices.region}, ${a.prices.asOf})`,
      'one full storm',
    ],
    rows.map((s) => [
      short(s.agents),
      n0(s.gateways),
      n0(s.dynamo.wcuPerS),
      n0(s.dynamo.rcuPerS),
      `${n0(s.dynamo.wruPerMonthM)}M`,
      `${n0(s.dynamo.rruPerMonthM)}M`,
      `${n1(s.dynamo.storageGB)} GB`,
      usd(s.dynamo.monthlyUsd),
      `${short(s.dynamo.stormWru)} WRU = ${usd(s.dynamo.stormUsd)}`,
    ]),
  );
}

export function kafkaTable(rows: Sizing[], a: Assumptions = ASSUMPTIONS): string {
  return mdTable(
    [
      'agents',
      'events/agent/s',
      'records/s',
      'bytes/record',
      'bytes/agent-s',
      'MB/s in',
      'MB/s lz4',
      `partitions (${a.kafkaPartitionMBps} MB/s each, ≥ ${a.kafkaMinPartitions})`,
      `TB/day stored (lz4, ×${a.kafkaReplication})`,
    ],
    rows.map((s) => [
      short(s.agents),
      String(s.rate),
      n0(s.kafka.recordsPerS),
      n0(s.kafka.bytesPerRecord),
      n0(s.kafka.bytesPerAgentS),
      n1(s.kafka.mbPerS),
      n1(s.kafka.mbPerSCompressed),
      n0(s.kafka.partitions),
      n2(s.kafka.tbPerDayReplicated),
    ]),
  );
}

export function stormTable(m: Measured, a: Assumptions = ASSUMPTIONS): string {
  const n = 1_000_000;
  const rows = [50, 100, 125, 200, 400].map((g) => {
    const each = n / g;
    const s = stormSettleS(m, n, g, a);
    const verdict = `${n0(s)} s${s > a.stormGoalS ? ` (over the ${a.stormGoalS} s goal)` : ''}`;
    return [n0(g), `${n0(g * a.gatewayVcpu)}`, n0(each), verdict];
  });
  const lines = [mdTable(['gateways', 'vCPU', 'agents each', 'all 1M back after'], rows)];
  if (m.fleetStorm) {
    const predicted = stormSettleS(m, m.fleetStorm.agents, 1, a);
    lines.push(
      '',
      `Check against bench:fleet (its gateway processes sharing 2 cores with the simulator, which does the client half of every handshake): a storm of ${n0(m.fleetStorm.agents)} agents ` +
        (m.fleetStorm.allBackS === null
          ? 'did not settle within its timeout'
          : `settled in ${n1(m.fleetStorm.allBackS)} s`) +
        `; this model, which gives the gateway a whole core, says ${n0(predicted)} s.`,
    );
  }
  return lines.join('\n');
}

export function measuredTable(m: Measured, mix: PayloadMix): string {
  const rows: string[][] = [
    [
      'gateway RSS per idle mTLS agent',
      `${n1(m.rssPerAgentIdleKB.value)} KB`,
      m.rssPerAgentIdleKB.source,
      'measured here',
    ],
  ];
  if (m.rssPerAgentStreamingKB)
    rows.push([
      'gateway RSS per streaming agent (after GC)',
      `${n1(m.rssPerAgentStreamingKB.value)} KB`,
      m.rssPerAgentStreamingKB.source,
      'measured here',
    ]);
  rows.push(
    [
      'new mTLS agent sessions per gateway CPU-s',
      n0(m.handshakesPerCpuS.value),
      m.handshakesPerCpuS.source,
      'measured here',
    ],
    [
      'records per gateway CPU-s, 20 per message (counting sink)',
      n0(m.batchedRecordsPerCpuS.value),
      m.batchedRecordsPerCpuS.source,
      'measured here',
    ],
    [
      'records per gateway CPU-s into Kafka (inline, paced 10k/s, acks=all)',
      n0(m.ingestRecordsPerCpuS.value),
      m.ingestRecordsPerCpuS.source,
      'measured here',
    ],
  );
  if (m.fleetCpuUsPerAgentS)
    rows.push([
      `gateway CPU per agent at ${m.fleetRate} events/s (small messages, heartbeats)`,
      `${n1(m.fleetCpuUsPerAgentS.value)} µs/agent-s`,
      m.fleetCpuUsPerAgentS.source,
      'measured here',
    ]);
  if (m.stormReadmitPerCpuS)
    rows.push([
      'agents re-admitted per gateway CPU-s in a settled storm, under traffic',
      n0(m.stormReadmitPerCpuS.value),
      m.stormReadmitPerCpuS.source,
      'measured here',
    ]);
  if (m.fleetHighRate)
    rows.push([
      `gateway CPU per agent at ${m.fleetHighRate.rate} events/s (small messages, heartbeats)`,
      `${n1(m.fleetHighRate.cpuUs.value)} µs/agent-s`,
      m.fleetHighRate.cpuUs.source,
      'measured here',
    ]);
  rows.push(
    [
      'discovery /registry/detail per server CPU-s',
      n0(m.discoveryReqPerCpuS.value),
      m.discoveryReqPerCpuS.source,
      'measured here',
    ],
    [
      'MQData bytes per event of the mix',
      n0(mix.eventValueBytes),
      'loadtest/sim/scenario.ts EVENT_MIX, encoded',
      'computed',
    ],
    [
      'MQData bytes per agent heartbeat',
      n0(mix.heartbeatValueBytes),
      'loadtest/bench/payloads.ts heartbeatRecord',
      'computed',
    ],
    [
      'lz4 frame ratio on 1,000 records of the mix',
      n2(mix.lz4Ratio),
      'lz4-napi compressFrameSync',
      'computed',
    ],
  );
  return mdTable(['input', 'value', 'from', 'kind'], rows);
}

export function assumptionsTable(a: Assumptions = ASSUMPTIONS): string {
  return mdTable(
    ['assumption', 'value', 'why'],
    [
      [
        'gateway process size',
        `${a.gatewayVcpu} vCPU, ${a.gatewayMemGiB} GiB`,
        'one Node event loop per process (FLEETGATE_WORKERS=0, measured inline); Elkeid elkeidup gives its AC the same 1C2G',
      ],
      ['CPU target in steady state', `${a.cpuTarget * 100} %`, 'bursts, GC, a neighbour lost'],
      ['memory given to connections', `${a.memTarget * 100} %`, 'heap headroom, receive buffers under load'],
      [
        'reconnect storm goal',
        `${a.stormGoalS} s`,
        'the goal; a gateway takes at most what it re-admits by then',
      ],
      ['agent reconnect delay', `${a.reconnectDelayS} s fixed`, 'stock Elkeid agent'],
      [
        'agent dial timeout',
        `${a.dialTimeoutS} s`,
        'loadtest/sim/scenario.ts AGENT.dialTimeoutMs; the gateway admits 512 handshakes at a time and resets the rest at once (FLEETGATE_MAX_PENDING_HANDSHAKES), so none times out and the refused retry 5 s later: a storm settles in ≤ 2 × 5 s + its handshake work',
      ],
      ['agent item in DynamoDB', `${a.agentItemKB} KB (${a.agentItemKB} WCU per write)`, 'docs/manager.md'],
      [
        'refresh write of an unchanged agent',
        `every ${a.refreshS} s on average`,
        'HeartbeatWriter: 10 min + U(0, 60 s)',
      ],
      [
        'reconnects per agent per day',
        String(a.reconnectsPerAgentPerDay),
        `${a.writesPerConnection} item writes each (connect, first heartbeat, disconnect)`,
      ],
      [
        'gateway aggregate',
        `every ${a.gatewayAggregateS} s, ${a.gatewayAggregateWcu} WCU`,
        'docs/manager.md',
      ],
      [
        'registry renewals',
        `${a.registryNamesPerGateway} names per gateway every ${a.registryRenewS} s, 1 WCU`,
        'docs/discovery.md',
      ],
      [
        'discovery processes refreshing the registry',
        `${a.discoveryProcesses}, one Query per second each`,
        'docs/discovery.md',
      ],
      [
        'DynamoDB on-demand prices',
        `$${a.prices.wruPerMillion}/M write units, $${a.prices.rruPerMillion}/M read units, $${a.prices.storageGbMonth}/GB-month`,
        `${a.prices.region}, after the ${a.prices.asOf} cut (third-party summaries of the AWS price list: re-check)`,
      ],
      [
        'Kafka write throughput per partition',
        `${a.kafkaPartitionMBps} MB/s`,
        'planning figure; Elkeid creates 200 partitions, elkeidup 12',
      ],
      ['month', `${a.hoursPerMonth} h`, ''],
    ],
  );
}

export function anchorsTable(m: Measured, mix: PayloadMix): string {
  const ours = (rate: number) => size(m, mix, 1_000_000, rate);
  const r025 = ours(0.25);
  const r2 = ours(2);
  return mdTable(
    ['system', 'agents per unit', 'for 1M agents', 'vCPU for 1M', 'source'],
    [
      [
        'fleetgate, 0.25 events/agent/s',
        `${n0(r025.perGateway.chosen)} per 1 vCPU / 2 GiB process`,
        `${n0(r025.gateways)} processes`,
        n0(r025.vcpu),
        'this model',
      ],
      [
        'fleetgate, 2 events/agent/s',
        `${n0(r2.perGateway.chosen)} per 1 vCPU / 2 GiB process`,
        `${n0(r2.gateways)} processes`,
        n0(r2.vcpu),
        'this model',
      ],
      [
        'Elkeid AgentCenter (manual install)',
        '1,500 per 8C8G',
        '667 instances',
        '5,336',
        'Elkeid server/docs/install.md',
      ],
      [
        'Elkeid AgentCenter (elkeidup quota)',
        '1,500 per 1C2G',
        '667 instances',
        '667',
        'Elkeid elkeidup/configuration.md',
      ],
      [
        'Elastic Fleet Server',
        '100,000 per 16 vCPU / 16 GB',
        '10 instances',
        '160',
        'fleet-server-scaling (check-ins only: data goes to Elasticsearch)',
      ],
      ['Velociraptor', '10,000 per 2 vCPU / 8 GB', '100 servers', '200', 'velociraptor docs, performance'],
    ],
  );
}

export function fleetTable(m: Measured): string {
  const parts = [fleetRunTable(m.fleet, 'fleet.json')];
  for (const o of m.fleetOther) parts.push(fleetRunTable(o.doc, o.file));
  return parts.join('\n\n');
}

function fleetRunTable(f: BenchFile | undefined, file: string): string {
  if (!f)
    return '_loadtest/results/fleet.json is not committed yet: run `npm run bench:fleet -- --json loadtest/results/fleet.json`._';
  const get = (rs: BenchResult[] | undefined, name: string) => rs?.find((r) => r.name === name);
  const show = (r: BenchResult | undefined, digits = 0) => {
    if (!r) return 'n/a';
    if (r.value === null) return 'not reached';
    return digits === 1 ? n1(r.value) : n0(r.value);
  };
  const cmd = (r: BenchResult | undefined) =>
    r && r.value !== null
      ? `${n0(Number(r.p50))} / ${n0(r.value)} / ${n0(Number(r.max))} ms (${n0(Number(r.received))} received)`
      : show(r);
  const storm = (r: BenchResult | undefined) =>
    r
      ? r.value === null
        ? `not all back within the timeout (${n0(Number(r.agents))} agents)`
        : `${n1(r.value)} s for ${n0(Number(r.agents))} agents (99 %: ${r.back99S ?? '—'} s)`
      : 'n/a';
  const ours = f.results;
  const base = f.baseline?.results;
  const rows: Array<[string, (rs: BenchResult[] | undefined) => string]> = [
    ['agents held through the hold', (rs) => show(get(rs, 'fleet.agents_held'))],
    ['hold', (rs) => `${show(get(rs, 'fleet.hold_s'))} s`],
    ['records/s received', (rs) => show(get(rs, 'fleet.records_per_s'))],
    ['gateway CPU (% of one core)', (rs) => show(get(rs, 'fleet.gateway_cpu_pct'))],
    ['gateway CPU per agent (µs per agent-second)', (rs) => show(get(rs, 'fleet.cpu_us_per_agent_s'), 1)],
    ['gateway RSS after GC (MiB)', (rs) => show(get(rs, 'fleet.rss_mib'))],
    ['gateway RSS per agent (KB)', (rs) => show(get(rs, 'fleet.rss_per_agent'), 1)],
    ['event-loop delay p99, worst 10 s window (ms)', (rs) => show(get(rs, 'fleet.loop_lag_p99_max_ms'))],
    ['simulator CPU (% of one core)', (rs) => show(get(rs, 'fleet.sim_cpu_pct'))],
    [
      'simulator event-loop delay p99, worst 10 s window (ms)',
      (rs) => show(get(rs, 'fleet.sim_loop_lag_p99_max_ms')),
    ],
    [
      'the ramp ended',
      (rs) =>
        String(get(rs, 'fleet.agents_target')?.notes ?? 'n/a')
          .replace(/^ramp: /, '')
          .replace(/\|/g, '/'),
    ],
    ['command delivery p50 / p99 / max', (rs) => cmd(get(rs, 'fleet.command_p99_ms'))],
    ['reconnect storm of every agent: all back', (rs) => storm(get(rs, 'fleet.storm_all_back_s'))],
    [
      'storm: agents re-admitted per gateway CPU-s',
      (rs) => show(get(rs, 'fleet.storm_handshakes_per_cpu_s')),
    ],
  ];
  const cfg = f.config ?? {};
  const loadEnd = (f.machine as { loadAverageAtEnd?: number[] }).loadAverageAtEnd ?? [];
  const target = Number(get(ours, 'fleet.agents_target')?.value ?? cfg.agents);
  const capped = target < Number(cfg.agents) ? ` (asked ${n0(Number(cfg.agents))}, lowered by the run)` : '';
  const head = `**loadtest/results/${file}**: ${n0(target)} agents targeted${capped} at ${cfg.rate} events/agent/s, heartbeats every 60 s, ramp ${cfg.rampRate}/s in steps of ${n0(Number(cfg.step))}; load average ${(f.machine.loadAverageAtStart ?? []).join(' / ')} at the start, ${loadEnd.join(' / ')} at the end; finished ${f.finishedAt?.slice(0, 16).replace('T', ' ')} UTC`;
  return `${head}\n\n${mdTable(
    ['metric', 'fleetgate', f.baseline?.name ?? 'baseline'],
    rows.map(([label, fn]) => [label, fn(ours), fn(base)]),
  )}`;
}

/** Every generated table of docs/capacity.md, by marker name. */
export function docTables(m: Measured, mix: PayloadMix = payloadMix()): Record<string, string> {
  const rows = DOC_FLEETS.map((f) => size(m, mix, f.agents, f.rate));
  return {
    measured: `Machine: ${m.machine}; bench runs of ${Object.entries(m.dates)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.\n\n${measuredTable(m, mix)}`,
    assumptions: assumptionsTable(),
    sizing: sizingTable(rows),
    dynamodb: dynamoTable(rows),
    kafka: kafkaTable(rows),
    storm: stormTable(m),
    anchors: anchorsTable(m, mix),
    fleet: fleetTable(m),
    deploy: deployTable(deploySizing(m, mix, 1_000_000, SCENARIOS.steady!.eventsPerAgentPerS)),
  };
}

/** Replaces the text between `<!-- capacity:NAME -->` and `<!-- /capacity:NAME -->`. */
export function applyTables(doc: string, tables: Record<string, string>): string {
  let out = doc;
  for (const [name, body] of Object.entries(tables)) {
    const open = `<!-- capacity:${name} -->`;
    const close = `<!-- /capacity:${name} -->`;
    const i = out.indexOf(open);
    const j = out.indexOf(close);
    if (i < 0 || j < i) throw new Error(`markers ${open} … ${close} not found`);
    out = `${out.slice(0, i + open.length)}\n${body}\n${out.slice(j)}`;
  }
  return out;
}

// ---- deployment: limits, headroom and autoscaling of the Terraform modules --------------------

/** What the deployment adds to the per-gateway figures above (infra/terraform, docs/deploy.md). */
export const DEPLOY = {
  /** Zones the gateways are spread over (infra/terraform: three). */
  azs: 3,
  /** Autoscaling adds gateways when their average CPU passes this (the model's CPU target). */
  scaleOutCpuPct: ASSUMPTIONS.cpuTarget * 100,
  /** …or when the worst gateway's event-loop delay p99 passes this. */
  scaleOutLagMs: 500,
  /** Alarm: the worst gateway's event-loop delay p99 above this for three minutes. */
  lagAlarmMs: 1000,
  /** Autoscaling may grow the service to this multiple of the planned count. */
  maxScaleFactor: 2,
  /** DynamoDB: a full reconnect storm's status writes, absorbed within this many seconds. */
  stormWriteSpreadS: 300,
  /** New on-demand tables start warm for about this much (AWS's documented starting point). */
  dynamoWarmFloor: { write: 4000, read: 12000 },
};

/** A bench:fleet run as evidence: agents one gateway process held end to end at a rate. */
export interface EndToEndHeld {
  agents: number;
  rate: number;
  source: string;
}

/**
 * The most agents one gateway process held end to end at `rate` or above, in the bench:fleet runs
 * the model takes its CPU from (fleet.json, fleet-high-rate.json): the planned load is kept at or
 * under it, so a deployment never plans beyond what was seen held.
 */
export function endToEndHeld(m: Measured, rate: number): EndToEndHeld | undefined {
  let best: EndToEndHeld | undefined;
  for (const run of endToEndRuns(m)) {
    if (run.rate >= rate && (!best || run.agents > best.agents)) best = run;
  }
  return best;
}

/** Agents per gateway process held through the hold of fleet.json and fleet-high-rate.json. */
export function endToEndRuns(m: Measured): EndToEndHeld[] {
  const runs: Array<{ doc: BenchFile; file: string }> = [];
  if (m.fleet) runs.push({ doc: m.fleet, file: 'fleet.json' });
  for (const o of m.fleetOther) if (o.file === 'fleet-high-rate.json') runs.push(o);
  return runs.flatMap(({ doc, file }) => {
    const held = doc.results.find((r) => r.name === 'fleet.agents_held')?.value;
    if (typeof held !== 'number') return [];
    const gateways = Number(doc.config?.gateways ?? 1);
    return [{ agents: Math.floor(held / gateways), rate: Number(doc.config?.rate), source: file }];
  });
}

export interface DeploySizing {
  agents: number;
  rate: number;
  azs: number;
  /** FLEETGATE_MAX_CONNECTIONS: the model's agents per gateway (CPU, memory, storm). */
  limit: number;
  binding: string;
  /** Agents per gateway planned in steady state: the autoscaling target. */
  planned: number;
  plannedBy: string;
  endToEnd: EndToEndHeld | undefined;
  gateways: number;
  maxGateways: number;
  agentsPerGateway: number;
  /** Agents one event loop carries at 100 % of its core. */
  saturationAgents: number;
  /** Shares of the gateway's core: steady, and with a zone's agents moved to the others. */
  steadyCpu: number;
  zoneLossCpu: number;
  /** DynamoDB warm throughput of the agents table (units per second). */
  warm: { write: number; read: number };
}

/** Write units per second of the agents table per agent: steady (refresh and reconnect writes) and in a storm. */
export function agentWriteUnitsPerAgentS(a: Assumptions = ASSUMPTIONS) {
  return {
    steady: (1 / a.refreshS + (a.reconnectsPerAgentPerDay * a.writesPerConnection) / 86400) * a.agentItemKB,
    storm: (a.writesPerConnection * a.agentItemKB) / DEPLOY.stormWriteSpreadS,
  };
}

/**
 * The deployment of `agents` at `rate`: the connection limit is the model's agents per gateway;
 * the planned load leaves a zone's worth of headroom (with one of three zones lost, its agents
 * move to the other two, which then sit at their limit: the model's 60 % CPU target) and stays
 * at or under what a gateway held end to end; gateways are a multiple of the zones.
 */
export function deploySizing(
  m: Measured,
  mix: PayloadMix,
  agents: number,
  rate: number,
  a: Assumptions = ASSUMPTIONS,
): DeploySizing {
  const s = size(m, mix, agents, rate, a);
  const azs = DEPLOY.azs;
  const limit = s.perGateway.chosen;
  const byZone = Math.floor((limit * (azs - 1)) / azs);
  const endToEnd = endToEndHeld(m, rate);
  const planned = Math.min(byZone, endToEnd?.agents ?? byZone);
  const gateways = Math.max(azs, Math.ceil(agents / planned / azs) * azs);
  const perGateway = Math.ceil(agents / gateways);
  const w = agentWriteUnitsPerAgentS(a);
  const roundUp = (v: number) => Math.ceil(v / 1000) * 1000;
  return {
    agents,
    rate,
    azs,
    limit,
    binding: s.perGateway.binding,
    planned,
    plannedBy:
      planned === byZone
        ? `a zone's headroom: ${azs - 1}/${azs} of the limit`
        : `held end to end (${endToEnd!.source})`,
    endToEnd,
    gateways,
    maxGateways: gateways * DEPLOY.maxScaleFactor,
    agentsPerGateway: perGateway,
    saturationAgents: Math.floor(1e6 / s.cpuUsPerAgentS),
    steadyCpu: (perGateway * s.cpuUsPerAgentS) / 1e6,
    zoneLossCpu: (Math.ceil((perGateway * azs) / (azs - 1)) * s.cpuUsPerAgentS) / 1e6,
    warm: {
      write: Math.max(DEPLOY.dynamoWarmFloor.write, roundUp(agents * Math.max(2 * w.steady, w.storm))),
      read: DEPLOY.dynamoWarmFloor.read,
    },
  };
}

export function deployTable(d: DeploySizing): string {
  const pct = (v: number) => `${Math.round(v * 100)} %`;
  const e2e = d.endToEnd
    ? `${n0(d.endToEnd.agents)} per gateway process at ${d.endToEnd.rate} events/s (loadtest/results/${d.endToEnd.source})`
    : 'none at this rate';
  return mdTable(
    ['quantity', 'value', 'how'],
    [
      [
        'agents',
        `${n0(d.agents)} at ${d.rate} events/agent/s`,
        'expected_agents, records_per_agent_per_second',
      ],
      [
        'connection limit per gateway (FLEETGATE_MAX_CONNECTIONS)',
        n0(d.limit),
        `the model's agents per 1 vCPU / 2 GiB gateway (${d.binding} binds)`,
      ],
      ['held end to end', e2e, 'the planned load stays at or under it'],
      ['planned agents per gateway (autoscaling target)', n0(d.planned), d.plannedBy],
      [
        'gateways',
        `${n0(d.gateways)} (autoscaling up to ${n0(d.maxGateways)})`,
        `agents / planned, a multiple of ${d.azs} zones`,
      ],
      ['agents per gateway', n0(d.agentsPerGateway), `${pct(d.agentsPerGateway / d.limit)} of the limit`],
      [
        'gateway CPU, steady / one zone lost',
        `${pct(d.steadyCpu)} / ${pct(d.zoneLossCpu)} of its core`,
        `one event loop saturates near ${n0(d.saturationAgents)} agents`,
      ],
      [
        'scale out on',
        `connections > ${n0(d.planned)}, CPU > ${DEPLOY.scaleOutCpuPct} %, event-loop delay p99 > ${DEPLOY.scaleOutLagMs} ms`,
        `alarm: event-loop delay p99 > ${DEPLOY.lagAlarmMs} ms for 3 minutes`,
      ],
      [
        'DynamoDB agents table, warm throughput',
        `${n0(d.warm.write)} writes/s, ${n0(d.warm.read)} reads/s`,
        `twice the steady writes, or a full storm's ${ASSUMPTIONS.writesPerConnection} writes per agent within ${DEPLOY.stormWriteSpreadS} s`,
      ],
    ],
  );
}

// ---- Terraform: the model's coefficients and the million-agents example --------------------------

/**
 * The model's per-agent coefficients, as the root module's locals (infra/terraform/capacity.tf.json,
 * written by --write): sizing.tf derives every fleet's limit, planned load and gateway count from
 * them, and each example's `terraform test` asserts the result equals deploySizing().
 */
export function terraformModel(m: Measured, _mix: PayloadMix, a: Assumptions = ASSUMPTIONS) {
  const t = cpuTerms(m, a);
  const w = agentWriteUnitsPerAgentS(a);
  return {
    fixed_us_per_agent_s: t.fixedUs,
    us_per_message: t.perMsgUs,
    us_per_batched_record: t.batchedUs,
    us_per_kafka_record: t.kafkaUs,
    send_ticks_per_s: 1000 / AGENT.sendTickMs,
    heartbeat_s: a.heartbeatS,
    rss_per_agent_bytes: Math.round(
      Math.max(m.rssPerAgentIdleKB.value, m.rssPerAgentStreamingKB?.value ?? 0) * 1024,
    ),
    readmit_per_cpu_s: readmitPerCpuS(m),
    cpu_target: a.cpuTarget,
    memory_target: a.memTarget,
    storm_goal_s: a.stormGoalS,
    reconnect_delay_s: a.reconnectDelayS,
    end_to_end_held: endToEndRuns(m),
    scale_out_cpu_pct: DEPLOY.scaleOutCpuPct,
    scale_out_lag_ms: DEPLOY.scaleOutLagMs,
    lag_alarm_ms: DEPLOY.lagAlarmMs,
    max_scale_factor: DEPLOY.maxScaleFactor,
    agent_write_units_per_agent_s_steady: w.steady,
    agent_write_units_per_agent_s_storm: w.storm,
    dynamo_warm_floor_write: DEPLOY.dynamoWarmFloor.write,
    dynamo_warm_floor_read: DEPLOY.dynamoWarmFloor.read,
    kafka_min_partitions: a.kafkaMinPartitions,
    kafka_partition_mb_s: a.kafkaPartitionMBps,
  };
}

/** infra/terraform/capacity.tf.json: the coefficients as a local of the root module. */
export function capacityTfJson(m: Measured, mix: PayloadMix): string {
  const doc = {
    '//': 'Generated by `npm run capacity -- --write` from loadtest/results (scripts/capacity.ts): do not edit.',
    locals: { capacity_model: terraformModel(m, mix) },
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/**
 * The sizing inputs of infra/terraform/examples/million-agents, as the model computes them for
 * `agents` at `rate`: written to `capacity.auto.tfvars.json` there by `--write` (or anywhere with
 * `--tfvars FILE`); test/unit/capacity.test.ts fails when the committed file differs. The gateway
 * count, limit and autoscaling target are not inputs: sizing.tf derives them from the same model
 * (capacity.tf.json), and the example's `terraform test` checks them against `expected` below.
 */
export function terraformSizing(
  m: Measured,
  mix: PayloadMix,
  agents = 1_000_000,
  rate: number = SCENARIOS.steady!.eventsPerAgentPerS,
  a: Assumptions = ASSUMPTIONS,
): Record<string, number | string> {
  const s = size(m, mix, agents, rate, a);
  return {
    expected_agents: agents,
    records_per_agent_per_second: rate,
    average_record_bytes: Math.round(s.kafka.bytesPerRecord),
    gateway_cpu: a.gatewayVcpu * 1024,
    gateway_memory: a.gatewayMemGiB * 1024,
    kafka_partitions: s.kafka.partitions,
    // The DynamoDB tables are on demand, warmed for a storm (DEPLOY.stormWriteSpreadS).
    table_billing_mode: 'PAY_PER_REQUEST',
  };
}

/** What the example's `terraform test` expects sizing.tf to derive (tests/capacity.expected.json). */
export function terraformExpected(m: Measured, mix: PayloadMix, agents: number, rate: number) {
  const d = deploySizing(m, mix, agents, rate);
  return {
    gateway_max_connections: d.limit,
    planned_agents_per_gateway: d.planned,
    gateway_count: d.gateways,
    gateway_max_count: d.maxGateways,
    agents_table_warm_write_units: d.warm.write,
    agents_table_warm_read_units: d.warm.read,
  };
}

/** The JSON text of the tfvars file: what `--write` and `--tfvars` write. */
export function tfvarsJson(m: Measured, mix: PayloadMix): string {
  return `${JSON.stringify(terraformSizing(m, mix), null, 2)}\n`;
}

/**
 * The simulator's CPU per agent-second in the end-to-end runs (bench:fleet's sim_cpu_pct over the
 * agents held, fleet.json and fleet-high-rate.json): what the load-fleet example sizes its
 * simulator processes by (examples/load-fleet/simulator.tf.json).
 */
export function simulatorRuns(m: Measured): Array<{ rate: number; us_per_agent_s: number; source: string }> {
  const runs: Array<{ doc: BenchFile; file: string }> = [];
  if (m.fleet) runs.push({ doc: m.fleet, file: 'fleet.json' });
  for (const o of m.fleetOther) if (o.file === 'fleet-high-rate.json') runs.push(o);
  return runs.flatMap(({ doc, file }) => {
    const held = doc.results.find((r) => r.name === 'fleet.agents_held')?.value;
    const cpuPct = doc.results.find((r) => r.name === 'fleet.sim_cpu_pct')?.value;
    if (typeof held !== 'number' || typeof cpuPct !== 'number' || held <= 0) return [];
    return [{ rate: Number(doc.config?.rate), us_per_agent_s: ((cpuPct / 100) * 1e6) / held, source: file }];
  });
}

/** The load fleet for `agents` at `rate`: simulator processes (one per vCPU) and Fargate tasks. */
export function simulatorSizing(
  m: Measured,
  agents: number,
  rate: number,
  vcpusPerTask = 4,
  a: Assumptions = ASSUMPTIONS,
) {
  const runs = simulatorRuns(m);
  const above = runs.filter((r) => r.rate >= rate);
  const highest = runs.reduce((x, r) => (r.rate > x.rate ? r : x), runs[0]!);
  const us =
    above.length > 0
      ? above.reduce((x, r) => (r.rate < x.rate ? r : x), above[0]!).us_per_agent_s
      : (highest.us_per_agent_s * rate) / highest.rate;
  const agentsPerProcess = Math.floor((a.cpuTarget * 1e6) / us);
  const tasks = Math.ceil(agents / (agentsPerProcess * vcpusPerTask));
  return {
    agents_per_process: agentsPerProcess,
    processes_per_task: vcpusPerTask,
    agents_per_task: Math.ceil(agents / tasks),
    tasks,
  };
}

export const SIMULATOR_TF_PATH = () => path.join(tfRoot(), 'examples', 'load-fleet', 'simulator.tf.json');

/** examples/load-fleet/simulator.tf.json: the simulator's measured cost, as a local of the example. */
export function simulatorTfJson(m: Measured, a: Assumptions = ASSUMPTIONS): string {
  const doc = {
    '//': 'Generated by `npm run capacity -- --write` from loadtest/results (scripts/capacity.ts): do not edit.',
    locals: { simulator_model: { runs: simulatorRuns(m), cpu_target: a.cpuTarget } },
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Every example's sizing: its agents and rate, and the file its terraform test reads. */
export const TF_EXAMPLES = [
  { dir: 'million-agents', agents: 1_000_000, rate: SCENARIOS.steady!.eventsPerAgentPerS },
  { dir: 'complete', agents: 10_000, rate: SCENARIOS.steady!.eventsPerAgentPerS },
];

export function expectedJson(m: Measured, mix: PayloadMix, agents: number, rate: number): string {
  return `${JSON.stringify(terraformExpected(m, mix, agents, rate), null, 2)}\n`;
}

const tfRoot = () => path.join(root, 'infra', 'terraform');
/** Documents with a generated `<!-- capacity:deploy -->` table of the million-agent deployment. */
export const DEPLOY_DOCS = () => [
  path.join(tfRoot(), 'examples', 'million-agents', 'README.md'),
  path.join(root, 'docs', 'deploy.md'),
];

/**
 * Every file --write generates, by path, given the committed text of the documents it edits
 * (`read`): docs/capacity.md's tables, the documents' deploy table, the root module's
 * coefficients, the million-agents tfvars and each example's expected sizing.
 */
export function generatedFiles(
  m: Measured,
  mix: PayloadMix,
  read: (file: string) => string,
): Map<string, string> {
  const out = new Map<string, string>();
  out.set(DOC_PATH, applyTables(read(DOC_PATH), docTables(m, mix)));
  const million = TF_EXAMPLES[0]!;
  const deploy = { deploy: deployTable(deploySizing(m, mix, million.agents, million.rate)) };
  for (const doc of DEPLOY_DOCS()) out.set(doc, applyTables(read(doc), deploy));
  out.set(CAPACITY_TF_PATH, capacityTfJson(m, mix));
  out.set(SIMULATOR_TF_PATH(), simulatorTfJson(m));
  out.set(
    path.join(tfRoot(), 'examples', 'load-fleet', 'tests', 'capacity.expected.json'),
    `${JSON.stringify(simulatorSizing(m, 1_000_000, SCENARIOS.steady!.eventsPerAgentPerS), null, 2)}\n`,
  );
  out.set(TFVARS_PATH, tfvarsJson(m, mix));
  for (const ex of TF_EXAMPLES) {
    out.set(
      path.join(tfRoot(), 'examples', ex.dir, 'tests', 'capacity.expected.json'),
      expectedJson(m, mix, ex.agents, ex.rate),
    );
  }
  return out;
}

// ---- command line ------------------------------------------------------------------------------

const HELP = `Usage: npm run capacity -- [options]

The capacity model of docs/capacity.md: from the benchmark JSON (loadtest/results/<bench>.json of
bench:gateway, bench:ingest, bench:discovery and, when present, bench:fleet) and the stated
assumptions, for N agents at R events per agent per second: gateways and their size, discovery
cores for a reconnect storm, DynamoDB write/read units and monthly on-demand cost, Kafka
throughput and partitions, and how long a full reconnect storm takes to settle.

Options:
  --agents N                     agents (default 1000000)
  --events-per-agent-per-s R     events per agent per second (default ${SCENARIOS.steady!.eventsPerAgentPerS}, the simulator's steady scenario)
  --gateways G                   also: storm settle time with G gateways (default: the model's count)
  --bench-dir DIR                where the benchmark JSON is (default loadtest/results)
  --write                        rewrite what the model generates: docs/capacity.md's tables, the
                                 deploy table of docs/deploy.md and the million-agents README,
                                 infra/terraform/capacity.tf.json (the coefficients sizing.tf uses),
                                 the million-agents example's inputs (TFVARS below) and each
                                 example's tests/capacity.expected.json (what its terraform test
                                 checks sizing.tf derives)
  --tfvars FILE                  write the million-agents example's sizing inputs (1,000,000 agents
                                 at the steady rate) as Terraform JSON variables to FILE
  --help                         this text

TFVARS: infra/terraform/examples/million-agents/capacity.auto.tfvars.json`;

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DOC_PATH = path.join(root, 'docs', 'capacity.md');
export const CAPACITY_TF_PATH = path.join(root, 'infra', 'terraform', 'capacity.tf.json');
export const TFVARS_PATH = path.join(
  root,
  'infra',
  'terraform',
  'examples',
  'million-agents',
  'capacity.auto.tfvars.json',
);

function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      agents: { type: 'string' },
      'events-per-agent-per-s': { type: 'string' },
      gateways: { type: 'string' },
      'bench-dir': { type: 'string' },
      write: { type: 'boolean', default: false },
      tfvars: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const positive = (name: string, v: string | undefined, d: number) => {
    if (v === undefined) return d;
    const x = Number(v);
    if (!Number.isFinite(x) || x < 0) throw new Error(`--${name} must be a non-negative number`);
    return x;
  };
  const dir = path.resolve(values['bench-dir'] ?? path.join(root, 'loadtest', 'results'));
  const measured = loadMeasured(dir);
  const mix = payloadMix();
  if (values.write) {
    for (const [file, text] of generatedFiles(measured, mix, (f) => readFileSync(f, 'utf8'))) {
      let old: string | undefined;
      try {
        old = readFileSync(file, 'utf8');
      } catch {
        old = undefined;
      }
      if (old !== text) writeFileSync(file, text);
      console.error(`${path.relative(root, file)} ${old === text ? 'is current' : 'written'}`);
    }
  }
  if (values.tfvars) {
    writeFileSync(values.tfvars, tfvarsJson(measured, mix));
    console.error(`${values.tfvars} written`);
  }
  const agents = Math.floor(positive('agents', values.agents, 1_000_000));
  const rate = positive(
    'events-per-agent-per-s',
    values['events-per-agent-per-s'],
    SCENARIOS.steady!.eventsPerAgentPerS,
  );
  const s = size(measured, mix, agents, rate);
  const g = Math.floor(positive('gateways', values.gateways, s.gateways)) || s.gateways;
  const settle = stormSettleS(measured, agents, g);
  console.log(`# ${n0(agents)} agents at ${rate} events/agent/s (measurements: ${measured.machine})\n`);
  console.log(sizingTable([s]));
  console.log('');
  console.log(dynamoTable([s]));
  console.log('');
  console.log(kafkaTable([s]));
  console.log(
    `\nreconnect storm of all ${n0(agents)} agents with ${n0(g)} gateways: settles in ≈ ${n0(settle)} s`,
  );
  console.log(
    `\n## Deployment (infra/terraform)\n\n${deployTable(deploySizing(measured, mix, agents, rate))}`,
  );
  console.log(`(${EVENT_MIX.length} event kinds in the mix; assumptions: docs/capacity.md)`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    console.error(`capacity: ${(err as Error).message}`);
    process.exitCode = 2;
  }
}
