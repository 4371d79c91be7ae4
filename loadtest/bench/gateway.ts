/**
 * `npm run bench:gateway`: our gateway against a @grpc/grpc-js baseline, side by side in one
 * invocation. Each server runs in its own child process; the load comes from other child
 * processes (load-client.ts) with raw node:http2 TLS clients, so the server's CPU
 * (process.cpuUsage deltas) and memory (RSS after full GCs) are its own.
 *
 * Tests, each run against a fresh server of each kind:
 *   idle        N agents connected (TLS + h2 + one Transfer stream + first RawData with AgentID
 *               and a heartbeat); server RSS growth per agent after GC.
 *   handshakes  connect + mTLS handshake + Transfer stream + first message + status, then close,
 *               as fast as the clients go; completed sessions per server CPU-second. The load is
 *               the Go client (`goagent handshake-load`: grpc-go as the stock agent dials, see
 *               go-handshake-load.ts), server CPU from /proc; `--handshake-client node` uses the
 *               Node clients instead. Our server runs as the image runs it, with bin/openssl.cnf
 *               (no TLS 1.3 session tickets); the PKI has a CRL, so every handshake checks it.
 *               Per runtime (`--runtimes`) and round (`--repeat`, medians): ours, grpc-js, ours
 *               with OpenSSL's default tickets (the before), and Node's floor (a bare node:http2
 *               server with the same TLS settings, loadtest/baselines/bare-http2-server.ts),
 *               with OpenSSL checking the CRL and without the CRL (fleetgate checks revocation at
 *               its certificate gate, platform/pki/revocation.ts, so that check is its own work).
 *               With `--external-cmd`, another gateway (e.g. Elkeid's AgentCenter) is one more
 *               column, once per round: started through external-gateway.ts (a broker for it
 *               from bench-kafka.ts), stormed by the same Go client, its process tree's CPU
 *               from /proc (docs/benchmarking-ac.md).
 *   records     a few dozen agents streaming Elkeid-shaped batches (20 execve records of about
 *               600 B each); records accepted per server CPU-second. Ours gets snappy (what
 *               agents send) and identity; grpc-js has no snappy, so it gets identity only.
 */

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GATEWAY_NODE_FLAGS } from '../../gateway/process/node-flags.js';
import { type BenchKafka, benchKafka, createBenchTopics, deleteBenchTopics } from './bench-kafka.js';
import { loopbackSources, writeBenchPki } from './bench-setup.js';
import { type Child, type ServerStats, spawnChild } from './child-protocol.js';
import {
  type BenchResult,
  childScripts,
  cpuSeconds,
  describeErrors,
  fmt,
  goalCell,
  loadAverageNow,
  mergeCounts,
  networkLimits,
  printProblems,
  progressWriter,
  ratioCell,
  recorder,
  resultNames,
  runDriver,
  runtimeNode,
  sleep,
  split,
  textTable,
  writeJsonReport,
} from './driver.js';
import { EXTERNAL_ENV_HELP, freePort, processTree, startExternalGateway } from './external-gateway.js';
import { goHandshakeLoad } from './go-handshake-load.js';
import { machineInfo } from './machine.js';
import type { WireEncoding } from './payloads.js';

const HELP = `Usage: npm run bench:gateway -- [options]

Benchmarks the fleetgate agent gateway against a @grpc/grpc-js baseline, side by side.

Options:
  --agents N          idle agents per server (default 10000; --quick: 500)
  --duration S        seconds measured per throughput test (default 15; --quick: 4)
  --record-agents N   streaming agents in the records test (default 32; --quick: 16)
  --quick             small numbers for a smoke run (under a minute)
  --tests LIST        comma-separated subset of idle,handshakes,records (default: all)
  --handshake-client go|node
                      the handshakes test's load: the Go client on grpc-go (default) or the
                      Node load clients
  --curves stock|go   handshakes test, Go client: the key exchange it offers: the stock agent's
                      (X25519; Elkeid builds it with Go 1.18, default) or Go 1.26's own
                      (X25519MLKEM768 first, which OpenSSL 3.5 on Node 24 picks)
  --handshake-warmup S
                      handshakes test, Go client: seconds of load before the measured window
                      (default 2; Node 20 is still optimizing fleetgate's code then: 20 s of
                      warm-up measured 20 % more sessions per CPU-second there, none on Node 24)
  --runtimes LIST     handshakes test: run both servers on each of these Node runtimes in turn,
                      \`current\` and/or \`24\` (Node 24 of scripts/node24, as npm test uses;
                      default: current)
  --processes LIST    handshakes test: fleetgate as each of these numbers of gateway processes
                      sharing the agent port with SO_REUSEPORT, e.g. 1,2 (default: 1). Above 1
                      needs Node >= 22.12: use --runtimes 24. Each process is a bench server child
                      (the same gateway as fleetgate gateway --processes runs in each child); the
                      Go client's server CPU is their sum
  --handshake-concurrency N
                      handshakes test: sessions the Go client keeps in flight (default 16); more
                      to load several gateway processes
  --repeat N, --rounds N
                      handshakes test: rounds, every server once per round, alternating; each
                      figure is the median (default 3; --quick: 1)
  --handshake-servers LIST
                      handshakes test: which of our servers run each round, of fleetgate,
                      grpc-js, tickets (fleetgate with OpenSSL's default TLS 1.3 session tickets,
                      the before of bin/openssl.cnf), floor (a bare node:http2 server, CRL in
                      OpenSSL), floor-no-crl (the same without the CRL); floors with the Go
                      client only (default: all; empty: none, the --external-cmd gateway alone)
  --no-tickets-before handshakes test: leave out tickets (as --handshake-servers without it)
  --external-cmd CMD  handshakes test: also run another gateway (e.g. Elkeid's AgentCenter, see
                      docs/benchmarking-ac.md) as one more column, once per round after ours, a
                      fresh process each time: CMD runs through /bin/sh -c in a fresh directory
                      (its own process group; SIGTERM to the group at the end), with
                      ${EXTERNAL_ENV_HELP.replaceAll('\n                        ', '\n                      ')}.
                      The Go client storms it as it storms ours (snappy) and reads the CPU of
                      every process of CMD's tree from /proc; a Kafka broker is set up for it
                      (see --brokers) and a topic of 4 partitions created. Go client only
  --external-name NAME
                      the external column's name (default external)
  --brokers LIST      with --external-cmd: the Kafka brokers it gets (default:
                      $FLEETGATE_BENCH_KAFKA, else a disposable broker on a free port, started
                      for this run and stopped after it)
  --json FILE         also write the results as JSON
  --profile           after the measured runs, an extra records run (snappy) and, with the
                      handshakes test, an extra handshakes run of our server under --cpu-prof
                      (not counted); writes gateway-<test>-snappy-<time>.cpuprofile
  --profile-dir DIR   where the .cpuprofile goes (default: the current directory)
  --help              this text

Progress goes to stderr; the result table to stdout.`;

const { values } = parseArgs({
  options: {
    agents: { type: 'string' },
    duration: { type: 'string' },
    'record-agents': { type: 'string' },
    quick: { type: 'boolean', default: false },
    tests: { type: 'string' },
    'handshake-client': { type: 'string', default: 'go' },
    curves: { type: 'string', default: 'stock' },
    'handshake-warmup': { type: 'string' },
    runtimes: { type: 'string', default: 'current' },
    processes: { type: 'string', default: '1' },
    'handshake-concurrency': { type: 'string' },
    'no-tickets-before': { type: 'boolean', default: false },
    'handshake-servers': { type: 'string' },
    repeat: { type: 'string' },
    rounds: { type: 'string' },
    'external-cmd': { type: 'string' },
    'external-name': { type: 'string', default: 'external' },
    brokers: { type: 'string' },
    json: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'profile-dir': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const quick = values.quick === true;
const positive = (name: string, v: string | undefined, fallback: number): number => {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${v}`);
  return n;
};
/** Our servers a handshakes round can run (--handshake-servers). */
const HANDSHAKE_SERVERS = ['fleetgate', 'grpc-js', 'tickets', 'floor', 'floor-no-crl'] as const;
type HandshakeServer = (typeof HANDSHAKE_SERVERS)[number];

function handshakeServers(list: string | undefined, noTickets: boolean): Set<HandshakeServer> {
  // An empty list runs none of ours: the external gateway alone (--external-cmd).
  const names =
    list === undefined
      ? [...HANDSHAKE_SERVERS]
      : list
          .split(',')
          .map((n) => n.trim())
          .filter((n) => n !== '');
  for (const n of names) {
    if (!HANDSHAKE_SERVERS.includes(n as HandshakeServer)) {
      throw new Error(`--handshake-servers: want some of ${HANDSHAKE_SERVERS.join(',')}, got ${n}`);
    }
  }
  const out = new Set(names as HandshakeServer[]);
  if (noTickets) out.delete('tickets');
  return out;
}

const cfg = {
  agents: Math.floor(positive('agents', values.agents, quick ? 500 : 10_000)),
  durationS: positive('duration', values.duration, quick ? 4 : 15),
  recordAgents: Math.floor(positive('record-agents', values['record-agents'], quick ? 16 : 32)),
  warmupS: quick ? 1 : 2,
  /** The Go handshake storm's warm-up before its window (--handshake-warmup). */
  handshakeWarmupS: 0,
  /** Agents connected before the idle baseline RSS is read, so one-time costs (lazy init, JIT) are out. */
  idleWarmAgents: quick ? 20 : 50,
  idleConnectConcurrency: 50,
  handshakeConcurrency: 8,
  /** Sessions in flight from the Go client (its dialers). */
  goHandshakeConcurrency: Math.floor(positive('handshake-concurrency', values['handshake-concurrency'], 16)),
  handshakeClient: values['handshake-client'] === 'node' ? ('node' as const) : ('go' as const),
  /** What the Go client offers for the key exchange (goagent -curves). */
  curves: values.curves ?? 'stock',
  runtimes: (values.runtimes ?? 'current').split(',').map((r) => r.trim()),
  /** Gateway processes sharing the port in the handshakes test (ours), one run each. */
  processes: (values.processes ?? '1').split(',').map((p) => Math.floor(positive('processes', p.trim(), 1))),
  /** Rounds of the handshakes test; each figure is the median over them. */
  repeat: Math.floor(positive('repeat', values.repeat ?? values.rounds, quick ? 1 : 3)),
  /** Our servers of each handshakes round (--handshake-servers). */
  handshakeServers: new Set<HandshakeServer>(),
  /** Another gateway run as a column of the handshakes test (--external-cmd), and its name. */
  externalCmd: values['external-cmd'],
  externalName: values['external-name'] ?? 'external',
  recordsPerMessage: 20,
  recordBytes: 600,
  loadClients: 2,
};
cfg.handshakeWarmupS = positive('handshake-warmup', values['handshake-warmup'], cfg.warmupS);
cfg.handshakeServers = handshakeServers(values['handshake-servers'], values['no-tickets-before'] === true);
if (values.repeat !== undefined && values.rounds !== undefined)
  throw new Error('--repeat and --rounds are one option');
if (!['stock', 'go'].includes(cfg.curves)) throw new Error(`--curves must be stock or go, got ${cfg.curves}`);
if (!['go', 'node'].includes(values['handshake-client'] ?? '')) {
  throw new Error(`--handshake-client must be go or node, got ${values['handshake-client']}`);
}
for (const r of cfg.runtimes) {
  if (r !== 'current' && r !== '24') throw new Error(`--runtimes: want current and/or 24, got ${r}`);
}
/** `--processes` other than 1: the handshakes test measures 1 → N processes (Go client only). */
const scaling = cfg.processes.some((n) => n !== 1);
if (scaling && cfg.handshakeClient !== 'go') throw new Error('--processes needs the Go handshake client');
const [nodeMajor = 0, nodeMinor = 0] = process.versions.node.split('.').map(Number);
if (scaling && cfg.runtimes.includes('current') && (nodeMajor < 22 || (nodeMajor === 22 && nodeMinor < 12))) {
  throw new Error(
    `--processes above 1 needs reusePort (Node >= 22.12); this is ${process.versions.node}: use --runtimes 24`,
  );
}
const allTests = ['idle', 'handshakes', 'records'] as const;
type TestName = (typeof allTests)[number];
const tests = new Set<TestName>(
  values.tests === undefined
    ? allTests
    : values.tests.split(',').map((t) => {
        const name = t.trim() as TestName;
        if (!allTests.includes(name)) throw new Error(`unknown test ${t}; want ${allTests.join(',')}`);
        return name;
      }),
);
if (cfg.externalCmd !== undefined && (!tests.has('handshakes') || cfg.handshakeClient !== 'go')) {
  throw new Error('--external-cmd runs in the handshakes test with the Go client (--tests handshakes)');
}

// ---- where the children are ----------------------------------------------------------------

const { root, tsNodeArgs, script } = childScripts(import.meta.url);
/**
 * Our server runs as the image starts it: its OpenSSL settings (bin/openssl.cnf: no TLS 1.3
 * tickets) and the gateway's V8 flags (gateway/process/node-flags.ts).
 */
const oursNodeArgs = [`--openssl-config=${path.join(root, 'bin', 'openssl.cnf')}`, ...GATEWAY_NODE_FLAGS];

const nodeOf = (runtime: string) => runtimeNode(root, runtime);
/** `node --version` of each runtime used, for the report. */
function runtimeVersions(): Record<string, string> {
  return Object.fromEntries(
    cfg.runtimes.map((r) => [r, spawnSync(nodeOf(r), ['--version'], { encoding: 'utf8' }).stdout.trim()]),
  );
}
const scripts = {
  ours: script('gateway-server'),
  baseline: script('../baselines/grpcjs-gateway'),
  floor: script('../baselines/bare-http2-server'),
  client: script('load-client'),
};

// ---- output helpers --------------------------------------------------------------------------

const t0 = Date.now();
const progress = progressWriter('bench', t0);

type Impl = 'ours' | 'baseline';
/** A column of the results: ours, the grpc-js baseline, or the --external-cmd gateway. */
type Column = Impl | 'external';
type Result = BenchResult & { better: 'higher' | 'lower' };
const results: Record<Column, Result[]> = { ours: [], baseline: [], external: [] };
const problems: string[] = [];
const limits: Record<string, unknown> = {};
let baselineName = '@grpc/grpc-js';
const record = recorder(results);

// ---- machine, PKI, loopback addresses ------------------------------------------------------

const machine = machineInfo();

/** Loopback source addresses usable for `localAddress` (Linux routes all of 127/8 to lo). */
const pkiDir = mkdtempSync(path.join(os.tmpdir(), 'fg-bench-pki-'));

// ---- children ------------------------------------------------------------------------------

const clients: Child[] = [];
async function ensureClients(n: number): Promise<void> {
  while (clients.length < n) {
    const i = clients.length;
    clients.push(
      await spawnChild(`load-client-${i}`, tsNodeArgs, scripts.client, [
        '--pki',
        pkiDir,
        '--seed',
        String(i + 1),
      ]),
    );
  }
}

interface Server {
  impl: Impl;
  child: Child;
  port: number;
  pid: number;
  nofile: number;
  stats(): Promise<ServerStats>;
  gc(): Promise<ServerStats>;
  stop(): Promise<void>;
}
const servers = new Set<Server>();

/** How a server child runs: on which runtime, and (ours) whether with OpenSSL's defaults instead of bin/openssl.cnf. */
interface ServerRun {
  runtime?: string;
  opensslDefaults?: boolean;
}

async function startServer(impl: Impl, extraNodeArgs: string[] = [], run: ServerRun = {}): Promise<Server> {
  const runtime = run.runtime ?? 'current';
  const ownArgs = impl === 'ours' && !run.opensslDefaults ? oursNodeArgs : [];
  const child = await spawnChild(
    impl === 'ours' ? 'fleetgate' : 'grpc-js',
    ['--expose-gc', ...ownArgs, ...extraNodeArgs, ...tsNodeArgs],
    scripts[impl],
    ['--pki', pkiDir, '--port', '0'],
    { node: nodeOf(runtime) },
  );
  if (impl === 'baseline') baselineName = String(child.hello.impl ?? baselineName);
  const server: Server = {
    impl,
    child,
    port: Number(child.hello.port),
    pid: Number(child.hello.pid ?? child.pid),
    nofile: Number(child.hello.nofile ?? 1024),
    stats: () => child.request<ServerStats>('stats', {}, 60_000),
    gc: () => child.request<ServerStats>('gc', {}, 120_000),
    async stop() {
      servers.delete(server);
      if (!child.alive) {
        const { code, signal } = await child.exited;
        problems.push(
          `${child.name} had exited before the end of its test (code ${code}, signal ${signal}):\n${child.stderrTail()}`,
        );
        return;
      }
      await child.stop(15_000);
    },
  };
  servers.add(server);
  return server;
}

async function withServer<T>(
  impl: Impl,
  fn: (s: Server) => Promise<T>,
  extraNodeArgs: string[] = [],
  run: ServerRun = {},
): Promise<T | undefined> {
  const label = impl === 'ours' ? 'fleetgate' : 'grpc-js';
  let server: Server | undefined;
  try {
    server = await startServer(impl, extraNodeArgs, run);
    return await fn(server);
  } catch (err) {
    const msg = `${label}: ${(err as Error).message}`;
    problems.push(msg);
    progress(`ERROR ${msg}`);
    return undefined;
  } finally {
    if (server) {
      const tail = server.child.stderrTail();
      await server.stop();
      if (tail.trim() !== '') progress(`${label} stderr:\n${tail}`);
    }
  }
}

async function waitForStats(
  server: Server,
  pred: (s: ServerStats) => boolean,
  ms: number,
): Promise<ServerStats> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await server.stats();
    if (pred(s) || Date.now() > deadline) return s;
    await sleep(200);
  }
}

/** Sleeps `ms`, reporting the server's progress every few seconds. */
async function measureWindow(
  server: Server,
  ms: number,
  label: string,
  what: (a: ServerStats, b: ServerStats) => string,
) {
  const start = await server.stats();
  const startedAt = Date.now();
  const step = Math.max(2000, Math.min(5000, ms / 3));
  let last = start;
  while (Date.now() - startedAt < ms - 50) {
    await sleep(Math.min(step, ms - (Date.now() - startedAt)));
    const now = await server.stats();
    progress(`${label}: ${what(last, now)}`);
    last = now;
  }
  const end = await server.stats();
  return { start, end, wallS: (Date.now() - startedAt) / 1000 };
}

// ---- test 1: idle agents -------------------------------------------------------------------

let locals: string[] = [];

async function connectIdle(
  target: { host: string; port: number },
  encoding: WireEncoding,
  count: number,
  indexBase: number,
) {
  const shares = split(count, clients.length);
  let base = indexBase;
  const replies = await Promise.all(
    clients.map((c, i) => {
      const share = shares[i]!;
      const args = {
        target,
        encoding,
        count: share,
        indexBase: base,
        localAddresses: locals,
        concurrency: cfg.idleConnectConcurrency,
      };
      base += share;
      return share > 0
        ? c.request('idle', args, 900_000)
        : Promise.resolve({ connected: 0, failed: 0, errors: {} });
    }),
  );
  const errors: Record<string, number> = {};
  let connected = 0;
  let failed = 0;
  for (const r of replies) {
    connected += Number(r.connected);
    failed += Number(r.failed);
    mergeCounts(errors, r.errors);
  }
  return { connected, failed, errors };
}

async function closeIdle(): Promise<number> {
  let closedEarly = 0;
  for (const r of await Promise.all(clients.map((c) => c.request('closeAll', {}, 300_000)))) {
    closedEarly += Number(r.closedEarlyByServer);
  }
  return closedEarly;
}

async function idleTest(impl: Impl): Promise<void> {
  const label = `idle[${impl === 'ours' ? 'fleetgate' : 'grpc-js'}]`;
  const encoding: WireEncoding = impl === 'ours' ? 'snappy' : 'identity';
  await withServer(impl, async (server) => {
    const target = { host: '127.0.0.1', port: server.port };
    const warm = cfg.idleWarmAgents;
    let n = cfg.agents;
    // The server holds one socket per agent, plus a few dozen of its own.
    const serverRoom = server.nofile - warm - 256;
    if (n > serverRoom) {
      problems.push(
        `${label}: server open-file limit ${server.nofile} allows ${serverRoom} agents; asked ${n}`,
      );
      n = serverRoom;
    }
    limits.serverOpenFiles = server.nofile;
    const w = await connectIdle(target, encoding, warm, 0);
    await waitForStats(server, (s) => s.records >= w.connected, 30_000);
    const before = await server.gc();
    progress(
      `${label}: baseline RSS ${fmt(before.rss / 2 ** 20, 1)} MiB with ${w.connected} warm-up agents; connecting ${fmt(n)}`,
    );
    const ticker = setInterval(() => {
      server.stats().then(
        (s) =>
          progress(
            `${label}: ${fmt(s.agents - w.connected)} / ${fmt(n)} agents, RSS ${fmt(s.rss / 2 ** 20)} MiB`,
          ),
        () => {},
      );
    }, 5000);
    const startedAt = Date.now();
    let c: Awaited<ReturnType<typeof connectIdle>>;
    try {
      c = await connectIdle(target, encoding, n, warm);
    } finally {
      clearInterval(ticker);
    }
    const connectS = (Date.now() - startedAt) / 1000;
    const arrived = await waitForStats(server, (s) => s.records >= w.connected + c.connected, 60_000);
    if (arrived.records < w.connected + c.connected) {
      problems.push(
        `${label}: only ${arrived.records - w.connected} of ${c.connected} first messages reached the server`,
      );
    }
    const after = await server.gc();
    const agentsNow = after.agents - before.agents;
    progress(
      `${label}: ${fmt(c.connected)} connected in ${connectS.toFixed(1)} s (${c.failed} failed${c.failed > 0 ? `: ${describeErrors(c.errors)}` : ''}); server agents +${agentsNow}, RSS ${fmt(after.rss / 2 ** 20, 1)} MiB`,
    );
    if (c.failed > 0)
      problems.push(`${label}: ${c.failed} agents failed to connect: ${describeErrors(c.errors)}`);
    const perAgent = (after.rss - before.rss) / c.connected;
    const heapPerAgent = (after.heapUsed - before.heapUsed) / c.connected;
    const nonHeapPerAgent = (after.rss - before.rss - (after.heapTotal - before.heapTotal)) / c.connected;
    const connectCpu = cpuSeconds(before, arrived);
    record(impl, {
      name: 'idle.rss_per_agent',
      value: Number((perAgent / 1024).toFixed(1)),
      unit: 'KB/agent',
      better: 'lower',
      goal: 48,
      agents: c.connected,
      rssBeforeMiB: Number((before.rss / 2 ** 20).toFixed(1)),
      rssAfterMiB: Number((after.rss / 2 ** 20).toFixed(1)),
      notes: `server RSS after full GCs, ${fmt(c.connected)} agents over ${w.connected} warm-up agents; encoding ${encoding}`,
    });
    record(impl, {
      name: 'idle.heap_per_agent',
      value: Number((heapPerAgent / 1024).toFixed(1)),
      unit: 'KB/agent',
      better: 'lower',
      notes: 'V8 heapUsed growth after full GCs',
    });
    record(impl, {
      name: 'idle.native_per_agent',
      value: Number((nonHeapPerAgent / 1024).toFixed(1)),
      unit: 'KB/agent',
      better: 'lower',
      notes: 'RSS growth minus V8 heapTotal growth (OpenSSL, nghttp2, buffers)',
    });
    record(impl, {
      name: 'idle.agents_connected',
      value: c.connected,
      unit: 'agents',
      better: 'higher',
      failed: c.failed,
      notes: c.failed > 0 ? `failures: ${describeErrors(c.errors)}` : `all ${fmt(n)} connected`,
    });
    record(impl, {
      name: 'idle.connects_per_cpu_s',
      value: Math.round(c.connected / connectCpu),
      unit: 'agents/CPU-s',
      better: 'higher',
      wallS: Number(connectS.toFixed(1)),
      notes: 'server CPU while the idle agents connected (handshake + stream + first message)',
    });

    // Disconnect everyone: the server should let go of what the agents held.
    const closedEarly = await closeIdle();
    if (closedEarly > 0)
      problems.push(`${label}: the server closed ${closedEarly} idle agent streams while held`);
    const drained = await waitForStats(server, (s) => s.openCalls === 0 && s.agents === 0, 30_000);
    if (drained.openCalls !== 0 || drained.agents !== 0) {
      problems.push(
        `${label}: 30 s after all agents left, the server still has ${drained.openCalls} open calls and ${drained.agents} agents`,
      );
    }
    const gone = await server.gc();
    record(impl, {
      name: 'idle.heap_retained_after_disconnect',
      value: Number(((gone.heapUsed - before.heapUsed) / 2 ** 20).toFixed(2)),
      unit: 'MiB',
      better: 'lower',
      notes: `heapUsed after all ${fmt(c.connected + w.connected)} agents disconnected, minus before; RSS ${fmt(gone.rss / 2 ** 20, 1)} MiB`,
    });
    progress(
      `${label}: after disconnect heap ${fmt(gone.heapUsed / 2 ** 20, 1)} MiB (before ${fmt(before.heapUsed / 2 ** 20, 1)}), RSS ${fmt(gone.rss / 2 ** 20, 1)} MiB`,
    );
  });
}

// ---- test 2: handshakes --------------------------------------------------------------------

async function handshakeRun(encoding: WireEncoding, server: Server, label: string) {
  const target = { host: '127.0.0.1', port: server.port };
  await Promise.all(
    clients.map((c) =>
      c.request('handshakes', {
        target,
        encoding,
        concurrency: cfg.handshakeConcurrency,
        localAddresses: locals,
      }),
    ),
  );
  await sleep(cfg.warmupS * 1000);
  const w = await measureWindow(server, cfg.durationS * 1000, label, (a, b) => {
    const cpu = cpuSeconds(a, b);
    return `${fmt(b.calls - a.calls)} calls, ${fmt((b.calls - a.calls) / Math.max(cpu, 1e-6))} per server CPU-s`;
  });
  const stops = await Promise.all(clients.map((c) => c.request('stop', {}, 120_000)));
  let completed = 0;
  let failed = 0;
  const errors: Record<string, number> = {};
  for (const s of stops) {
    completed += Number(s.completed);
    failed += Number(s.failed);
    mergeCounts(errors, s.errors);
  }
  if (failed > 0) {
    problems.push(
      `${label}: ${failed} of ${completed + failed} handshakes failed: ${describeErrors(errors)}`,
    );
  }
  return {
    calls: w.end.calls - w.start.calls,
    cpu: cpuSeconds(w.start, w.end),
    wallS: w.wallS,
    completed,
    failed,
  };
}

/** The handshake storm from the Go client: it takes the window and the server's /proc CPU itself. */
async function goHandshakeRun(
  encoding: WireEncoding,
  server: { port: number; pids: readonly number[] },
  label: string,
) {
  const r = await goHandshakeLoad({
    target: { host: '127.0.0.1', port: server.port },
    pkiDir,
    serverPids: server.pids,
    concurrency: cfg.goHandshakeConcurrency,
    warmupS: cfg.handshakeWarmupS,
    durationS: cfg.durationS,
    encoding: encoding === 'snappy' ? 'snappy' : 'identity',
    localAddresses: locals,
    curves: cfg.curves,
  });
  progress(
    `${label}: ${fmt(r.completed)} sessions in ${r.windowS.toFixed(1)} s, server CPU ${r.serverCpuS.toFixed(2)} s: ${fmt(r.completed / r.serverCpuS)} per server CPU-s`,
  );
  if (r.failed > 0) {
    problems.push(
      `${label}: ${r.failed} of ${r.completed + r.failed} sessions failed: ${describeErrors(r.errors)}`,
    );
  }
  return {
    calls: r.completed,
    cpu: r.serverCpuS,
    clientCpuS: r.clientCpuS,
    wallS: r.windowS,
    completed: r.completed,
    failed: r.failed,
  };
}

/** A storm's figures every handshake result carries: sessions per server CPU-s, and what made it. */
function stormFigures(r: { calls: number; cpu: number; wallS: number }) {
  return {
    value: Math.round(r.calls / r.cpu),
    unit: 'sessions/CPU-s',
    better: 'higher' as const,
    handshakes: r.calls,
    serverCpuS: Number(r.cpu.toFixed(2)),
    wallRate: Math.round(r.calls / r.wallS),
    serverCpuPct: Math.round((100 * r.cpu) / r.wallS),
  };
}

/**
 * One handshake storm against a fresh server. `opensslDefaults` runs ours as it ran before
 * bin/openssl.cnf (two TLS 1.3 tickets per handshake): the before/after of that setting in the
 * same invocation.
 */
async function handshakeTest(impl: Impl, runtime: string, opensslDefaults = false): Promise<void> {
  const server24 = runtime === '24';
  const variant = opensslDefaults ? ', OpenSSL default tickets' : '';
  const label = `handshakes[${impl === 'ours' ? 'fleetgate' : 'grpc-js'}${server24 ? ', Node 24' : ''}${variant}]`;
  const encoding: WireEncoding = impl === 'ours' ? 'snappy' : 'identity';
  const go = cfg.handshakeClient === 'go';
  await withServer(
    impl,
    async (server) => {
      const r = go
        ? await goHandshakeRun(encoding, { port: server.port, pids: [server.pid] }, label)
        : await handshakeRun(encoding, server, label);
      const inFlight = go ? cfg.goHandshakeConcurrency : cfg.handshakeConcurrency * clients.length;
      collectHandshakeRun(impl, {
        name: `handshakes${server24 ? '.node24' : ''}${opensslDefaults ? '.tickets' : ''}.per_cpu_s`,
        ...stormFigures(r),
        goal: 1369,
        client: go ? 'goagent handshake-load (grpc-go)' : 'node:http2 load clients',
        notes: `new mTLS session (client certificate + CRL) + HTTP/2 + Transfer stream + first RawData (${encoding}) + OK status, then close; ${inFlight} in flight from ${go ? 'the Go client' : 'the Node clients'}; ${r.completed} ok, ${r.failed} failed; server CPU ${go ? 'from /proc' : 'process.cpuUsage()'}`,
      });
    },
    [],
    { runtime, opensslDefaults },
  );
}

/**
 * One handshake storm against `n` of our gateway processes sharing one port with SO_REUSEPORT,
 * as `fleetgate gateway --processes n` runs them (n = 1: the single process, no reusePort), each
 * a bench server child; the Go client reads their summed CPU. Recorded under the single
 * server's name for n = 1 (so the comparison with grpc-js stands) and `.processes<n>` above.
 */
async function processesTest(runtime: string, n: number): Promise<void> {
  const node24 = runtime === '24' ? '.node24' : '';
  const label = `handshakes[fleetgate ×${n}${runtime === '24' ? ', Node 24' : ''}]`;
  const group: Child[] = [];
  try {
    let port = 0;
    for (let i = 0; i < n; i++) {
      const args = ['--pki', pkiDir, '--port', String(port), ...(n > 1 ? ['--reuse-port'] : [])];
      const child = await spawnChild(
        `fleetgate-p${i}`,
        ['--expose-gc', ...oursNodeArgs, ...tsNodeArgs],
        scripts.ours,
        args,
        { node: nodeOf(runtime) },
      );
      group.push(child);
      port = Number(child.hello.port);
    }
    const pids = group.map((c) => Number(c.hello.pid ?? c.pid));
    const r = await goHandshakeRun('snappy', { port, pids }, label);
    // How the kernel spread the sessions (warm-up included) over the processes.
    const spread = await Promise.all(
      group.map(async (c) =>
        Number((await c.request<ServerStats & { sessionsTotal: number }>('stats', {}, 60_000)).sessionsTotal),
      ),
    );
    collectHandshakeRun('ours', {
      name: `handshakes${node24}${n > 1 ? `.processes${n}` : ''}.per_cpu_s`,
      ...stormFigures(r),
      goal: 1369,
      processes: n,
      clientCpuS: Number(r.clientCpuS.toFixed(2)),
      clientCpuPct: Math.round((100 * r.clientCpuS) / r.wallS),
      sessionsPerProcess: spread,
      client: 'goagent handshake-load (grpc-go)',
      notes: `${n} gateway process${n > 1 ? 'es sharing the port (SO_REUSEPORT)' : ''}; new mTLS session + HTTP/2 + Transfer stream + first RawData (snappy) + OK status, then close; ${cfg.goHandshakeConcurrency} in flight from the Go client; ${r.completed} ok, ${r.failed} failed; sessions per process ${spread.join('/')}; server CPU from /proc, summed`,
    });
  } catch (err) {
    const msg = `${label}: ${(err as Error).message}`;
    problems.push(msg);
    progress(`ERROR ${msg}`);
  } finally {
    await Promise.allSettled(group.map((c) => c.stop(15_000)));
  }
}

/**
 * The handshakes test: every server once per round, then again (a shared machine's load moves
 * all alike); the external gateway once per round after ours (a Go server runs on no Node
 * runtime); then each figure's median.
 */
async function handshakeRounds(): Promise<void> {
  const has = (s: HandshakeServer) => cfg.handshakeServers.has(s);
  const go = cfg.handshakeClient === 'go';
  if (cfg.externalCmd !== undefined) await setUpExternalKafka();
  try {
    for (currentRound = 0; currentRound < cfg.repeat; currentRound++) {
      if (cfg.repeat > 1) progress(`handshakes: round ${currentRound + 1} of ${cfg.repeat}`);
      for (const runtime of cfg.runtimes) {
        if (has('fleetgate')) {
          if (scaling) for (const n of cfg.processes) await processesTest(runtime, n);
          else await handshakeTest('ours', runtime);
        }
        if (has('grpc-js')) await handshakeTest('baseline', runtime);
        if (has('tickets')) await handshakeTest('ours', runtime, true);
        if (go && has('floor')) await floorTest(runtime, true);
        if (go && has('floor-no-crl')) await floorTest(runtime, false);
      }
      if (cfg.externalCmd !== undefined) await externalHandshakeTest();
    }
  } finally {
    await releaseExternalKafka();
  }
  recordHandshakeMedians();
}

/** Each handshake measurement's runs (`--repeat`), recorded as their median once all have run. */
const handshakeRuns = new Map<string, { impl: Column; runs: Result[] }>();

function collectHandshakeRun(impl: Column, r: Result): void {
  const key = `${impl} ${r.name}`;
  const entry = handshakeRuns.get(key) ?? { impl, runs: [] };
  entry.runs.push({ ...r, round: currentRound + 1 });
  handshakeRuns.set(key, entry);
  noteRound(handshakeColumn(impl, r.name), r.value ?? 0);
}

/** The handshakes round running now (0-based), and each server's figure per round, by column. */
let currentRound = 0;
const roundFigures = new Map<string, (number | null)[]>();

function noteRound(column: string, value: number): void {
  const figures = roundFigures.get(column) ?? Array.from({ length: cfg.repeat }, () => null);
  figures[currentRound] = value;
  roundFigures.set(column, figures);
}

/** The per-round table's name of a handshake result: the server, its runtime and variant. */
function handshakeColumn(impl: Column, name: string): string {
  const who = impl === 'ours' ? 'fleetgate' : impl === 'baseline' ? baselineName : cfg.externalName;
  const m = /^handshakes(\.node24)?(?:\.processes(\d+))?(\.tickets)?\.per_cpu_s$/.exec(name);
  return `${who}${m?.[2] ? ` ×${m[2]}` : ''}${m?.[1] ? ', Node 24' : ''}${m?.[3] ? ', default tickets' : ''}`;
}

/** The run of median value (the lower one of an even count), with every run's value alongside. */
function median<T>(runs: T[], value: (r: T) => number): T {
  const sorted = [...runs].sort((a, b) => value(a) - value(b));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function recordHandshakeMedians(): void {
  for (const { impl, runs } of handshakeRuns.values()) {
    const mid = median(runs, (r) => r.value ?? 0);
    const values = runs.map((r) => r.value ?? 0);
    record(impl, {
      ...mid,
      runs: values,
      wallRates: runs.map((r) => r.wallRate),
      notes:
        runs.length > 1
          ? `median of ${runs.length} alternating runs (${values.map((v) => fmt(v)).join(', ')}); ${mid.notes}`
          : (mid.notes ?? ''),
    });
  }
}

/**
 * Sessions per CPU-s of a bare node:http2 server (Node's floor), per runtime (`24`, `current`;
 * `… no-crl` without the CRL) and run: Go client only.
 */
const floors: Record<string, number[]> = {};

async function floorTest(runtime: string, crl: boolean): Promise<void> {
  const label = `handshakes[bare node:http2${runtime === '24' ? ', Node 24' : ''}${crl ? ', CRL in OpenSSL' : ', no CRL'}]`;
  let child: Child | undefined;
  try {
    child = await spawnChild(
      'bare-http2',
      [...oursNodeArgs, ...tsNodeArgs],
      scripts.floor,
      ['--pki', pkiDir, ...(crl ? [] : ['--no-crl'])],
      {
        node: nodeOf(runtime),
      },
    );
    const server = { port: Number(child.hello.port), pids: [Number(child.hello.pid)] };
    const r = await goHandshakeRun('identity', server, label);
    const key = crl ? runtime : `${runtime} no-crl`;
    const runs = floors[key] ?? [];
    runs.push(Math.round(r.calls / r.cpu));
    floors[key] = runs;
    noteRound(
      `bare node:http2${runtime === '24' ? ', Node 24' : ''}${crl ? ', CRL' : ', no CRL'}`,
      runs.at(-1)!,
    );
  } catch (err) {
    problems.push(`${label}: ${(err as Error).message}`);
  } finally {
    await child?.stop(5000);
  }
}

// ---- the --external-cmd gateway in the handshakes test ---------------------------------------

/** The broker and topic the external gateway gets (it may need Kafka to start, as Elkeid's AC does). */
let kafka: BenchKafka | undefined;
const externalTopic = `fleetgate-bench-handshakes-${Date.now().toString(36)}-${process.pid}`;
let externalTopicCreated = false;

async function setUpExternalKafka(): Promise<void> {
  kafka = await benchKafka(values.brokers, progress);
  await createBenchTopics(kafka.brokers, [externalTopic], 4);
  externalTopicCreated = true;
  progress(`${cfg.externalName}: Kafka ${kafka.brokers.join(',')}, topic ${externalTopic}`);
}

async function releaseExternalKafka(): Promise<void> {
  if (kafka && externalTopicCreated) {
    externalTopicCreated = false;
    await deleteBenchTopics(kafka.brokers, [externalTopic]).catch((err: Error) => {
      problems.push(`could not delete the topic ${externalTopic}: ${err.message}`);
    });
  }
  await kafka?.stop();
  kafka = undefined;
}

/**
 * One storm against a fresh process of --external-cmd: the Go client reads the CPU of every
 * process of the tree CMD started (the shell unless it exec'd, the gateway, its helpers) over
 * its window, as it reads our server's.
 */
async function externalHandshakeTest(): Promise<void> {
  const label = `handshakes[${cfg.externalName}]`;
  const host = '127.0.0.1';
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'fg-bench-external-'));
  let child: Child | undefined;
  try {
    child = await startExternalGateway({
      name: cfg.externalName,
      cmd: cfg.externalCmd!,
      settings: {
        host,
        port: await freePort(host),
        brokers: kafka!.brokers,
        topic: externalTopic,
        pkiDir,
        workDir,
      },
      records: () => 0, // not read here: sessions are what the Go client counts
    });
    const pids = processTree(Number(child.hello.pid)).map((p) => p.pid);
    const r = await goHandshakeRun('snappy', { port: Number(child.hello.port), pids }, label);
    const after = await child.request<ServerStats>('stats');
    collectHandshakeRun('external', {
      name: 'handshakes.per_cpu_s',
      ...stormFigures(r),
      clientCpuS: Number(r.clientCpuS.toFixed(2)),
      processes: pids.length,
      rssAfterMiB: Number((after.rss / 2 ** 20).toFixed(1)),
      client: 'goagent handshake-load (grpc-go)',
      notes: `${cfg.externalName} through --external-cmd; new mTLS session + HTTP/2 + Transfer stream + first RawData (snappy) + its status, then close; ${cfg.goHandshakeConcurrency} in flight from the Go client; ${r.completed} ok, ${r.failed} failed; CPU of its ${pids.length} process(es) from /proc`,
    });
  } catch (err) {
    const msg = `${label}: ${(err as Error).message}`;
    problems.push(msg);
    progress(`ERROR ${msg}`);
  } finally {
    if (child) {
      if (!child.alive)
        problems.push(`${label}: it had exited before the end of its run:\n${child.stderrTail()}`);
      await child.stop(30_000);
    }
    rmSync(workDir, { recursive: true, force: true });
  }
}

// ---- test 3: records -----------------------------------------------------------------------

async function recordsRun(impl: Impl, encoding: WireEncoding, server: Server, label: string) {
  const target = { host: '127.0.0.1', port: server.port };
  const shares = split(cfg.recordAgents, clients.length);
  let base = 0;
  const ups = await Promise.all(
    clients.map((c, i) => {
      const args = {
        target,
        encoding,
        agents: shares[i],
        indexBase: base,
        recordsPerMessage: cfg.recordsPerMessage,
        recordBytes: cfg.recordBytes,
        localAddresses: locals,
      };
      base += shares[i]!;
      return c.request('records', args, 120_000);
    }),
  );
  const connected = ups.reduce((n, u) => n + Number(u.connected), 0);
  const shape = ups[0]!;
  await sleep(cfg.warmupS * 1000);
  const w = await measureWindow(server, cfg.durationS * 1000, label, (a, b) => {
    const cpu = cpuSeconds(a, b);
    return `${fmt(b.records - a.records)} records, ${fmt((b.records - a.records) / Math.max(cpu, 1e-6))} per server CPU-s`;
  });
  const stops = await Promise.all(clients.map((c) => c.request('stop', {}, 120_000)));
  const errors: Record<string, number> = {};
  let lost = 0;
  for (const s of stops) {
    mergeCounts(errors, s.errors);
    lost += Number(s.streamsLost);
  }
  if (lost > 0 || Object.keys(errors).length > 0) {
    problems.push(
      `${label}: ${lost} streams ended by the server while sending; errors: ${describeErrors(errors)}`,
    );
  }
  const records = w.end.records - w.start.records;
  const cpu = cpuSeconds(w.start, w.end);
  const rawPerMsg = Number(shape.rawBytesPerMessage);
  const wirePerMsg = Number(shape.wireBytesPerMessage);
  return {
    impl,
    connected,
    records,
    cpu,
    wallS: w.wallS,
    rawPerMsg,
    wirePerMsg,
    bodyPerRecord: Number(shape.bodyBytesPerRecord),
  };
}

async function recordsTest(impl: Impl, encoding: WireEncoding): Promise<void> {
  const label = `records[${impl === 'ours' ? 'fleetgate' : 'grpc-js'} ${encoding}]`;
  await withServer(impl, async (server) => {
    const r = await recordsRun(impl, encoding, server, label);
    const mbPerCpu = ((r.records / cfg.recordsPerMessage) * r.rawPerMsg) / r.cpu / 1e6;
    record(impl, {
      name: `records.${encoding}.per_cpu_s`,
      value: Math.round(r.records / r.cpu),
      unit: 'records/CPU-s',
      better: 'higher',
      records: r.records,
      serverCpuS: Number(r.cpu.toFixed(2)),
      wallRate: Math.round(r.records / r.wallS),
      serverCpuPct: Math.round((100 * r.cpu) / r.wallS),
      rawMBPerCpuS: Number(mbPerCpu.toFixed(1)),
      notes: `${r.connected} agents, ${cfg.recordsPerMessage} records/msg, body ≈ ${Math.round(r.bodyPerRecord)} B, RawData ≈ ${Math.round(r.rawPerMsg)} B, on the wire ≈ ${Math.round(r.wirePerMsg)} B/msg (${encoding}); ≈ ${mbPerCpu.toFixed(1)} MB of RawData per server CPU-s`,
    });
  });
}

/** An extra run of our server under --cpu-prof (not counted); returns the profile's path. */
async function profileRun(kind: 'records' | 'handshakes'): Promise<string | undefined> {
  const dir = path.resolve(values['profile-dir'] ?? '.');
  mkdirSync(dir, { recursive: true });
  // Node names profiles CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; with tsx the ESM
  // loader thread writes one too, so each run gets its own directory and we keep thread 0's.
  const runDir = mkdtempSync(path.join(dir, '.cpu-prof-'));
  const name = `gateway-${kind}-snappy-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`;
  const label = `profile[fleetgate ${kind} snappy]`;
  progress(`${label}: extra run under --cpu-prof (not counted)`);
  await withServer(
    'ours',
    async (server) => {
      if (kind === 'records') await recordsRun('ours', 'snappy', server, label);
      else if (cfg.handshakeClient === 'go')
        await goHandshakeRun('snappy', { port: server.port, pids: [server.pid] }, label);
      else await handshakeRun('snappy', server, label);
    },
    ['--cpu-prof', '--cpu-prof-dir', runDir],
  );
  try {
    const main = readdirSync(runDir).find((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f));
    if (!main) {
      problems.push(`profile: the main thread's profile was not written for ${kind}`);
      return undefined;
    }
    const file = path.join(dir, name);
    renameSync(path.join(runDir, main), file);
    return path.relative(process.cwd(), file) || file;
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
}

// ---- report --------------------------------------------------------------------------------

const LABELS: Record<string, string> = {
  'idle.rss_per_agent': 'idle: server RSS per agent',
  'idle.heap_per_agent': 'idle: JS heap per agent',
  'idle.native_per_agent': 'idle: non-heap per agent',
  'idle.agents_connected': 'idle: agents connected',
  'idle.connects_per_cpu_s': 'idle: connects per server CPU-s',
  'idle.heap_retained_after_disconnect': 'idle: heap retained after all left',
  'handshakes.per_cpu_s': 'new mTLS sessions per server CPU-s',
  'handshakes.node24.per_cpu_s': 'new mTLS sessions per server CPU-s, Node 24',
  'handshakes.tickets.per_cpu_s': '  the same, fleetgate with OpenSSL default tickets (before)',
  'handshakes.node24.tickets.per_cpu_s': '  the same on Node 24, OpenSSL default tickets (before)',
  'records.snappy.per_cpu_s': 'records per server CPU-s (snappy)',
  'records.identity.per_cpu_s': 'records per server CPU-s (identity)',
};

/** `handshakes[.node24].processes<n>.per_cpu_s`: the `--processes` rows. */
function processesLabel(name: string): string | undefined {
  const m = /^handshakes(\.node24)?\.processes(\d+)\.per_cpu_s$/.exec(name);
  return m ? `  the same, ${m[2]} processes on one port${m[1] ? ', Node 24' : ''}` : undefined;
}

const show = (r: Result | undefined) =>
  r && r.value !== null ? fmt(r.value === 0 ? 0 : r.value, Number.isInteger(r.value) ? 0 : 1) : 'n/a';

/**
 * The external gateway's figure to set beside one of ours: its sessions per CPU-s beside each of
 * our handshake rows (every runtime, every number of processes), nothing elsewhere.
 */
function externalFor(name: string): Result | undefined {
  if (!/^handshakes(\.node24)?(\.processes\d+)?\.per_cpu_s$/.test(name)) return undefined;
  return results.external.find((r) => r.name === 'handshakes.per_cpu_s');
}

function table(): string {
  const names = resultNames(results);
  const ext = results.external.length > 0;
  const rows: string[][] = [
    [
      'metric',
      'unit',
      'fleetgate',
      'grpc-js',
      'ratio',
      ...(ext ? [cfg.externalName, `fleetgate/${cfg.externalName}`] : []),
      'goal',
    ],
  ];
  let starred = false;
  for (const name of names) {
    const ours = results.ours.find((r) => r.name === name);
    let base = results.baseline.find((r) => r.name === name);
    let star = '';
    if ((!base || base.value === null) && name === 'records.snappy.per_cpu_s') {
      base = results.baseline.find((r) => r.name === 'records.identity.per_cpu_s');
      star = '*';
      starred = true;
    }
    const other = externalFor(name);
    rows.push([
      LABELS[name] ?? processesLabel(name) ?? name,
      ours?.unit ?? base?.unit ?? '',
      show(ours),
      `${show(base)}${star}`,
      ratioCell(ours, base, star),
      ...(ext ? [other ? show(other) : '', ratioCell(ours, other)] : []),
      goalCell(ours, '≤'),
    ]);
  }
  const out = [textTable(rows, (i) => (i >= 2 && i <= 3) || (ext && i === 5))];
  if (starred) {
    out.push(
      '',
      '* grpc-js has no snappy codec: the snappy row compares ours (snappy, what agents send) with grpc-js on identity.',
    );
  }
  return out.join('\n');
}

/**
 * Each handshakes round's figures, server by server, with each one's ratio to the external
 * gateway of the same round when there is one: the spread a median hides.
 */
function roundsTable(): string | undefined {
  if (roundFigures.size === 0 || (cfg.repeat < 2 && results.external.length === 0)) return undefined;
  const extFigures = roundFigures.get(handshakeColumn('external', 'handshakes.per_cpu_s'));
  const rounds = Array.from({ length: cfg.repeat }, (_, i) => i);
  const rows: string[][] = [
    [
      'server',
      ...rounds.map((i) => `round ${i + 1}`),
      'median',
      ...(extFigures ? [`÷ ${cfg.externalName}`] : []),
    ],
  ];
  const medianOf = (xs: (number | null)[]) => {
    const got = xs.filter((x): x is number => x !== null);
    return got.length > 0 ? median(got, (v) => v) : null;
  };
  const extMedian = extFigures ? medianOf(extFigures) : null;
  for (const [column, figures] of roundFigures) {
    const cell = (v: number | null, i: number) => {
      const e = extFigures?.[i];
      const ratio = extFigures && figures !== extFigures && v && e ? ` (${(v / e).toFixed(2)}×)` : '';
      return v === null ? 'n/a' : `${fmt(v)}${ratio}`;
    };
    const mid = medianOf(figures);
    rows.push([
      column,
      ...rounds.map((i) => cell(figures[i] ?? null, i)),
      mid === null ? 'n/a' : fmt(mid),
      ...(extFigures
        ? [mid && extMedian && figures !== extFigures ? `${(mid / extMedian).toFixed(2)}×` : '']
        : []),
    ]);
  }
  const head = `handshakes per round, new mTLS sessions per server CPU-s${extFigures ? ` (in brackets: ÷ ${cfg.externalName} of the same round; last column: median ÷ median)` : ''}`;
  return [head, textTable(rows, (i) => i >= 1)].join('\n');
}

/** The 1 → N processes table of `--processes`, per runtime: medians over the rounds. */
function scalingTable(runtime: string): string | undefined {
  const node24 = runtime === '24' ? '.node24' : '';
  const rows: string[][] = [
    [
      'processes',
      'sessions/s (wall)',
      'per server CPU-s',
      'server CPU',
      'Go client CPU',
      'sessions per process',
    ],
  ];
  for (const n of cfg.processes) {
    const r = results.ours.find(
      (x) => x.name === `handshakes${node24}${n > 1 ? `.processes${n}` : ''}.per_cpu_s`,
    );
    if (!r || r.value === null) continue;
    const walls = (r.wallRates as number[] | undefined) ?? [Number(r.wallRate)];
    rows.push([
      String(n),
      fmt(median(walls, (v) => v)),
      fmt(r.value),
      `${r.serverCpuPct} %`,
      `${r.clientCpuPct} %`,
      (r.sessionsPerProcess as number[]).map((v) => fmt(v)).join(' / '),
    ]);
  }
  if (rows.length < 2) return undefined;
  return [
    `gateway processes sharing the agent port (SO_REUSEPORT)${runtime === '24' ? ', Node 24' : ''}: the Go client shares the ${machine.cores} cores; medians of ${cfg.repeat} rounds (server and client CPU of the median-per-CPU-s run)`,
    textTable(rows, (i) => i >= 1 && i <= 4),
  ].join('\n');
}

/** What the external column measured and how it differs from ours (printed under the tables). */
function externalNote(): string {
  const r = results.external[0]!;
  return `${cfg.externalName}: --external-cmd ${JSON.stringify(cfg.externalCmd)}, a fresh process (tree of ${r.processes}) each round, after ours; the same Go client, PKI and storm (snappy); its CPU over every process of the tree from /proc. fleetgate's handshakes check the client certificate and the CRL (${fmt(300)} revoked serials); what the external one checks is its own (Elkeid's AC: the CA chain, no CRL; docs/benchmarking-ac.md).`;
}

/** Our results with `ratioToExternal` (ours ÷ the external figure) on the rows the external has. */
function withRatioToExternal(ours: Result[]): Result[] {
  return ours.map((r) => {
    const ext = externalFor(r.name);
    if (r.value === null || !ext?.value) return r;
    return { ...r, ratioToExternal: Number((r.value / ext.value).toFixed(3)) };
  });
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<number> {
  progress(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory}, node ${machine.node}, load ${machine.loadAverageAtStart.join(' ')}`,
  );
  progress(
    `config: ${fmt(cfg.agents)} idle agents, ${cfg.durationS} s per throughput test, ${cfg.recordAgents} streaming agents, tests ${[...tests].join(',')}${quick ? ' (quick)' : ''}`,
  );
  // A CRL with a few hundred revoked serials: every handshake of ours checks it, as in production.
  await writeBenchPki(pkiDir, { revoked: 300 });
  locals = await loopbackSources(8);
  Object.assign(limits, networkLimits(locals));

  await ensureClients(cfg.loadClients);
  const clientNofile = Math.min(...clients.map((c) => Number(c.hello.nofile ?? 1024)));
  limits.clientOpenFiles = clientNofile;
  if (tests.has('idle')) {
    // Each load client holds its share of idle agents: one socket each.
    const need = Math.ceil((cfg.agents + cfg.idleWarmAgents) / Math.max(1, clientNofile - 512));
    if (need > clients.length) {
      progress(`open-file limit ${clientNofile} per client: starting ${need} load clients`);
      await ensureClients(need);
    }
  }
  limits.loadClients = clients.length;
  progress(
    `${clients.length} load clients (open files ${clientNofile} each), ${locals.length || 'no extra'} loopback source addresses`,
  );

  const order: Impl[] = ['ours', 'baseline'];
  if (tests.has('idle')) for (const impl of order) await idleTest(impl);
  if (tests.has('handshakes')) await handshakeRounds();
  if (tests.has('records')) {
    await recordsTest('ours', 'snappy');
    await recordsTest('ours', 'identity');
    await recordsTest('baseline', 'identity');
    record('baseline', {
      name: 'records.snappy.per_cpu_s',
      value: null,
      unit: 'records/CPU-s',
      better: 'higher',
      notes: 'not measurable: grpc-js has no snappy codec (a stock Elkeid agent cannot talk to it)',
    });
  }
  const profiles: string[] = [];
  if (values.profile) {
    for (const kind of ['records', 'handshakes'] as const) {
      if (!tests.has(kind)) continue;
      const file = await profileRun(kind);
      if (file) profiles.push(file);
    }
  }

  await Promise.all(clients.map((c) => c.stop(20_000)));
  rmSync(pkiDir, { recursive: true, force: true });

  const loadAverageAtEnd = loadAverageNow();
  console.log(
    `\nfleetgate gateway vs ${baselineName} — ${machine.cpu}, ${machine.cores} cores, ${machine.memory}, node ${machine.node} (OpenSSL ${machine.openssl})`,
  );
  console.log(
    `clients and servers share the machine; per-CPU-second figures divide by the server process's own CPU time (process.cpuUsage(); /proc utime+stime for the Go handshake client); load average ${machine.loadAverageAtStart.join('/')} → ${loadAverageAtEnd.join('/')}`,
  );
  if (tests.has('handshakes')) {
    console.log(
      `handshakes: ${cfg.handshakeClient === 'go' ? `Go client (goagent handshake-load, grpc-go; key exchange offered: ${cfg.curves === 'stock' ? "the stock agent's, X25519" : "Go's default, X25519MLKEM768 first"})` : 'Node load clients'}; runtimes ${JSON.stringify(runtimeVersions())}; fleetgate with bin/openssl.cnf (no TLS 1.3 session tickets), grpc-js with OpenSSL's defaults`,
    );
  }
  console.log('');
  console.log(table());
  if (scaling) {
    for (const runtime of cfg.runtimes) {
      const t = scalingTable(runtime);
      if (t) console.log(`\n${t}`);
    }
  }
  const perRound = roundsTable();
  if (perRound) console.log(`\n${perRound}`);
  if (results.external.length > 0) console.log(`\n${externalNote()}`);
  for (const runtime of cfg.runtimes) {
    for (const crl of [true, false]) {
      const runs = floors[crl ? runtime : `${runtime} no-crl`];
      if (!runs) continue;
      console.log(
        `\nNode's floor${runtime === '24' ? ' on Node 24' : ''}${crl ? ', CRL checked by OpenSSL' : ', without the CRL'}: a bare node:http2 server with the same TLS settings (client certificate, no tickets) that only answers OK: ${fmt(median(runs, (v) => v))} sessions per server CPU-s${runs.length > 1 ? ` (median of ${runs.map((v) => fmt(v)).join(', ')})` : ''}`,
      );
    }
  }
  console.log(
    `\nencodings: fleetgate idle/handshakes use snappy framing (as agents send); grpc-js gets identity everywhere.`,
  );
  console.log(`limits: ${JSON.stringify(limits)}`);
  for (const p of profiles) console.log(`cpu profile of fleetgate (extra run, not counted): ${p}`);
  printProblems(problems);
  if (values.json) {
    const doc = {
      bench: 'gateway',
      machine: { ...machine, loadAverageAtEnd },
      config: { ...cfg, quick, tests: [...tests], runtimeVersions: runtimeVersions() },
      limits,
      results: cfg.externalCmd === undefined ? results.ours : withRatioToExternal(results.ours),
      baseline: { name: baselineName, results: results.baseline },
      ...(cfg.externalCmd === undefined
        ? {}
        : { external: { name: cfg.externalName, cmd: cfg.externalCmd, results: results.external } }),
      ...(roundFigures.size > 0 ? { handshakeRounds: Object.fromEntries(roundFigures) } : {}),
      problems,
      ...(Object.keys(floors).length > 0 ? { handshakeFloor: floors } : {}),
      ...(profiles.length > 0 ? { profiles } : {}),
    };
    writeJsonReport(values.json, doc, {
      t0,
      progress,
      // An external gateway's output (in problems) may quote paths of this machine: keep them out.
      redact: (text) => text.replaceAll(root, '<project>').replaceAll(os.tmpdir(), '<tmp>'),
    });
  }
  progress(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return 0;
}

runDriver(main, async () => {
  await Promise.allSettled([...servers].map((s) => s.child.stop(2000)));
  await releaseExternalKafka();
  await Promise.allSettled(clients.map((c) => c.stop(2000)));
  rmSync(pkiDir, { recursive: true, force: true });
});
