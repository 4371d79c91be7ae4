/**
 * `npm run bench:discovery`: `/registry/detail?name=hids_svr_grpc&count=10` (what every agent
 * asks) with 100 registered gateways, served by our discovery on uWebSockets.js, against a
 * baseline: the same handler on node:http, side by side in one invocation.
 *
 * The store is dynalite in this (the driver) process; each server runs in its own child process, and the load comes from another
 * child (keep-alive HTTP/1.1 over raw sockets, one request in flight per connection), so each
 * side's CPU is its own. Runs per server:
 *   closed   every connection sends its next request as soon as the answer is in: the most the
 *            server serves (requests/s, and per server CPU-second: what one core gives), with
 *            the latency that saturation costs;
 *   paced    open loop at --rate requests/s (default 30,000, the goal): p50/p99 latency from
 *            each request's scheduled time;
 *   miss     a cache miss, timed inside the server: cache cleared, then one detail request
 *            (one DynamoDB Query of 100 items against dynalite, and the preparation of the
 *            answer); with a cache hit for contrast.
 */
import { parseArgs } from 'node:util';
import { createRegistryStore } from '../../discovery/registry-store.js';
import { createDynamoClient, ensureTables } from '../../platform/store/dynamo-client.js';
import { startEmbeddedDynamo } from '../../platform/store/embedded.js';
import { TABLES } from '../../platform/store/schema.js';
import { type Child, type ServerStats, spawnChild } from './child-protocol.js';
import {
  type BenchResult,
  childScripts,
  cpuSeconds as cpuS,
  fmt,
  goalCell,
  loadAverageNow,
  printProblems,
  progressWriter,
  ratioCell,
  recorder,
  resultNames,
  runDriver,
  textTable,
  writeJsonReport,
} from './driver.js';
import { machineInfo } from './machine.js';

const HELP = `Usage: npm run bench:discovery -- [options]

Benchmarks /registry/detail of fleetgate discovery (uWebSockets.js) against the same handler on
node:http, side by side, with 100 registered gateways.

Options:
  --gateways N      registered hids_svr_grpc instances (default 100)
  --duration S      seconds per measured run (default 10; --quick: 3)
  --connections N   keep-alive client connections (default 32)
  --rate N          requests/s of the paced run, the same for both servers (default: the goal,
                    30000, or 80 % of what ours served in the closed loop if that is less:
                    a paced run above capacity measures only the growing queue)
  --quick           short runs for a smoke test (well under a minute)
  --json FILE       also write the results as JSON
  --server-node-args="ARGS"
                    extra node options for the server children, e.g. "--cpu-prof" (the
                    profiles are written to the current directory)
  --help            this text

Progress goes to stderr; the result table to stdout.`;

const { values } = parseArgs({
  options: {
    gateways: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string' },
    rate: { type: 'string' },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    'server-node-args': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const positive = (name: string, v: string | undefined, fallback: number): number => {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${v}`);
  return n;
};
const quick = values.quick === true;
const cfg = {
  gateways: Math.floor(positive('gateways', values.gateways, 100)),
  durationS: positive('duration', values.duration, quick ? 3 : 10),
  connections: Math.floor(positive('connections', values.connections, 32)),
  /** Set after our closed loop when not given. */
  rate: values.rate === undefined ? 0 : Math.floor(positive('rate', values.rate, 30_000)),
  warmupS: quick ? 1 : 2,
  misses: quick ? 100 : 300,
  path: '/registry/detail?name=hids_svr_grpc&count=10',
};
const GOAL_RPS = 30_000;
const GOAL_P99_MS = 2;

const { tsNodeArgs: nodeArgs, script } = childScripts(import.meta.url);

const t0 = Date.now();
const progress = progressWriter('bench', t0);

type Impl = 'ours' | 'baseline';
type Result = BenchResult & { better: 'higher' | 'lower' };
const results: Record<Impl, Result[]> = { ours: [], baseline: [] };
const problems: string[] = [];
const notes: string[] = [];
const record = recorder(results);

interface LoadResult {
  requests: number;
  non200: number;
  errors: number;
  elapsedS: number;
  rps: number;
  latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  clientCpuS: number;
  clientLoopDelayMs: { p99: number; max: number };
}
/**
 * A load run's p50 and p99 latency as `detail.<run>.p50_ms` / `.p99_ms` results; `p99Goal` is the
 * p99's goal where it applies to this run.
 */
function recordLatency(impl: Impl, run: string, latencyUs: LoadResult['latencyUs'], p99Goal?: number): void {
  record(impl, { name: `detail.${run}.p50_ms`, value: latencyUs.p50 / 1000, unit: 'ms', better: 'lower' });
  record(impl, {
    name: `detail.${run}.p99_ms`,
    value: latencyUs.p99 / 1000,
    unit: 'ms',
    better: 'lower',
    ...(p99Goal !== undefined ? { goal: p99Goal } : {}),
  });
}

type ServerStatsEx = ServerStats & { loopDelay: { p50Ms: number; p99Ms: number; maxMs: number } };
interface TimingResult {
  n: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  instances: number;
}

const machine = machineInfo();

async function benchServer(impl: Impl, endpoint: string, prefix: string, load: Child): Promise<void> {
  const label = impl === 'ours' ? 'uWS' : 'node:http';
  const server = await spawnChild(`discovery-${impl}`, nodeArgs, script('discovery-server'), [
    '--impl',
    impl === 'ours' ? 'uws' : 'node',
    '--endpoint',
    endpoint,
    '--prefix',
    prefix,
  ]);
  try {
    const port = Number(server.hello.port);
    const probe = (await (await fetch(`http://127.0.0.1:${port}${cfg.path}`)).json()) as { data: unknown[] };
    if (probe.data.length !== Math.min(10, cfg.gateways)) {
      problems.push(
        `${label}: detail answered ${probe.data.length} instances, expected ${Math.min(10, cfg.gateways)}`,
      );
    }
    const runLoad = (durationMs: number, rate?: number) =>
      load.request<LoadResult>(
        'run',
        { port, path: cfg.path, connections: cfg.connections, durationMs, ...(rate ? { rate } : {}) },
        durationMs + 60_000,
      );
    const check = (what: string, r: LoadResult) => {
      if (r.errors > 0 || r.non200 > 0)
        problems.push(`${label} ${what}: ${r.errors} socket errors, ${r.non200} non-200 answers`);
    };

    progress(`${label}: warm-up ${cfg.warmupS} s`);
    await runLoad(cfg.warmupS * 1000);

    progress(`${label}: closed loop, ${cfg.connections} connections, ${cfg.durationS} s`);
    const s0 = await server.request<ServerStats>('stats');
    const closed = await runLoad(cfg.durationS * 1000);
    const s1 = await server.request<ServerStats>('stats');
    check('closed', closed);
    const serverCpu = cpuS(s0, s1);
    record(impl, {
      name: 'detail.closed.rps',
      value: Math.round(closed.rps),
      unit: 'req/s',
      better: 'higher',
      ...(impl === 'ours' ? { goal: GOAL_RPS } : {}),
      notes: `server CPU ${fmt((serverCpu / closed.elapsedS) * 100)} % of one core, client ${fmt((closed.clientCpuS / closed.elapsedS) * 100)} %`,
    });
    record(impl, {
      name: 'detail.closed.per_server_cpu_s',
      value: Math.round(closed.requests / serverCpu),
      unit: 'req/CPU-s',
      better: 'higher',
      ...(impl === 'ours' ? { goal: GOAL_RPS } : {}),
    });
    // The goal (≥ 30,000 req/s with p99 < 2 ms) is judged on a run that reached 30,000 req/s.
    recordLatency(
      impl,
      'closed',
      closed.latencyUs,
      impl === 'ours' && closed.rps >= GOAL_RPS ? GOAL_P99_MS : undefined,
    );
    record(impl, {
      name: 'server.rss_mb',
      value: Math.round(s1.rss / 2 ** 20),
      unit: 'MiB',
      better: 'lower',
    });

    if (cfg.rate === 0) {
      cfg.rate = Math.min(GOAL_RPS, Math.floor((closed.rps * 0.8) / 1000) * 1000);
      if (cfg.rate < GOAL_RPS) {
        notes.push(
          `paced runs at ${fmt(cfg.rate)} req/s, 80 % of the ${fmt(closed.rps)} req/s our server reached on this machine (below the ${fmt(GOAL_RPS)} goal)`,
        );
      }
    }
    progress(`${label}: paced at ${fmt(cfg.rate)} req/s, ${cfg.durationS} s`);
    const p0 = await server.request<ServerStatsEx>('stats', { resetLoopDelay: true });
    const paced = await runLoad(cfg.durationS * 1000, cfg.rate);
    const p1 = await server.request<ServerStatsEx>('stats');
    check('paced', paced);
    record(impl, {
      name: 'detail.paced.rps',
      value: Math.round(paced.rps),
      unit: 'req/s',
      better: 'higher',
      target: cfg.rate,
      notes:
        `server CPU ${fmt((cpuS(p0, p1) / paced.elapsedS) * 100)} % of one core; event-loop delay ` +
        `server p99 ${fmt(p1.loopDelay.p99Ms, 1)} ms max ${fmt(p1.loopDelay.maxMs, 1)} ms, ` +
        `client p99 ${fmt(paced.clientLoopDelayMs.p99, 1)} ms max ${fmt(paced.clientLoopDelayMs.max, 1)} ms`,
      serverLoopDelayMs: p1.loopDelay,
      clientLoopDelayMs: paced.clientLoopDelayMs,
    });
    recordLatency(impl, 'paced', paced.latencyUs, impl === 'ours' ? GOAL_P99_MS : undefined);
    record(impl, {
      name: 'detail.paced.p999_ms',
      value: paced.latencyUs.p999 / 1000,
      unit: 'ms',
      better: 'lower',
    });

    progress(`${label}: ${cfg.misses} cache misses`);
    const miss = await server.request<TimingResult>('miss', { n: cfg.misses });
    const hit = await server.request<TimingResult>('hit', { n: cfg.misses * 10 });
    record(impl, {
      name: 'cache_miss.p50_ms',
      value: miss.p50Ms,
      unit: 'ms',
      better: 'lower',
      instances: miss.instances,
    });
    record(impl, { name: 'cache_miss.p99_ms', value: miss.p99Ms, unit: 'ms', better: 'lower' });
    record(impl, { name: 'cache_hit.p50_ms', value: hit.p50Ms, unit: 'ms', better: 'lower' });
  } catch (err) {
    problems.push(`${label}: ${(err as Error).message}`);
    progress(`ERROR ${label}: ${(err as Error).message}`);
  } finally {
    const tail = server.stderrTail();
    await server.stop(10_000);
    if (tail.trim() !== '') progress(`${label} stderr:\n${tail}`);
  }
}

const LABELS: Record<string, string> = {
  'detail.closed.rps': 'closed loop: requests/s',
  'detail.closed.per_server_cpu_s': 'closed loop: requests per server CPU-s',
  'detail.closed.p50_ms': 'closed loop: p50',
  'detail.closed.p99_ms': 'closed loop: p99',
  'detail.paced.rps': 'paced: requests/s achieved',
  'detail.paced.p50_ms': 'paced: p50',
  'detail.paced.p99_ms': 'paced: p99',
  'detail.paced.p999_ms': 'paced: p99.9',
  'cache_miss.p50_ms': 'cache miss (Query + prepare): p50',
  'cache_miss.p99_ms': 'cache miss: p99',
  'cache_hit.p50_ms': 'cache hit, in-process: p50',
  'server.rss_mb': 'server RSS after the closed loop',
};

function table(): string {
  const names = resultNames(results);
  const rows: string[][] = [['metric', 'unit', 'uWS (ours)', 'node:http', 'ratio', 'goal']];
  const show = (r: Result | undefined) =>
    r && r.value !== null ? fmt(r.value, Number.isInteger(r.value) ? 0 : r.value < 1 ? 3 : 2) : 'n/a';
  for (const name of names) {
    const ours = results.ours.find((r) => r.name === name);
    const base = results.baseline.find((r) => r.name === name);
    rows.push([
      LABELS[name] ?? name,
      ours?.unit ?? base?.unit ?? '',
      show(ours),
      show(base),
      ratioCell(ours, base),
      goalCell(ours, '<'),
    ]);
  }
  return textTable(rows, (i) => i >= 2 && i <= 3);
}

async function main(): Promise<number> {
  progress(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory}, node ${machine.node}`);
  progress(
    `config: ${cfg.gateways} gateways, ${cfg.connections} connections, ${cfg.durationS} s per run, paced at ${cfg.rate ? `${fmt(cfg.rate)} req/s` : 'auto'}${quick ? ' (quick)' : ''}`,
  );
  const dynamo = await startEmbeddedDynamo({});
  const client = createDynamoClient({ endpoint: dynamo.endpoint });
  const prefix = 'bench-';
  await ensureTables(client, prefix, [TABLES.registry]);
  // Registered once with a long TTL: renewals (20 writes/s for 100 gateways) are DynamoDB's work in
  // production, and dynalite doing them here would take CPU from the server and client measured on
  // this small machine. The server still refreshes its cached answer from the store every second.
  const store = createRegistryStore({ client, tablePrefix: prefix, ttlMs: 3_600_000 });
  for (let i = 0; i < cfg.gateways; i += 10) {
    await Promise.all(
      Array.from({ length: Math.min(10, cfg.gateways - i) }, (_, j) =>
        store.register({
          name: 'hids_svr_grpc',
          ip: `10.1.${Math.floor((i + j) / 250)}.${((i + j) % 250) + 1}`,
          port: 6751,
          weight: ((i + j) * 37) % 9000,
          limit: 10_000,
        }),
      ),
    );
  }
  progress(`dynalite at ${dynamo.endpoint}: ${cfg.gateways} gateways registered`);

  const load = await spawnChild('load', nodeArgs, script('discovery-load'), []);
  try {
    for (const impl of ['ours', 'baseline'] as const) await benchServer(impl, dynamo.endpoint, prefix, load);
  } finally {
    await load.stop(5000);
    client.destroy();
    await dynamo.close();
  }

  const loadAverageAtEnd = loadAverageNow();
  console.log(
    `\nfleetgate discovery /registry/detail (count=10, ${cfg.gateways} gateways) — ${machine.cpu}, ${machine.cores} cores, ${machine.memory}, node ${machine.node}`,
  );
  console.log(
    `client and servers share the machine (one load process, one server process at a time); load average ${machine.loadAverageAtStart.join('/')} → ${loadAverageAtEnd.join('/')}\n`,
  );
  console.log(table());
  for (const impl of ['ours', 'baseline'] as const) {
    for (const r of results[impl])
      if (r.notes) console.log(`  ${impl === 'ours' ? 'uWS' : 'node:http'} ${r.name}: ${r.notes}`);
  }
  for (const n of notes) console.log(`note: ${n}`);
  printProblems(problems);
  if (values.json) {
    const doc = {
      bench: 'discovery',
      machine: { ...machine, loadAverageAtEnd },
      config: { ...cfg, quick },
      results: results.ours,
      baseline: { name: 'node:http (same handler)', results: results.baseline },
      notes,
      problems,
    };
    writeJsonReport(values.json, doc, { t0, progress });
  }
  progress(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return 0;
}

runDriver(main);
