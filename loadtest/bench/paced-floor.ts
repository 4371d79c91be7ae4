/**
 * Node's floor under bench:ingest's paced load: the bare node:http2 mTLS server
 * (loadtest/baselines/bare-http2-server.ts: the gateway's TLS settings and CRL, HTTP/2, each
 * stream's DATA read and dropped; no gRPC parsing, no snappy, no Kafka) receiving the paced
 * agents of `goagent load` (grpc-go, snappy as the stock agent sends). Its CPU per record is what
 * any gateway on Node's TLS and HTTP/2 stack pays before it does anything with a record; the
 * rest of a gateway's cost is its own (docs/capacity.md "Paced cost").
 *
 *   npm run bench:paced-floor -- [--runtimes current,24] [--agents 100] [--interval-ms 100]
 *       [--warmup 8] [--duration 20] [--rounds 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
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
  --duration S      measured seconds (default 20)
  --rounds N        runs per runtime, alternating runtimes (default 3); the median is the lower middle one for an even N
  --no-crl          the server without the PKI's CRL
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
  durationS: num(values.duration, 'duration'),
  rounds: num(values.rounds, 'rounds'),
};
const nominalRate = (cfg.agents * cfg.records * 1000) / cfg.intervalMs;

/** One run: the bare server under the paced load; records per server CPU-second. */
async function floorRun(pkiDir: string, runtime: string): Promise<number> {
  const server = await spawnChild(
    'bare-http2',
    [`--openssl-config=${path.join(root, 'bin', 'openssl.cnf')}`, ...tsNodeArgs],
    script('../baselines/bare-http2-server'),
    ['--pki', pkiDir, ...(values['no-crl'] ? ['--no-crl'] : [])],
    { node: runtimeNode(root, runtime) },
  );
  const stats = () => server.request<ServerStats>('stats', {}, 30_000);
  const cpuS = (s: ServerStats) => (s.cpuUser + s.cpuSystem) / 1e6;
  const load = await startGoLoad({
    pkiDir,
    target: { host: '127.0.0.1', port: Number(server.hello.port) },
    mode: 'paced',
    agents: cfg.agents,
    records: cfg.records,
    recordBytes: 600,
    intervalMs: cfg.intervalMs,
    compression: 'snappy',
  });
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
    const line = `${runtime === '24' ? 'Node 24' : `Node ${process.versions.node}`}: ${perCpuS.toLocaleString('en-US')} records per server CPU-s (server ${((100 * (cpuS(s1) - cpuS(s0))) / seconds).toFixed(1)} % of a core at ${nominalRate.toLocaleString('en-US')} records/s; agents at most ${done.max_behind} messages behind)`;
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
    const results = new Map<string, number[]>(cfg.runtimes.map((r) => [r, []]));
    for (let round = 1; round <= cfg.rounds; round++) {
      for (const runtime of cfg.runtimes) {
        progress(
          `round ${round}/${cfg.rounds}, ${runtime}: ${cfg.agents} agents, ${cfg.warmupS} s warm-up, ${cfg.durationS} s measured`,
        );
        results.get(runtime)!.push(await floorRun(pkiDir, runtime));
      }
    }
    for (const [runtime, xs] of results) {
      const sorted = [...xs].sort((a, b) => a - b);
      const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
      console.log(
        `median ${runtime}: ${median.toLocaleString('en-US')} records per server CPU-s (runs: ${xs.join(', ')})`,
      );
    }
  } finally {
    rmSync(pkiDir, { recursive: true, force: true });
  }
}

await main();
