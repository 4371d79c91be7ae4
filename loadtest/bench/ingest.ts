/**
 * `npm run bench:ingest`: agents → gateway → Kafka, end to end, for our gateway with worker
 * threads, our gateway with FLEETGATE_WORKERS=0 (the pipeline inline on the main thread), and a
 * @grpc/grpc-js + kafkajs baseline (loadtest/baselines/grpcjs-kafka-gateway.ts), side by side in
 * one invocation against the same real broker on loopback (a disposable one unless given).
 *
 * Each gateway runs in its own child process and gets a fresh topic (4 partitions). The agents
 * are the Go load client (loadtest/goagent, `goagent load`, see go-load.ts): grpc-go, one mTLS
 * connection and Transfer stream per agent, Elkeid-shaped PackagedData of 20 execve records of
 * about 600 B, snappy like the stock agent (identity for grpc-js, which has no snappy). Every
 * record body carries a send-time stamp (stamp.ts); a kafkajs consumer in this process reads the
 * topics back and records (consume time − send time) per record in an HDR histogram, and counts
 * every record by (AgentID, message, index), so loss and duplicates are exact. Per gateway,
 * three phases, each with new agents that end their streams gracefully:
 *
 *   paced      what real agents do: every agent sends one message every 100 ms (default 100
 *              agents × 20 records = 20,000 records/s): records per server CPU-second and
 *              latency at the rate that sizes a fleet
 *   saturated  every agent sends as fast as flow control lets it (closed loop)
 *   idle       agents connect, send their first message and hold the stream: RSS per agent
 *              (once per gateway, on a fresh process, after all rounds)
 *
 * Server CPU is utime+stime of the gateway process from /proc (every thread: main, piscina
 * workers, libuv pool, GC) over the measured window; the broker's and the load client's apart.
 */

import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import type kafkajs from 'kafkajs';
import { GATEWAY_NODE_FLAGS } from '../../gateway/process/node-flags.js';
import { registerCodecs } from '../../workers/kafka/codecs.js';
import {
  type BenchKafka,
  benchKafka,
  benchKafkaClient,
  createBenchTopics,
  deleteBenchTopics,
} from './bench-kafka.js';
import { writeBenchPki } from './bench-setup.js';
import { type Child, type ServerStats, spawnChild } from './child-protocol.js';
import {
  childScripts,
  cpuSeconds,
  fmt,
  loadAverageNow,
  printProblems,
  progressWriter,
  runDriver,
  sleep,
  textTable,
  writeJsonReport,
} from './driver.js';
import { EXTERNAL_ENV_HELP, freePort, startExternalGateway, treeUsage } from './external-gateway.js';
import { type GoLoad, startGoLoad } from './go-load.js';
import { machineInfo, procCpuTicks, procStatFields, procTicksPerS } from './machine.js';
import { monotonicUs, readStamp } from './stamp.js';

const HELP = `Usage: npm run bench:ingest -- [options]

Agents → gateway → Kafka for fleetgate (worker threads), fleetgate (FLEETGATE_WORKERS=0) and a
@grpc/grpc-js + kafkajs baseline, side by side, against a broker (a disposable one if none is
given). The agents are the Go load client (loadtest/goagent \`goagent load\`, built on first use;
needs the Go toolchain): grpc-go, mTLS, one connection per agent, snappy like the stock agent.

Phases per gateway, in this order:
  paced       --paced-agents agents × 20 records every --interval-ms (default 100 × 20 / 100 ms
              = 20,000 records/s): records per server CPU-s, send→Kafka latency p50/p99
  saturated   --agents agents sending as fast as flow control lets them
  idle        --idle-agents agents connected and silent: server RSS per agent (once per
              gateway, a fresh process, after all rounds)

Options:
  --paced-agents N      agents of the paced phase (default 100)
  --interval-ms MS      paced: one message per agent every MS (default 100)
  --paced-duration S    measured seconds of the paced phase (default 20; --quick: 5; 0: skip it)
  --agents N            agents of the saturated phase (default 32)
  --duration S          measured seconds of the saturated phase (default 10; --quick: 3; 0: skip)
  --idle-agents N       agents of the idle phase (default 1000; --quick: 200; 0: skip it)
  --workers N           worker threads of the workers run (default: cores − 1, at least 1)
  --compression C       our producer's compression: none|gzip|snappy|lz4|zstd (default lz4)
  --baseline-compression C   the baseline's (default none, kafkajs' default)
  --linger-ms MS        our producer's linger (default: the pipeline's)
  --batch-window-ms MS  our pipeline's batch window (default: the pipeline's,
                        FLEETGATE_INGEST_BATCH_WINDOW_MS's default; not passed to --compare-tree)
  --impls LIST          subset of baseline,workers,inline,before,external (default: the first
                        three, before with --compare-tree, external with --external-cmd; none:
                        only the --profile run)
  --brokers LIST        use these brokers (default: $FLEETGATE_BENCH_KAFKA, else a disposable
                        broker on a free port, started for this run and stopped after it)
  --rounds N            run every gateway N times, alternating (A B C A B C …); the table shows,
                        per gateway and phase, the round with the median records per CPU-s
                        (default 1)
  --quick               a smoke run (about a minute per gateway)
  --json FILE           also write the results as JSON
  --profile             after the measured runs, an extra run of one server under --cpu-prof
                        (not counted): one .cpuprofile per thread (main thread and each piscina
                        worker), and a summary of the top functions by self time
  --profile-impl I      which server to profile: workers|inline|baseline (default workers)
  --profile-phase P     which load to profile: paced|saturated (default paced)
  --profile-dir DIR     where the .cpuprofile files go (default: the current directory)
  --compare-tree DIR    also run the gateway of another checkout (e.g. the commit before a
                        change: git archive REV | tar -x -C DIR, then node_modules and
                        proto/gen in place) as the column "before" (workers as --workers), so
                        before and after are measured in the same invocation; each tree's
                        gateway gets the V8 flags of its own gateway/process/node-flags.ts
  --external-cmd CMD    also run another gateway (e.g. Elkeid's AgentCenter, see
                        docs/benchmarking-ac.md) as the column "external": CMD runs through
                        /bin/sh in a fresh working directory, with the settings in
                        ${EXTERNAL_ENV_HELP}.
                        Its CPU and RSS are those of the process tree CMD starts (/proc); as it
                        reports no Kafka acks, its records in the window are those the agents
                        sent within the window that reached its topic; agents send it snappy
  --external-name NAME  the column's name (default external)
  --help                this text

Progress goes to stderr; the result table to stdout.`;

const { values } = parseArgs({
  options: {
    agents: { type: 'string' },
    duration: { type: 'string' },
    'paced-duration': { type: 'string' },
    'paced-agents': { type: 'string' },
    'interval-ms': { type: 'string' },
    'idle-agents': { type: 'string' },
    workers: { type: 'string' },
    compression: { type: 'string', default: 'lz4' },
    'baseline-compression': { type: 'string', default: 'none' },
    'linger-ms': { type: 'string' },
    'batch-window-ms': { type: 'string' },
    impls: { type: 'string' },
    brokers: { type: 'string' },
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    json: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'profile-impl': { type: 'string', default: 'workers' },
    'profile-phase': { type: 'string', default: 'paced' },
    'profile-dir': { type: 'string' },
    'compare-tree': { type: 'string' },
    'external-cmd': { type: 'string' },
    'external-name': { type: 'string', default: 'external' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const quick = values.quick === true;
const number = (name: string, v: string | undefined, fallback: number, min = Number.MIN_VALUE): number => {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got ${v}`);
  return n;
};
const cfg = {
  agents: Math.floor(number('agents', values.agents, 32, 1)),
  durationS: number('duration', values.duration, quick ? 3 : 10, 0),
  pacedS: number('paced-duration', values['paced-duration'], quick ? 5 : 20, 0),
  pacedAgents: Math.floor(number('paced-agents', values['paced-agents'], 100, 1)),
  intervalMs: number('interval-ms', values['interval-ms'], 100, 1),
  idleAgents: Math.floor(number('idle-agents', values['idle-agents'], quick ? 200 : 1000, 0)),
  rounds: Math.floor(number('rounds', values.rounds, 1, 1)),
  workers: Math.floor(number('workers', values.workers, Math.max(1, os.availableParallelism() - 1), 1)),
  compression: values.compression,
  baselineCompression: values['baseline-compression'],
  lingerMs: values['linger-ms'] === undefined ? undefined : number('linger-ms', values['linger-ms'], 0, 0),
  batchWindowMs:
    values['batch-window-ms'] === undefined
      ? undefined
      : number('batch-window-ms', values['batch-window-ms'], 0, 0),
  warmupS: quick ? 1 : 2,
  recordsPerMessage: 20,
  recordBytes: 600,
  partitions: 4,
  /** How long to wait for the consumer to see every record a phase sent. */
  drainTimeoutS: 60,
  /** Offered records/s of the paced phase. */
  get pacedRate(): number {
    return (this.pacedAgents * this.recordsPerMessage * 1000) / this.intervalMs;
  },
};
const allImpls = ['baseline', 'before', 'workers', 'inline', 'external'] as const;
type Impl = (typeof allImpls)[number];
const compareTree = values['compare-tree'] ? path.resolve(values['compare-tree']) : undefined;
const externalCmd = values['external-cmd'];
const externalName = values['external-name'] ?? 'external';
const impls: Impl[] =
  values.impls === undefined
    ? allImpls.filter((i) => (i !== 'before' || compareTree) && (i !== 'external' || externalCmd))
    : allImpls.filter((i) =>
        values
          .impls!.split(',')
          .map((s) => s.trim())
          .includes(i),
      );
if (impls.includes('before') && !compareTree) throw new Error('--impls before needs --compare-tree DIR');
if (impls.includes('external') && !externalCmd) throw new Error('--impls external needs --external-cmd CMD');
if (impls.length === 0 && !(values.profile && values.impls === 'none'))
  throw new Error(`--impls: want a subset of ${allImpls.join(',')} (or none, with --profile)`);
const profileImpl = values['profile-impl'] as Impl;
if (!allImpls.includes(profileImpl) || profileImpl === 'external')
  throw new Error(`--profile-impl: want one of ${allImpls.filter((i) => i !== 'external').join('|')}`);
const profilePhase = values['profile-phase'] as 'paced' | 'saturated';
if (profilePhase !== 'paced' && profilePhase !== 'saturated')
  throw new Error('--profile-phase: want paced or saturated');

// ---- where the children are ----------------------------------------------------------------

const { root, tsNodeArgs, script } = childScripts(import.meta.url);
const scripts = {
  ours: script('ingest-server'),
  baseline: script('../baselines/grpcjs-kafka-gateway'),
};

// ---- output helpers --------------------------------------------------------------------------

const t0 = Date.now();
const progress = progressWriter('bench', t0);
const LABEL: Record<Impl, string> = {
  baseline: 'grpc-js+kafkajs',
  before: `before w=${cfg.workers}`,
  workers: `fleetgate w=${cfg.workers}`,
  inline: 'fleetgate w=0',
  external: externalName,
};

const problems: string[] = [];

// ---- machine ---------------------------------------------------------------------------------

const machine = machineInfo();

/** CPU seconds a process has used (all threads), from /proc; undefined when unreadable. */
function procCpuS(pid: number | null): number | undefined {
  const f = pid === null ? undefined : procStatFields(`/proc/${pid}/stat`);
  return f && procCpuTicks(f) / procTicksPerS();
}

const pkiDir = mkdtempSync(path.join(os.tmpdir(), 'fg-bench-pki-'));

// ---- Kafka: topics and the measuring consumer ---------------------------------------------

let brokers: string[] = [];
let kafka: BenchKafka | undefined;
let brokerPid: number | null = null;
registerCodecs(); // the consumer reads what each gateway produced, whatever the codec
const kafkaClient = () => benchKafkaClient(brokers);

const runId = `${Date.now().toString(36)}-${process.pid}`;
const topics: string[] = [];
async function createTopics(names: string[]): Promise<void> {
  await createBenchTopics(brokers, names, cfg.partitions);
  topics.push(...names);
}
async function deleteTopics(): Promise<void> {
  if (topics.length === 0) return;
  try {
    await deleteBenchTopics(brokers, topics.splice(0));
  } catch (err) {
    problems.push(`could not delete the benchmark topics: ${(err as Error).message}`);
  }
}

type Histogram = ReturnType<typeof hdr.build>;
const newHistogram = (): Histogram =>
  hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });

/** What the consumer saw of one phase on one topic. */
class PhaseTrack {
  /** Records consumed (all, duplicates included). */
  consumed = 0;
  unique = 0;
  duplicates = 0;
  /** Records without a stamp (the first message's heartbeat of each agent). */
  unstamped = 0;
  /** Latency of the records sent within [fromUs, toUs] (µs). */
  readonly latency = newHistogram();
  fromUs = Number.POSITIVE_INFINITY;
  toUs = Number.POSITIVE_INFINITY;
  /** Per AgentID: a bit per (message seq, record index). */
  readonly #seen = new Map<string, Uint8Array>();
  constructor(readonly perMessage: number) {}

  add(key: string, seq: number, index: number, sentUs: number, nowUs: number): void {
    this.consumed++;
    const bit = seq * this.perMessage + index;
    let bits = this.#seen.get(key);
    if (!bits || bits.length * 8 <= bit) {
      const grown = new Uint8Array(Math.max(1024, bits ? bits.length * 2 : 0, (bit >> 3) + 1));
      if (bits) grown.set(bits);
      bits = grown;
      this.#seen.set(key, bits);
    }
    const mask = 1 << (bit & 7);
    if (bits[bit >> 3]! & mask) {
      this.duplicates++;
    } else {
      bits[bit >> 3]! |= mask;
      this.unique++;
    }
    if (sentUs >= this.fromUs && sentUs <= this.toUs) this.latency.recordValue(Math.max(1, nowUs - sentUs));
  }
  addUnstamped(): void {
    this.consumed++;
    this.unique++; // one heartbeat per agent stream, counted as sent once
    this.unstamped++;
  }
}

const tracks = new Map<string, PhaseTrack>();
let consumer: kafkajs.Consumer | undefined;
let badValues = 0;

async function startConsumer(): Promise<void> {
  const c = kafkaClient().consumer({
    groupId: `fleetgate-bench-${runId}`,
    maxWaitTimeInMs: 100,
    sessionTimeout: 30_000,
    heartbeatInterval: 3000,
  });
  await c.connect();
  await c.subscribe({ topics: [...topics], fromBeginning: true });
  const joined = new Promise<void>((resolve) => c.on(c.events.GROUP_JOIN, () => resolve()));
  await c.run({
    partitionsConsumedConcurrently: cfg.partitions,
    eachBatch: async ({ batch }) => {
      const nowUs = monotonicUs();
      const track = tracks.get(batch.topic);
      for (const m of batch.messages) {
        if (!track || !m.value) {
          badValues++;
          continue;
        }
        const stamp = readStamp(m.value);
        if (stamp) track.add(String(m.key), stamp.seq, stamp.index, stamp.us, nowUs);
        else track.addUnstamped();
      }
    },
  });
  consumer = c;
  await Promise.race([joined, sleep(30_000)]);
}

// ---- children ------------------------------------------------------------------------------

const loads = new Set<GoLoad>();
interface Server {
  impl: Impl;
  child: Child;
  port: number;
  topic: string;
  stats(): Promise<Stats>;
}
type Stats = ServerStats & {
  spooled?: number;
  kafkaFailures?: number;
  failedSends?: number;
  threads?: { mainUs: number; otherUs: number; threads: number } | null;
};
const servers = new Set<Server>();

/** The --external-cmd gateway on a free port; its `records` are what the consumer read of its topic. */
async function startExternal(topic: string): Promise<Child> {
  const host = '127.0.0.1';
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'fg-bench-external-'));
  externalDirs.push(workDir);
  return startExternalGateway({
    name: externalName,
    cmd: externalCmd!,
    settings: { host, port: await freePort(host), brokers, topic, pkiDir, workDir },
    records: () => tracks.get(topic)?.unique ?? 0,
  });
}
const externalDirs: string[] = [];

/** What a run leaves behind, on its way out (done or failed): the consumer, topics, temp dirs. */
async function releaseRun(): Promise<void> {
  await consumer?.disconnect().catch(() => {});
  await deleteTopics();
  rmSync(pkiDir, { recursive: true, force: true });
  for (const dir of externalDirs) rmSync(dir, { recursive: true, force: true });
}

/**
 * The gateway's V8 flags of the --compare-tree checkout (its gateway/process/node-flags.ts),
 * none for a tree from before that file: each tree runs as its own image would start it.
 */
async function compareTreeNodeFlags(): Promise<readonly string[]> {
  const file = path.join(compareTree!, 'gateway', 'process', 'node-flags.ts');
  if (!existsSync(file)) return [];
  const mod = (await import(pathToFileURL(file).href)) as { GATEWAY_NODE_FLAGS?: readonly string[] };
  return mod.GATEWAY_NODE_FLAGS ?? [];
}

async function startServer(impl: Impl, topic: string, extraNodeArgs: string[] = []): Promise<Server> {
  if (impl === 'external') return registerServer(impl, topic, await startExternal(topic));
  const common = ['--pki', pkiDir, '--port', '0', '--topic', topic, '--brokers', brokers.join(',')];
  const args =
    impl === 'baseline'
      ? [...common, '--compression', cfg.baselineCompression]
      : [
          ...common,
          '--workers',
          impl === 'inline' ? '0' : String(cfg.workers),
          '--compression',
          cfg.compression,
          ...(cfg.lingerMs !== undefined ? ['--linger-ms', String(cfg.lingerMs)] : []),
          ...(cfg.batchWindowMs !== undefined && impl !== 'before'
            ? ['--batch-window-ms', String(cfg.batchWindowMs)]
            : []),
        ];
  const child = await spawnChild(
    LABEL[impl],
    // Each tree's gateway with the V8 flags that tree starts it with (its node-flags.ts).
    [
      '--expose-gc',
      ...(impl === 'before' ? await compareTreeNodeFlags() : impl === 'baseline' ? [] : GATEWAY_NODE_FLAGS),
      ...extraNodeArgs,
      ...tsNodeArgs,
    ],
    impl === 'baseline'
      ? scripts.baseline
      : impl === 'before'
        ? path.join(compareTree!, 'loadtest/bench/ingest-server.ts')
        : scripts.ours,
    args,
  );
  return registerServer(impl, topic, child);
}

function registerServer(impl: Impl, topic: string, child: Child): Server {
  const server: Server = {
    impl,
    child,
    port: Number(child.hello.port),
    topic,
    stats: () => child.request<Stats>('stats', {}, 60_000),
  };
  servers.add(server);
  if (impl === 'baseline') baselineHello = String(child.hello.impl ?? baselineHello);
  return server;
}

async function stopServer(server: Server): Promise<void> {
  servers.delete(server);
  const tail = server.child.stderrTail();
  if (!server.child.alive) {
    const { code, signal } = await server.child.exited;
    problems.push(`${server.child.name} exited early (code ${code}, signal ${signal}):\n${tail}`);
    return;
  }
  await server.child.stop(30_000);
  if (tail.trim() !== '') progress(`${server.child.name} stderr:\n${tail}`);
}

// ---- one phase -------------------------------------------------------------------------------

interface PhaseResult {
  impl: Impl;
  phase: 'saturated' | 'paced';
  offeredRate: number | null;
  agents: number;
  wallS: number;
  records: number;
  recordsPerS: number;
  cpuS: number;
  recordsPerCpuS: number;
  cpuPct: number;
  mainThreadPct: number | null;
  brokerCpuPct: number | null;
  brokerUsPerRecord: number | null;
  clientCpuPct: number;
  driverCpuPct: number;
  latency: { p50: number; p90: number; p99: number; p999: number; max: number; count: number };
  sent: number;
  confirmed: number;
  unconfirmed: number;
  consumedUnique: number;
  lost: number;
  duplicates: number;
  maxBehind: number;
  spooled: number;
  rawBytesPerMessage: number;
  bodyBytesPerRecord: number;
}

/** The load of a phase: how many agents, paced or closed-loop. */
function loadFor(phase: 'saturated' | 'paced') {
  return phase === 'paced'
    ? { mode: 'paced' as const, agents: cfg.pacedAgents, rate: cfg.pacedRate }
    : { mode: 'saturated' as const, agents: cfg.agents, rate: 0 };
}

let nextIndexBase = 0;

async function runPhase(server: Server, phase: 'saturated' | 'paced', durationS: number, label: string) {
  const track = new PhaseTrack(cfg.recordsPerMessage);
  tracks.set(server.topic, track);
  const { mode, agents, rate } = loadFor(phase);
  const load = await startGoLoad({
    pkiDir,
    target: { host: '127.0.0.1', port: server.port },
    mode,
    agents,
    records: cfg.recordsPerMessage,
    recordBytes: cfg.recordBytes,
    intervalMs: cfg.intervalMs,
    compression: server.impl === 'baseline' ? 'none' : 'snappy',
    indexBase: nextIndexBase,
  });
  nextIndexBase += agents;
  loads.add(load);
  try {
    return await measurePhase(server, load, { phase, rate, durationS, label, track });
  } finally {
    loads.delete(load);
  }
}

interface PhaseRun {
  phase: 'saturated' | 'paced';
  rate: number;
  durationS: number;
  label: string;
  track: PhaseTrack;
}

async function measurePhase(server: Server, load: GoLoad, run: PhaseRun): Promise<PhaseResult> {
  const { phase, rate, durationS, label, track } = run;
  const connected = load.ready.connected;
  if (load.ready.failed > 0)
    problems.push(
      `${label}: only ${connected} of ${connected + load.ready.failed} agents connected: ${JSON.stringify(load.ready.errors)}`,
    );
  await sleep(cfg.warmupS * 1000);

  const serverPid = Number(server.child.hello.pid);
  // An external gateway may be a tree of processes (a shell, the gateway, its helpers).
  const serverCpuS = () => (server.impl === 'external' ? treeUsage(serverPid).cpuS : procCpuS(serverPid));
  const driverCpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  track.fromUs = monotonicUs();
  const s0 = await server.stats();
  const g0 = serverCpuS() ?? 0;
  const b0 = procCpuS(brokerPid);
  const c0 = procCpuS(load.pid) ?? 0;
  const d0 = driverCpu();
  const startedAt = performance.now();
  const ms = durationS * 1000;
  const step = Math.max(2000, Math.min(5000, ms / 3));
  let last = s0;
  let lastAt = startedAt;
  while (performance.now() - startedAt < ms - 50) {
    await sleep(Math.min(step, ms - (performance.now() - startedAt)));
    const now = await server.stats();
    const nowAt = performance.now();
    const n = now.records - last.records;
    progress(
      `${label}: ${fmt(n / ((nowAt - lastAt) / 1000))} records/s acked, ${fmt(n / Math.max(cpuSeconds(last, now), 1e-6))} per gateway CPU-s, latency p50 so far ${fmt(track.latency.getValueAtPercentile(50) / 1000, 1)} ms`,
    );
    last = now;
    lastAt = nowAt;
  }
  const s1 = await server.stats();
  const g1 = serverCpuS() ?? 0;
  track.toUs = monotonicUs();
  const wallS = (performance.now() - startedAt) / 1000;
  const b1 = procCpuS(brokerPid);
  const c1 = procCpuS(load.pid) ?? 0;
  const d1 = driverCpu();

  const done = await load.stop();
  const sent = done.records_sent;
  if (done.records_unconfirmed > 0 || Object.keys(done.errors).length > 0) {
    problems.push(
      `${label}: streams ended with statuses ${JSON.stringify(done.statuses)}; ${done.records_unconfirmed} records on streams without OK status; errors ${JSON.stringify(done.errors)}`,
    );
  }
  // Wait for the consumer to see everything the agents sent.
  const deadline = Date.now() + cfg.drainTimeoutS * 1000;
  while (track.unique < sent && Date.now() < deadline) await sleep(100);
  await sleep(300); // late duplicates, if any
  const lost = Math.max(0, sent - track.unique);
  if (lost > 0) {
    problems.push(
      `${label}: ${fmt(lost)} of ${fmt(sent)} records sent never reached Kafka (${fmt(track.unique)} consumed after ${cfg.drainTimeoutS} s)`,
    );
  }
  if (track.duplicates > 0) problems.push(`${label}: ${fmt(track.duplicates)} duplicate records in Kafka`);
  if (rate > 0 && done.max_behind > 2) {
    problems.push(
      `${label}: agents fell up to ${done.max_behind} messages behind their 100 ms schedule (backpressure): the gateway did not keep up`,
    );
  }
  const after = await server.stats();
  if ((after.spooled ?? 0) > 0)
    problems.push(`${label}: ${fmt(after.spooled ?? 0)} records went to the spool`);

  // An external gateway reports no Kafka acks: count its records by send time instead, those the
  // agents sent within the window that reached Kafka (known once drained), so a consumer that
  // falls behind on a busy machine does not undercount it.
  const records = server.impl === 'external' ? track.latency.totalCount : s1.records - s0.records;
  const cpuS = g1 - g0 > 0 ? g1 - g0 : cpuSeconds(s0, s1);
  const brokerCpuS = b0 !== undefined && b1 !== undefined ? b1 - b0 : undefined;
  const mainUs = s0.threads && s1.threads ? (s1.threads.mainUs - s0.threads.mainUs) / 1e6 / wallS : undefined;
  const h = track.latency;
  const ms1 = (us: number) => Number((us / 1000).toFixed(2));
  return {
    impl: server.impl,
    phase,
    offeredRate: rate > 0 ? Math.round(rate) : null,
    agents: connected,
    wallS: Number(wallS.toFixed(2)),
    records,
    recordsPerS: Math.round(records / wallS),
    cpuS: Number(cpuS.toFixed(2)),
    recordsPerCpuS: Math.round(records / cpuS),
    cpuPct: Math.round((100 * cpuS) / wallS),
    mainThreadPct: mainUs === undefined ? null : Math.round(100 * mainUs),
    brokerCpuPct: brokerCpuS === undefined ? null : Math.round((100 * brokerCpuS) / wallS),
    brokerUsPerRecord: brokerCpuS === undefined ? null : Number(((brokerCpuS * 1e6) / records).toFixed(2)),
    clientCpuPct: Math.round((100 * (c1 - c0)) / wallS),
    driverCpuPct: Math.round((100 * (d1 - d0)) / wallS),
    latency: {
      p50: ms1(h.getValueAtPercentile(50)),
      p90: ms1(h.getValueAtPercentile(90)),
      p99: ms1(h.getValueAtPercentile(99)),
      p999: ms1(h.getValueAtPercentile(99.9)),
      max: ms1(h.maxValue),
      count: h.totalCount,
    },
    sent,
    confirmed: done.records_confirmed,
    unconfirmed: done.records_unconfirmed,
    consumedUnique: track.unique,
    lost,
    duplicates: track.duplicates,
    maxBehind: done.max_behind,
    spooled: after.spooled ?? 0,
    rawBytesPerMessage: load.ready.raw_bytes_per_message,
    bodyBytesPerRecord: load.ready.body_bytes_per_record,
  };
}

interface IdleResult {
  impl: Impl;
  agents: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  rssPerAgentKiB: number;
  /** The JS heap's part of it (after a GC): what the gateway's own objects hold per agent. */
  heapPerAgentKiB: number;
}

/** Idle agents: RSS of the gateway (after a GC) before they connect and once they all have. */
async function runIdle(server: Server, label: string): Promise<IdleResult> {
  const before = await server.child.request<Stats>('gc', {}, 60_000);
  const load = await startGoLoad({
    pkiDir,
    target: { host: '127.0.0.1', port: server.port },
    mode: 'idle',
    agents: cfg.idleAgents,
    records: cfg.recordsPerMessage,
    recordBytes: cfg.recordBytes,
    intervalMs: cfg.intervalMs,
    compression: server.impl === 'baseline' ? 'none' : 'snappy',
    indexBase: nextIndexBase,
  });
  nextIndexBase += cfg.idleAgents;
  loads.add(load);
  try {
    const n = load.ready.connected;
    if (load.ready.failed > 0)
      problems.push(
        `${label}: only ${n} of ${cfg.idleAgents} idle agents connected: ${JSON.stringify(load.ready.errors)}`,
      );
    await sleep(2000);
    const after = await server.child.request<Stats>('gc', {}, 60_000);
    if (after.agents < n) problems.push(`${label}: the server registered ${after.agents} of ${n} agents`);
    const mib = (b: number) => Number((b / 2 ** 20).toFixed(1));
    return {
      impl: server.impl,
      agents: n,
      rssBeforeMiB: mib(before.rss),
      rssAfterMiB: mib(after.rss),
      rssPerAgentKiB: Number(((after.rss - before.rss) / 1024 / Math.max(1, n)).toFixed(1)),
      heapPerAgentKiB: Number(((after.heapUsed - before.heapUsed) / 1024 / Math.max(1, n)).toFixed(1)),
    };
  } finally {
    await load.stop().catch(() => load.kill());
    loads.delete(load);
  }
}

function describe(r: PhaseResult): string {
  return `${fmt(r.recordsPerS)} rec/s, ${fmt(r.recordsPerCpuS)} rec/CPU-s (gateway ${r.cpuPct}% CPU${r.mainThreadPct !== null ? `, main thread ${r.mainThreadPct}%` : ''}; broker ${r.brokerCpuPct ?? '?'}%), latency p50 ${r.latency.p50} ms p99 ${r.latency.p99} ms; sent ${fmt(r.sent)}, consumed ${fmt(r.consumedUnique)}, lost ${fmt(r.lost)}, dup ${fmt(r.duplicates)}`;
}

// ---- profiles ------------------------------------------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

const rootUrl = `file://${root}/`;
const shortUrl = (url: string) =>
  url.startsWith(rootUrl)
    ? url.slice(rootUrl.length)
    : url.startsWith(`${root}/`)
      ? url.slice(root.length + 1)
      : url;

/** Where a frame's code lives: a package, our code, node internals, or a V8 pseudo-frame. */
function categoryOf(frame: ProfileNode['callFrame']): string {
  const url = shortUrl(frame.url);
  if (url === '') {
    if (frame.functionName.startsWith('(')) return frame.functionName;
    return '(native)';
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return 'node internals';
  const top = url.split('/').slice(0, 2).join('/');
  return top;
}

interface ProfileSummary {
  file: string;
  thread: number;
  totalMs: number;
  busyMs: number;
  topFunctions: Array<{ fn: string; where: string; selfMs: number; pct: number }>;
  topCategories: Array<{ category: string; selfMs: number; pct: number }>;
}

function summarizeProfile(file: string, thread: number): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute the gap after it to sample i.
    const d = deltas[i + 1] ?? 0;
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + Math.max(0, d));
  }
  const fns = new Map<string, { fn: string; where: string; us: number }>();
  const cats = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    total += us;
    const f = n.callFrame;
    if (f.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName}|${where}`;
    const e = fns.get(key) ?? { fn: f.functionName || '(anonymous)', where, us: 0 };
    e.us += us;
    fns.set(key, e);
    const c = categoryOf(f);
    cats.set(c, (cats.get(c) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us: number) => Number(((100 * us) / Math.max(1, busy)).toFixed(1));
  return {
    file,
    thread,
    totalMs: Math.round(total / 1000),
    busyMs: Math.round(busy / 1000),
    topFunctions: [...fns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, 20)
      .map((e) => ({ fn: e.fn, where: e.where, selfMs: Math.round(e.us / 1000), pct: pct(e.us) })),
    topCategories: [...cats.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([category, us]) => ({ category, selfMs: Math.round(us / 1000), pct: pct(us) })),
  };
}

/** Rewrites the profile's file URLs relative to the project, so the file names no path of this machine. */
function relativizeProfile(from: string, to: string): void {
  const p = JSON.parse(readFileSync(from, 'utf8')) as CpuProfile;
  for (const n of p.nodes) n.callFrame.url = shortUrl(n.callFrame.url);
  writeFileSync(to, JSON.stringify(p));
}

async function profileRun(topic: string): Promise<ProfileSummary[]> {
  const dir = path.resolve(values['profile-dir'] ?? '.');
  mkdirSync(dir, { recursive: true });
  // Node names profiles CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main
  // thread; with tsx its module-loader thread writes one too (nearly idle), then the workers.
  const runDir = mkdtempSync(path.join(dir, '.cpu-prof-'));
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const label = `profile[${LABEL[profileImpl]}]`;
  progress(`${label}: extra ${profilePhase} run under --cpu-prof (not counted)`);
  const server = await startServer(profileImpl, topic, ['--cpu-prof', '--cpu-prof-dir', runDir]);
  try {
    const seconds = profilePhase === 'paced' ? cfg.pacedS : cfg.durationS;
    const r = await runPhase(server, profilePhase, seconds || 10, label);
    progress(`${label}: ${describe(r)}`);
  } finally {
    await stopServer(server);
  }
  const out: ProfileSummary[] = [];
  try {
    const files = readdirSync(runDir)
      .map((f) => ({ f, m: /^CPU\.\d+\.\d+\.\d+\.(\d+)\.\d+\.cpuprofile$/.exec(f) }))
      .filter((x) => x.m)
      .sort((a, b) => Number(a.m![1]) - Number(b.m![1]));
    for (const { f, m } of files) {
      const thread = Number(m![1]);
      const src = path.join(runDir, f);
      const s = summarizeProfile(src, thread);
      // The tsx loader thread is all but idle; keep the threads that worked.
      if (thread !== 0 && s.busyMs < 0.05 * s.totalMs) continue;
      const name = `ingest-${profileImpl}-thread${thread}-${stamp}.cpuprofile`;
      const dest = path.join(dir, name);
      relativizeProfile(src, dest);
      s.file = path.join(values['profile-dir'] ?? '.', name);
      out.push(s);
    }
    if (out.length === 0) problems.push('profile: no .cpuprofile was written');
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
  return out;
}

function printProfile(s: ProfileSummary): void {
  const who = s.thread === 0 ? 'main thread' : `thread ${s.thread} (worker)`;
  console.log(
    `\n${who}: ${s.file} — busy ${fmt(s.busyMs)} ms of ${fmt(s.totalMs)} ms sampled (${Math.round((100 * s.busyMs) / Math.max(1, s.totalMs))}%)`,
  );
  console.log(
    `  by where the code lives: ${s.topCategories.map((c) => `${c.category} ${c.pct}%`).join(', ')}`,
  );
  console.log('  top functions by self time (% of busy):');
  for (const f of s.topFunctions.slice(0, 15)) {
    console.log(`    ${String(f.pct).padStart(5)}%  ${fmt(f.selfMs).padStart(6)} ms  ${f.fn}  ${f.where}`);
  }
}

// ---- report --------------------------------------------------------------------------------

interface Metric {
  key: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  get: (r: PhaseResult) => number | null;
  goalRatio?: number;
  digits?: number;
}
const METRICS: Metric[] = [
  {
    key: 'records_per_s',
    label: 'records/s end to end',
    unit: 'records/s',
    better: 'higher',
    get: (r) => r.recordsPerS,
  },
  {
    key: 'records_per_cpu_s',
    label: 'records per gateway CPU-s',
    unit: 'records/CPU-s',
    better: 'higher',
    get: (r) => r.recordsPerCpuS,
    goalRatio: 3,
  },
  {
    key: 'gateway_cpu_pct',
    label: 'gateway CPU',
    unit: '% of a core',
    better: 'lower',
    get: (r) => r.cpuPct,
  },
  {
    key: 'main_thread_pct',
    label: '  of which main thread',
    unit: '% of a core',
    better: 'lower',
    get: (r) => r.mainThreadPct,
  },
  {
    key: 'latency_p50_ms',
    label: 'send→Kafka latency p50',
    unit: 'ms',
    better: 'lower',
    get: (r) => r.latency.p50,
    digits: 1,
  },
  {
    key: 'latency_p99_ms',
    label: 'send→Kafka latency p99',
    unit: 'ms',
    better: 'lower',
    get: (r) => r.latency.p99,
    digits: 1,
  },
  {
    key: 'broker_us_per_record',
    label: 'broker CPU per record',
    unit: 'µs',
    better: 'lower',
    get: (r) => r.brokerUsPerRecord,
    digits: 1,
  },
  {
    key: 'records_lost',
    label: 'records lost (sent − consumed)',
    unit: 'records',
    better: 'lower',
    get: (r) => r.lost,
  },
  {
    key: 'records_duplicated',
    label: 'records duplicated',
    unit: 'records',
    better: 'lower',
    get: (r) => r.duplicates,
  },
];

const phaseResults: PhaseResult[] = [];
const idleResults: IdleResult[] = [];
/** The result of a gateway's phase; with several rounds, the one with the median records per CPU-s. */
const find = (impl: Impl, phase: string) => {
  const runs = phaseResults
    .filter((r) => r.impl === impl && r.phase === phase)
    .sort((a, b) => a.recordsPerCpuS - b.recordsPerCpuS);
  return runs[(runs.length - 1) >> 1];
};

const SHORT: Record<Impl, string> = {
  baseline: 'base',
  before: 'before',
  workers: 'w',
  inline: 'w=0',
  external: 'ext',
};

/** a/b of one metric as "1.23×", '' where it means nothing (counts of lost/duplicate records, zeros). */
function ratioOf(m: Metric, a: PhaseResult | undefined, b: PhaseResult | undefined): string {
  const va = a ? m.get(a) : null;
  const vb = b ? m.get(b) : null;
  if (
    va === null ||
    vb === null ||
    !(va > 0) ||
    !(vb > 0) ||
    m.key.startsWith('records_l') ||
    m.key.startsWith('records_d')
  )
    return '';
  return `${(va / vb).toFixed(2)}×`;
}

function table(): string {
  const cols = impls;
  const oursCols = cols.filter((c) => c !== 'baseline' && c !== 'external');
  const hasBase = cols.includes('baseline');
  const hasBefore = cols.includes('before') && cols.includes('workers');
  const extCols = cols.includes('external') ? oursCols : [];
  const head = [
    'phase',
    'metric',
    'unit',
    ...cols.map((c) => LABEL[c]),
    ...(hasBase ? oursCols.map((c) => `${SHORT[c]}/base`) : []),
    ...(hasBefore ? ['w/before'] : []),
    ...extCols.map((c) => `${SHORT[c]}/${SHORT.external}`),
  ];
  const rows: string[][] = [head];
  for (const phase of ['paced', 'saturated'] as const) {
    if (!cols.some((c) => find(c, phase))) continue;
    for (const m of METRICS) {
      const show = (c: Impl) => {
        const r = find(c, phase);
        const v = r ? m.get(r) : null;
        return v === null || v === undefined ? 'n/a' : fmt(v, m.digits ?? 0);
      };
      const ratios = hasBase
        ? oursCols.map((c) => {
            const a = find(c, phase);
            const b = find('baseline', phase);
            const va = a ? m.get(a) : null;
            const vb = b ? m.get(b) : null;
            if (
              va === null ||
              vb === null ||
              !(va > 0) ||
              !(vb > 0) ||
              m.key.startsWith('records_l') ||
              m.key.startsWith('records_d')
            )
              return '';
            const x = va / vb;
            const goal =
              m.goalRatio !== undefined && phase === 'saturated'
                ? x >= m.goalRatio
                  ? ' goal met'
                  : ` goal ${m.goalRatio}× MISSED`
                : '';
            return `${x.toFixed(2)}×${goal}`;
          })
        : [];
      if (hasBefore) ratios.push(ratioOf(m, find('workers', phase), find('before', phase)));
      for (const c of extCols) ratios.push(ratioOf(m, find(c, phase), find('external', phase)));
      const offered = phase === 'paced' ? find(cols[0]!, phase)?.offeredRate : undefined;
      rows.push([
        phase === 'paced' && offered ? `paced ${fmt(offered)}/s` : phase,
        m.label,
        m.unit,
        ...cols.map(show),
        ...ratios,
      ]);
    }
  }
  return textTable(rows, (i) => i >= 3 && i < 3 + cols.length);
}

function jsonResults(impl: Impl, prefix: string) {
  const out: Array<Record<string, unknown>> = [];
  for (const phase of ['paced', 'saturated'] as const) {
    const r = find(impl, phase);
    if (!r) continue;
    const b = find('baseline', phase);
    const ext = impl === 'external' ? undefined : find('external', phase);
    for (const m of METRICS) {
      const value = m.get(r);
      const entry: Record<string, unknown> = {
        name: `${prefix}${phase}.${m.key}`,
        value,
        unit: m.unit,
        better: m.better,
      };
      const ev = ext ? m.get(ext) : null;
      if (value !== null && ev !== null && ev > 0) entry.ratioToExternal = Number((value / ev).toFixed(3));
      if (impl !== 'baseline' && b) {
        const bv = m.get(b);
        if (value !== null && bv !== null && bv > 0) entry.ratioToBaseline = Number((value / bv).toFixed(3));
        if (m.goalRatio !== undefined && phase === 'saturated' && bv !== null && value !== null) {
          entry.goal = Math.round(bv * m.goalRatio);
          entry.meetsGoal = value >= bv * m.goalRatio;
        }
      }
      out.push(entry);
    }
  }
  return out;
}

// ---- main ----------------------------------------------------------------------------------

/** The phases of one gateway: paced first (the row that sizes a fleet), then saturated. */
async function runPhases(server: Server, label: string): Promise<void> {
  if (cfg.pacedS > 0) {
    const paced = await runPhase(server, 'paced', cfg.pacedS, `${label} paced`);
    phaseResults.push(paced);
    progress(`${label} paced: ${describe(paced)}`);
  }
  if (cfg.durationS > 0) {
    const sat = await runPhase(server, 'saturated', cfg.durationS, `${label} saturated`);
    phaseResults.push(sat);
    progress(`${label} saturated: ${describe(sat)}`);
  }
}

/** Idle agents on a fresh gateway process (one that carried load keeps its grown heap and RSS). */
async function runIdlePhase(impl: Impl, topic: string, label: string): Promise<void> {
  const server = await startServer(impl, topic);
  try {
    const idle = await runIdle(server, `${label} idle`);
    idleResults.push(idle);
    progress(
      `${label} idle: ${idle.agents} agents, RSS ${idle.rssBeforeMiB} → ${idle.rssAfterMiB} MiB, ${idle.rssPerAgentKiB} KiB per agent (JS heap ${idle.heapPerAgentKiB})`,
    );
  } finally {
    await stopServer(server);
  }
}

async function main(): Promise<number> {
  progress(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory}, node ${machine.node}, load ${machine.loadAverageAtStart.join(' ')}`,
  );
  progress(
    `config: paced ${cfg.pacedAgents} agents × ${cfg.recordsPerMessage} records / ${cfg.intervalMs} ms (${fmt(cfg.pacedRate)} records/s) for ${cfg.pacedS} s, saturated ${cfg.agents} agents for ${cfg.durationS} s, idle ${cfg.idleAgents} agents, per gateway; workers ${cfg.workers}, compression ours ${cfg.compression} / baseline ${cfg.baselineCompression}, runs ${impls.join(',')}${quick ? ' (quick)' : ''}`,
  );
  kafka = await benchKafka(values.brokers, progress);
  brokers = kafka.brokers;
  brokerPid = kafka.pid;
  if (brokerPid === null) progress('broker pid unknown: its CPU is not reported');
  await writeBenchPki(pkiDir);
  const names = impls.map((i) => `fleetgate-bench-${runId}-${i}`);
  const profileTopic = `fleetgate-bench-${runId}-profile`;
  await createTopics(values.profile ? [...names, profileTopic] : names);
  await startConsumer();
  progress(`consumer subscribed to ${topics.length} topics (${cfg.partitions} partitions each)`);
  for (let round = 1; round <= cfg.rounds; round++) {
    if (cfg.rounds > 1) progress(`round ${round} of ${cfg.rounds}`);
    for (const [i, impl] of impls.entries()) {
      const label = LABEL[impl];
      try {
        const server = await startServer(impl, names[i]!);
        try {
          await runPhases(server, label);
        } finally {
          await stopServer(server);
        }
      } catch (err) {
        const msg = `${label}: ${(err as Error).message}`;
        problems.push(msg);
        progress(`ERROR ${msg}`);
      }
    }
  }
  // Idle after every round: the teardown of thousands of connections (and AC's log lines for
  // each) took seconds and leaked into the next gateway's paced window when it ran in round 1.
  for (const [i, impl] of impls.entries()) {
    if (cfg.idleAgents === 0) break;
    const label = LABEL[impl];
    await runIdlePhase(impl, names[i]!, label).catch((err: Error) => {
      problems.push(`${label} idle: ${err.message}`);
      progress(`ERROR ${label} idle: ${err.message}`);
    });
  }
  let profiles: ProfileSummary[] = [];
  if (values.profile) {
    try {
      profiles = await profileRun(profileTopic);
    } catch (err) {
      problems.push(`profile: ${(err as Error).message}`);
    }
  }

  await releaseRun();
  await kafka?.stop();

  const loadAverageAtEnd = loadAverageNow();
  const sample = phaseResults[0];
  console.log(
    `\nfleetgate ingest (agents → gateway → Kafka, acks=all) — ${machine.cpu}, ${machine.cores} cores, ${machine.memory}, node ${machine.node}`,
  );
  console.log(
    `gateways, broker, the Go load client and the measuring consumer share the machine; load average ${machine.loadAverageAtStart.join('/')} → ${loadAverageAtEnd.join('/')}`,
  );
  console.log(
    `${cfg.agents} agents, ${cfg.recordsPerMessage} records/RawData, body ≈ ${sample?.bodyBytesPerRecord ?? '?'} B, RawData ≈ ${sample?.rawBytesPerMessage ?? '?'} B; ours: snappy framing, ${cfg.compression} to Kafka, ${cfg.workers} worker(s) or inline; baseline (${baselineName()}): identity (grpc-js has no snappy), ${cfg.baselineCompression} to Kafka, one send per RawData`,
  );
  console.log(
    `CPU-s: the gateway process (all threads); broker CPU from /proc apart${brokerPid === null ? ' (n/a: pid unknown)' : ''}. Latency: agent write → measuring consumer (includes fetch wait and consumer decode).\n`,
  );
  if (phaseResults.length > 0) console.log(table());
  if (idleResults.length > 0) {
    console.log(
      `\nidle: ${idleResults.map((r) => `${LABEL[r.impl]}: ${r.agents} agents, RSS ${r.rssBeforeMiB} → ${r.rssAfterMiB} MiB = ${r.rssPerAgentKiB} KiB per agent (JS heap ${r.heapPerAgentKiB})`).join('; ')}`,
    );
    const ext = idleResults.find((r) => r.impl === 'external');
    const ours = idleResults.filter((r) => r.impl !== 'external' && r.impl !== 'baseline');
    if (ext && ext.rssPerAgentKiB > 0 && ours.length > 0)
      console.log(
        `idle RSS per agent vs ${externalName}: ${ours.map((r) => `${SHORT[r.impl]}/${SHORT.external} ${(r.rssPerAgentKiB / ext.rssPerAgentKiB).toFixed(2)}×`).join(', ')}`,
      );
  }
  const sat = phaseResults;
  if (sat.length > 0) {
    console.log(
      `\nwindow details: ${sat.map((r) => `${LABEL[r.impl]} ${r.phase}: Go load client CPU ${r.clientCpuPct}%, consumer (driver) CPU ${r.driverCpuPct}%, broker ${r.brokerCpuPct ?? '?'}%`).join('; ')}`,
    );
  }
  for (const p of profiles) printProfile(p);
  if (badValues > 0) problems.push(`the consumer read ${badValues} records it could not attribute`);
  printProblems(problems);
  if (values.json) {
    const doc = {
      bench: 'ingest',
      machine: { ...machine, loadAverageAtEnd },
      config: { ...cfg, quick, impls, pacedRate: cfg.pacedRate },
      idle: idleResults,
      results: [
        ...(impls.includes('workers') ? jsonResults('workers', 'workers.') : []),
        ...(impls.includes('inline') ? jsonResults('inline', 'inline.') : []),
        ...(impls.includes('before') ? jsonResults('before', 'before.') : []),
        ...(impls.includes('external') ? jsonResults('external', 'external.') : []),
      ],
      ...(impls.includes('external') ? { external: { name: externalName, cmd: externalCmd } } : {}),
      baseline: {
        name: baselineName(),
        results: impls.includes('baseline') ? jsonResults('baseline', '') : [],
      },
      phases: phaseResults,
      problems,
      ...(profiles.length > 0 ? { profiles } : {}),
    };
    writeJsonReport(values.json, doc, {
      t0,
      progress,
      // Error texts may quote paths of this machine: keep them out of the file.
      redact: (text) => text.replaceAll(root, '<project>').replaceAll(os.tmpdir(), '<tmp>'),
    });
  }
  progress(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return 0;
}

let baselineHello = '@grpc/grpc-js + kafkajs';
function baselineName(): string {
  return baselineHello;
}

runDriver(main, async () => {
  await Promise.allSettled([...servers].map((s) => s.child.stop(2000)));
  for (const l of loads) l.kill();
  await releaseRun();
  await kafka?.stop();
});
