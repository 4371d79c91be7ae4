/**
 * Node's floor under bench:ingest's paced load: the bare node:http2 mTLS server
 * (loadtest/baselines/bare-http2-server.ts: the gateway's TLS settings and CRL, HTTP/2, each
 * stream's DATA read and dropped; no gRPC parsing, no snappy, no Kafka) receiving the paced
 * agents of `goagent load` (grpc-go, snappy as the stock agent sends). Its CPU per record is what
 * any gateway on Node's TLS and HTTP/2 stack pays before it does anything with a record; the
 * rest of a gateway's cost is its own (docs/capacity.md "Paced cost"). With `--idle-agents N`
 * also the idle floor: the same server's RSS per connected, silent agent (TLS socket, HTTP/2
 * session, one open Transfer stream), measured as bench:ingest's idle phase measures a gateway.
 *
 *   npm run bench:paced-floor -- [--runtimes current,24] [--agents 100] [--interval-ms 100]
 *       [--warmup 8] [--duration 20] [--rounds 3] [--idle-agents 3000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { withGatewayNodeFlags } from '../../gateway/process/node-flags.js';
import { writeBenchPki } from './bench-setup.js';
import { type ServerStats, spawnChild } from './child-protocol.js';
import { childScripts, loadAverageNow, progressWriter, runtimeNode, sleep } from './driver.js';
import { startGoLoad } from './go-load.js';
import { machineInfo } from './machine.js';

const HELP = `Usage: npm run bench:paced-floor -- [options]

Node's TLS + HTTP/2 floor under the paced agent load of bench:ingest: a bare node:http2 mTLS
server that reads every stream and drops the bytes, its CPU per record from process.cpuUsage().
Records are counted at the agents' nominal rate (agents × records / interval); the line says
how far the agents fell behind it.

Options:
  --runtimes LIST   current and/or 24 (Node 24 from scripts/node24; default current)
  --agents N        paced agents (default 100)
  --records N       records per RawData (default 20)
  --interval-ms MS  one RawData per agent every MS (default 100)
  --warmup S        seconds of load before the measured window (default 8)
  --duration S      measured seconds (default 20; 0: no paced runs, e.g. with --idle-agents)
  --rounds N        runs per runtime, alternating runtimes (default 3); the median is the lower middle one for an even N
  --no-crl          the server without the PKI's CRL
  --idle-agents N   also, once per runtime and round: N agents connect, send their first message
                    and hold the stream; the server's RSS per agent (after a full GC before and
                    after, as bench:ingest's idle phase; default 0: skip)
  --help            this text

Progress goes to stderr; one result line per run and the medians to stdout.`;

const { values } = parseArgs({
  options: {
    runtimes: { type: 'string', default: 'current' },
    agents: { type: 'string', default: '100' },
    records: { type: 'string', default: '20' },
    'interval-ms': { type: 'string', default: '100' },
    warmup: { type: 'string', default: '8' },
    duration: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    'no-crl': { type: 'boolean', default: false },
    'idle-agents': { type: 'string', default: '0' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const { root, tsNodeArgs, script } = childScripts(import.meta.url);
const progress = progressWriter('floor', Date.now());
const num = (v: string | undefined, name: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} wants a positive number, got ${v}`);
  return n;
};
const cfg = {
  runtimes: values.runtimes.split(',').map((s) => s.trim()),
  agents: num(values.agents, 'agents'),
  records: num(values.records, 'records'),
  intervalMs: num(values['interval-ms'], 'interval-ms'),
  warmupS: num(values.warmup, 'warmup'),
  durationS: values.duration === '0' ? 0 : num(values.duration, 'duration'),
  rounds: num(values.rounds, 'rounds'),
  idleAgents: values['idle-agents'] === '0' ? 0 : num(values['idle-agents'], 'idle-agents'),
};
const nominalRate = (cfg.agents * cfg.records * 1000) / cfg.intervalMs;

const runtimeName = (runtime: string) => (runtime === '24' ? 'Node 24' : `Node ${process.versions.node}`);

/** The bare server on `runtime`, with the gateway's V8 flags and OpenSSL config. */
function spawnBareServer(pkiDir: string, runtime: string) {
  return spawnChild(
    'bare-http2',
    withGatewayNodeFlags([
      `--openssl-config=${path.join(root, 'bin', 'openssl.cnf')}`,
      '--expose-gc',
      ...tsNodeArgs,
    ]),
    script('../baselines/bare-http2-server'),
    ['--pki', pkiDir, ...(values['no-crl'] ? ['--no-crl'] : [])],
    { node: runtimeNode(root, runtime) },
  );
}

/** `goagent load` against the server: `agents` agents in `mode`, snappy as the stock agent sends. */
function startAgents(pkiDir: string, port: number, mode: 'paced' | 'idle', agents: number) {
  return startGoLoad({
    pkiDir,
    target: { host: '127.0.0.1', port },
    mode,
    agents,
    records: cfg.records,
    recordBytes: 600,
    intervalMs: cfg.intervalMs,
    compression: 'snappy',
  });
}

/** One idle run: RSS per connected, silent agent of the bare server (KiB). */
async function idleFloorRun(pkiDir: string, runtime: string): Promise<number> {
  const server = await spawnBareServer(pkiDir, runtime);
  try {
    const before = await server.request<ServerStats>('gc', {}, 60_000);
    const load = await startAgents(pkiDir, Number(server.hello.port), 'idle', cfg.idleAgents);
    try {
      const n = load.ready.connected;
      if (n !== cfg.idleAgents) throw new Error(`${n} of ${cfg.idleAgents} idle agents connected`);
      await sleep(2000);
      const after = await server.request<ServerStats>('gc', {}, 60_000);
      const kib = (b: number) => b / 1024 / n;
      const perAgent = Number(kib(after.rss - before.rss).toFixed(1));
      const line = `${runtimeName(runtime)} idle: ${n} agents, RSS ${(before.rss / 2 ** 20).toFixed(1)} → ${(after.rss / 2 ** 20).toFixed(1)} MiB = ${perAgent} KiB per agent (JS heap ${kib(after.heapUsed - before.heapUsed).toFixed(1)})`;
      console.log(line);
      progress(line);
      return perAgent;
    } finally {
      load.kill();
    }
  } finally {
    await server.stop();
  }
}

/** One run: the bare server under the paced load; records per server CPU-second. */
async function floorRun(pkiDir: string, runtime: string): Promise<number> {
  const server = await spawnBareServer(pkiDir, runtime);
  const stats = () => server.request<ServerStats>('stats', {}, 30_000);
  const cpuS = (s: ServerStats) => (s.cpuUser + s.cpuSystem) / 1e6;
  const load = await startAgents(pkiDir, Number(server.hello.port), 'paced', cfg.agents);
  try {
    if (load.ready.connected !== cfg.agents)
      throw new Error(`${load.ready.connected} of ${cfg.agents} agents connected`);
    await sleep(cfg.warmupS * 1000);
    const [s0, t0] = [await stats(), performance.now()];
    await sleep(cfg.durationS * 1000);
    const [s1, t1] = [await stats(), performance.now()];
    const done = await load.stop();
    const seconds = (t1 - t0) / 1000;
    const perCpuS = Math.round((nominalRate * seconds) / (cpuS(s1) - cpuS(s0)));
    const line = `${runtimeName(runtime)}: ${perCpuS.toLocaleString('en-US')} records per server CPU-s (server ${((100 * (cpuS(s1) - cpuS(s0))) / seconds).toFixed(1)} % of a core at ${nominalRate.toLocaleString('en-US')} records/s; agents at most ${done.max_behind} messages behind)`;
    console.log(line);
    progress(line);
    return perCpuS;
  } finally {
    load.kill();
    await server.stop();
  }
}

async function main(): Promise<void> {
  const m = machineInfo();
  console.log(
    `paced floor (bare node:http2 mTLS, bytes dropped) — ${m.cpu}, ${m.cores} cores; load average ${loadAverageNow()}`,
  );
  const pkiDir = mkdtempSync(path.join(os.tmpdir(), 'fg-floor-pki-'));
  try {
    await writeBenchPki(pkiDir, { revoked: 100 });
    const paced = new Map<string, number[]>(cfg.runtimes.map((r) => [r, []]));
    const idle = new Map<string, number[]>(cfg.runtimes.map((r) => [r, []]));
    for (let round = 1; round <= cfg.rounds; round++) {
      for (const runtime of cfg.runtimes) {
        if (cfg.durationS > 0) {
          progress(
            `round ${round}/${cfg.rounds}, ${runtime}: ${cfg.agents} agents, ${cfg.warmupS} s warm-up, ${cfg.durationS} s measured`,
          );
          paced.get(runtime)!.push(await floorRun(pkiDir, runtime));
        }
        if (cfg.idleAgents > 0) {
          progress(`round ${round}/${cfg.rounds}, ${runtime}: ${cfg.idleAgents} idle agents`);
          idle.get(runtime)!.push(await idleFloorRun(pkiDir, runtime));
        }
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
    for (const [runtime, xs] of paced) {
      if (xs.length === 0) continue;
      console.log(
        `median ${runtime}: ${median(xs).toLocaleString('en-US')} records per server CPU-s (runs: ${xs.join(', ')})`,
      );
    }
    for (const [runtime, xs] of idle) {
      if (xs.length === 0) continue;
      console.log(`median ${runtime} idle: ${median(xs)} KiB per agent (runs: ${xs.join(', ')})`);
    }
  } finally {
    rmSync(pkiDir, { recursive: true, force: true });
  }
}

await main();
