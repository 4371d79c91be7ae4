/**
 * `npm run bench:fleet`: one gateway and the agent simulator on this machine, for our gateway
 * and then the @grpc/grpc-js baseline in the same invocation (not a test; bounded in time).
 * A process holds one socket per agent: where the hard open-file limit cannot be raised, G
 * gateway processes (--gateways) share the agents (simulator process k dials gateway k mod G)
 * and their counters are summed.
 *
 * Per gateway (a child process: loadtest/bench/fleet-gateway.ts, i.e. startGateway plus the
 * control API of the `fleetgate gateway` role with a counting sink; or
 * loadtest/baselines/grpcjs-gateway.ts), with the simulator in P other child processes
 * (loadtest/bench/fleet-sim.ts: loadtest/sim/sim-agent.ts agents, mTLS, 100 ms send tick, 60 s
 * heartbeats, the scenario's event mix and rate, 5 s reconnect, spread over loopback source
 * addresses):
 *
 *   ramp     agents join at --ramp-rate per second in steps of --step; after each step the
 *            gateway must hold every agent started and receive ≥ 90 % of the records offered,
 *            else the ramp stops there (the most this machine holds at this rate);
 *   hold     --hold-seconds with every agent streaming: agents held (the minimum seen), records/s,
 *            gateway CPU, RSS and RSS per agent (after full GCs), event-loop lag;
 *   command  during the hold, --command-rounds rounds of one task to --command-agents agents
 *            (ours: a signed POST /command/batch to the control API; grpc-js: the same Command
 *            written to each call), each carrying its send time; agents record arrival − send
 *            (one clock: same machine) in HdrHistograms: p50/p99/p999/max;
 *   storm    every agent's connection destroyed at once (as a network failure); each agent
 *            redials after its fixed 5 s: seconds until all are back, per-agent reconnect
 *            times, handshakes per gateway CPU-second during the storm.
 *
 * grpc-js has no snappy codec, so its agents send identity-encoded messages; ours get snappy.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GATEWAY_NODE_FLAGS } from '../../gateway/process/node-flags.js';
import { signRequest } from '../../platform/http/aksk.js';
import { decodeHistogram, type Histogram, newHistogram } from '../sim/report.js';
import { SCENARIOS } from '../sim/scenario.js';
import { loopbackSources, writeBenchPki } from './bench-setup.js';
import { type Child, type ServerStats, spawnChild } from './child-protocol.js';
import {
  type BenchResult,
  childScripts,
  cpuSeconds as cpuS,
  describeErrors,
  fmt,
  loadAverageNow,
  mergeCounts,
  networkLimits,
  printProblems,
  progressWriter,
  recorder,
  resultNames,
  runDriver,
  sleep,
  split,
  textTable,
  writeJsonReport,
} from './driver.js';
import { machineInfo, readProc } from './machine.js';

const HELP = `Usage: npm run bench:fleet -- [options]

The gateway (one process, or --gateways G) and the agent simulator on this machine: ramp up
to the most agents it holds, hold them with heartbeats and the steady scenario's event rate,
deliver commands to 10,000 of them,
then a reconnect storm of all of them; for fleetgate, then for the @grpc/grpc-js baseline.

Options:
  --agents N            target agents (default 50000)
  --baseline-agents N   target agents of the grpc-js run (default: --agents)
  --rate R              events per agent per second (default ${SCENARIOS.steady!.eventsPerAgentPerS}, the steady scenario's)
  --hold-seconds S      steady-state hold (default 600; the command rounds run in the middle)
  --ramp-rate A         agents started per second during the ramp (default 250)
  --step N              agents per ramp step, checked before the next (default 5000)
  --processes P         simulator processes (default: one per 25,000 agents, or per hard
                        open-file limit − 512 if lower; at least 2; a multiple of --gateways)
  --gateways G          gateway processes on this machine (default: 1, or as many as the hard
                        open-file limit needs: one socket per agent, and a process that cannot
                        raise it holds at most limit − 4,096); agents of simulator process k
                        go to gateway k mod G; CPU, RSS and records are summed over them
  --command-agents N    agents per command round (default 10000, the control API's batch limit)
  --command-rounds K    command rounds, 5 s apart (default 3)
  --storm-timeout S     give up waiting for the storm to settle after S seconds (default 300)
  --impls LIST          ours,baseline (default both)
  --max-minutes M       bound on the whole run; later phases are cut short (default 60)
  --handshake-timeout-ms MS
                        our gateway's server-side TLS handshake timeout (default: the
                        gateway's own, 20000)
  --max-pending-handshakes N
                        our gateway's admission limit of TLS handshakes in progress (default:
                        the gateway's own, 512; a quarter per source address)
  --sim-max-dials N     dials in flight per simulator process (default 256; 0: unbounded, every
                        agent of a storm dials at once and the simulator's own TLS work can
                        starve past the 15 s dial timeout)
  --gateway-nice N      run the gateway processes at this nice value (0–19): a gateway with less
                        CPU than its agents, as in production where every agent has its own
                        host; shows admission under a storm the gateway cannot keep up with
  --gateway-node-args="ARGS"
                        extra node options for the gateway child, e.g. "--cpu-prof
                        --cpu-prof-dir=/tmp/prof" (profiles are written when it exits)
  --sim-node-args="ARGS"
                        extra node options for the simulator children (same use)
  --json FILE           also write the results as JSON
  --help                this text

Progress goes to stderr; the result table to stdout. Open-file limits of the children are
raised with ulimit -n (up to the hard limit; as root the hard limit too).`;

const { values } = parseArgs({
  options: {
    agents: { type: 'string' },
    'baseline-agents': { type: 'string' },
    rate: { type: 'string' },
    'hold-seconds': { type: 'string' },
    'ramp-rate': { type: 'string' },
    step: { type: 'string' },
    processes: { type: 'string' },
    gateways: { type: 'string' },
    'command-agents': { type: 'string' },
    'command-rounds': { type: 'string' },
    'storm-timeout': { type: 'string' },
    impls: { type: 'string' },
    'max-minutes': { type: 'string' },
    'gateway-node-args': { type: 'string' },
    'sim-node-args': { type: 'string' },
    'handshake-timeout-ms': { type: 'string' },
    'max-pending-handshakes': { type: 'string' },
    'gateway-nice': { type: 'string' },
    'sim-max-dials': { type: 'string' },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const num = (name: string, v: string | undefined, fallback: number, min = 0): number => {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got ${v}`);
  return n;
};
const agentsTarget = Math.floor(num('agents', values.agents, 50_000, 1));
/** Agents per simulator process: 25,000, or fewer when the hard open-file limit is lower. */
const hardNofile = Number(
  readProc('/proc/self/limits')?.match(/Max open files\s+\S+\s+(\S+)/)?.[1] ?? Number.NaN,
);
const perSimProcess = Number.isFinite(hardNofile)
  ? Math.max(1000, Math.min(25_000, hardNofile - 512))
  : 25_000;
/** Gateway processes: one socket per agent, so a hard open-file limit caps what one process holds. */
const gatewaysNeeded = Number.isFinite(hardNofile)
  ? Math.max(1, Math.ceil(agentsTarget / Math.max(1000, hardNofile - 4096)))
  : 1;
const gateways = Math.floor(num('gateways', values.gateways, gatewaysNeeded, 1));
const roundUp = (n: number, m: number) => Math.ceil(n / m) * m;
const cfg = {
  agents: agentsTarget,
  gateways,
  baselineAgents: Math.floor(num('baseline-agents', values['baseline-agents'], agentsTarget, 1)),
  rate: num('rate', values.rate, SCENARIOS.steady!.eventsPerAgentPerS),
  holdS: num('hold-seconds', values['hold-seconds'], 600, 1),
  rampRate: num('ramp-rate', values['ramp-rate'], 250, 1),
  step: Math.floor(num('step', values.step, 5000, 1)),
  processes: roundUp(
    Math.floor(num('processes', values.processes, Math.max(2, Math.ceil(agentsTarget / perSimProcess)), 1)),
    gateways,
  ),
  commandAgents: Math.floor(num('command-agents', values['command-agents'], 10_000, 1)),
  commandRounds: Math.floor(num('command-rounds', values['command-rounds'], 3, 0)),
  stormTimeoutS: num('storm-timeout', values['storm-timeout'], 300, 10),
  maxMinutes: num('max-minutes', values['max-minutes'], 60, 1),
  heartbeatS: 60,
  reconnectDelayS: SCENARIOS.steady!.reconnectDelayMs / 1000,
  minRecordShare: 0.9,
  simMaxDials: Math.floor(num('sim-max-dials', values['sim-max-dials'], 256, 0)),
};
type Impl = 'ours' | 'baseline';
const impls = (values.impls ?? 'ours,baseline').split(',').map((s) => {
  const v = s.trim();
  if (v !== 'ours' && v !== 'baseline') throw new Error(`unknown impl ${s}; want ours,baseline`);
  return v as Impl;
});

const { tsNodeArgs, script } = childScripts(import.meta.url);
const scripts = {
  ours: script('fleet-gateway'),
  baseline: script('../baselines/grpcjs-gateway'),
  sim: script('fleet-sim'),
};

const t0 = Date.now();
const deadline = t0 + cfg.maxMinutes * 60_000;
const progress = progressWriter('fleet', t0, 5);
const mib = (b: number) => b / 2 ** 20;
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const left = () => deadline - Date.now();

type Result = BenchResult;
const results: Record<Impl, Result[]> = { ours: [], baseline: [] };
const problems: string[] = [];
const limits: Record<string, unknown> = {};
let baselineName = '@grpc/grpc-js';
const record = recorder(results);

interface GwStats
  extends Pick<
    ServerStats,
    'records' | 'agents' | 'cpuUser' | 'cpuSystem' | 'rss' | 'heapUsed' | 'heapTotal'
  > {
  loopLagP99Ms?: number;
  loopLagMaxMs?: number;
  /** Connections our gateway refused before TLS (admission); absent for grpc-js. */
  refused?: number;
}
interface SimStats {
  agents: number;
  connected: number;
  connects: number;
  recordsSent: number;
  commands: number;
  errors: Record<string, number>;
  cpuUser: number;
  cpuSystem: number;
  rss: number;
  /** The worst simulator process's event-loop delay since the last stats. */
  loopLagP99Ms: number;
  loopLagMaxMs: number;
}

const pkiDir = mkdtempSync(path.join(os.tmpdir(), 'fg-fleet-pki-'));
const aksk: [string, string] = [`bench${randomBytes(4).toString('hex')}`, randomBytes(24).toString('hex')];
const running = new Set<Child>();
let locals: string[] = [];

async function spawn(name: string, nodeArgs: string[], script: string, args: string[], nofile: number) {
  const c = await spawnChild(name, [...nodeArgs, ...tsNodeArgs], script, args, {
    nofile,
    readyTimeoutMs: 120_000,
  });
  running.add(c);
  return c;
}
async function stopChild(c: Child, graceMs: number) {
  running.delete(c);
  await c.stop(graceMs).catch(() => {});
}

/** The histogram's value at percentile `p` (100: its maximum), or null when it holds no samples. */
const percentile = (h: Histogram, p: number) =>
  h.totalCount === 0 ? null : p >= 100 ? h.maxValue : h.getValueAtPercentile(p);

/** A fleet of simulator processes, summed. */
class Sims {
  constructor(readonly children: Child[]) {}
  async stats(): Promise<SimStats> {
    const all = await Promise.all(this.children.map((c) => c.request<SimStats>('stats', {}, 120_000)));
    const out: SimStats = {
      agents: 0,
      connected: 0,
      connects: 0,
      recordsSent: 0,
      commands: 0,
      errors: {},
      cpuUser: 0,
      cpuSystem: 0,
      rss: 0,
      loopLagP99Ms: 0,
      loopLagMaxMs: 0,
    };
    for (const s of all) {
      out.loopLagP99Ms = Math.max(out.loopLagP99Ms, s.loopLagP99Ms ?? 0);
      out.loopLagMaxMs = Math.max(out.loopLagMaxMs, s.loopLagMaxMs ?? 0);
      for (const k of [
        'agents',
        'connected',
        'connects',
        'recordsSent',
        'commands',
        'cpuUser',
        'cpuSystem',
        'rss',
      ] as const)
        out[k] += s[k];
      mergeCounts(out.errors, s.errors);
    }
    return out;
  }
  async histograms(): Promise<{ command: Histogram; reconnect: Histogram }> {
    const command = newHistogram();
    const reconnect = newHistogram();
    for (const h of await Promise.all(
      this.children.map((c) =>
        c.request<{ commandLatency: string; reconnect: string }>('histograms', {}, 120_000),
      ),
    )) {
      command.add(decodeHistogram(h.commandLatency));
      reconnect.add(decodeHistogram(h.reconnect));
    }
    return { command, reconnect };
  }
  all(cmd: string, args: Record<string, unknown> = {}) {
    return Promise.all(this.children.map((c) => c.request(cmd, args, 120_000)));
  }
}

/** Connections our gateways refused before TLS between two stats (0 for grpc-js, which has no admission). */
const refusedSince = (a: GwStats, b: GwStats) => (b.refused ?? 0) - (a.refused ?? 0);

/** The gateway processes of one run, summed (loop lag: the worst). */
class Gateways {
  constructor(readonly children: Child[]) {}
  #sum(all: GwStats[]): GwStats {
    const out: GwStats = {
      records: 0,
      agents: 0,
      cpuUser: 0,
      cpuSystem: 0,
      rss: 0,
      heapUsed: 0,
      heapTotal: 0,
      loopLagP99Ms: 0,
      loopLagMaxMs: 0,
    };
    for (const g of all) {
      for (const k of ['records', 'agents', 'cpuUser', 'cpuSystem', 'rss', 'heapUsed', 'heapTotal'] as const)
        out[k] += g[k];
      out.refused = (out.refused ?? 0) + (g.refused ?? 0);
      out.loopLagP99Ms = Math.max(out.loopLagP99Ms ?? 0, g.loopLagP99Ms ?? 0);
      out.loopLagMaxMs = Math.max(out.loopLagMaxMs ?? 0, g.loopLagMaxMs ?? 0);
    }
    return out;
  }
  async stats(cmd: 'stats' | 'gc' = 'stats', timeoutMs = 120_000): Promise<GwStats> {
    return this.#sum(await Promise.all(this.children.map((c) => c.request<GwStats>(cmd, {}, timeoutMs))));
  }
}

/**
 * Which simulator process started each agent index (ramp steps hand out contiguous ranges), so a
 * command for an agent goes to the gateway its simulator process dials (process k → gateway k mod G).
 */
class Placement {
  readonly #ranges: Array<{ first: number; count: number; sim: number }> = [];
  add(first: number, count: number, sim: number): void {
    if (count > 0) this.#ranges.push({ first, count, sim });
  }
  simOf(index: number): number {
    const r = this.#ranges.find((x) => index >= x.first && index < x.first + x.count);
    if (!r) throw new Error(`agent index ${index} was never started`);
    return r.sim;
  }
}

async function runImpl(impl: Impl, target: number): Promise<void> {
  const label = impl === 'ours' ? 'fleetgate' : 'grpc-js';
  const encoding = impl === 'ours' ? 'snappy' : 'identity';
  const idPrefix = impl === 'ours' ? 'fleet-a-' : 'fleet-b-';
  const P = cfg.processes;
  const G = cfg.gateways;
  // Memory guard: ~100 KB per agent in the gateway and ~130 KB in the simulator (measured order).
  const needBytes = target * 230 * 1024;
  const free = os.freemem();
  if (needBytes > free * 0.85) {
    const fit = Math.floor((free * 0.85) / (230 * 1024));
    problems.push(
      `${label}: ${fmt(target)} agents need ~${fmt(mib(needBytes) / 1024, 1)} GiB, ${fmt(mib(free) / 1024, 1)} GiB free: target lowered to ${fmt(fit)}`,
    );
    target = fit;
  }
  const gws = new Gateways(
    await Promise.all(
      Array.from({ length: G }, (_, i) =>
        spawn(
          G === 1 ? label : `${label}-${i}`,
          [
            '--expose-gc',
            '--max-old-space-size=8192',
            // Ours as the image starts it (gateway/process/node-flags.ts).
            ...(impl === 'ours' ? GATEWAY_NODE_FLAGS : []),
            ...(values['gateway-node-args']?.split(/\s+/).filter(Boolean) ?? []),
          ],
          scripts[impl],
          impl === 'ours'
            ? [
                '--pki',
                pkiDir,
                '--aksk',
                aksk.join(':'),
                ...(values['handshake-timeout-ms']
                  ? ['--handshake-timeout-ms', values['handshake-timeout-ms']]
                  : []),
                ...(values['max-pending-handshakes']
                  ? ['--max-pending-handshakes', values['max-pending-handshakes']]
                  : []),
              ]
            : ['--pki', pkiDir, '--port', '0'],
          Math.ceil(target / G) + 4096,
        ),
      ),
    ),
  );
  if (impl === 'baseline') baselineName = String(gws.children[0]?.hello.impl ?? baselineName);
  if (values['gateway-nice'] !== undefined) {
    const nice = Math.floor(num('gateway-nice', values['gateway-nice'], 0, 0));
    for (const c of gws.children) if (c.pid !== undefined) os.setPriority(c.pid, Math.min(19, nice));
    limits[`${impl}.gatewayNice`] = Math.min(19, nice);
  }
  const sims = new Sims(
    await Promise.all(
      Array.from({ length: P }, (_, i) =>
        spawn(
          `sim-${i}`,
          ['--max-old-space-size=6144', ...(values['sim-node-args']?.split(/\s+/).filter(Boolean) ?? [])],
          scripts.sim,
          ['--pki', pkiDir],
          Math.ceil(target / P) + 4096,
        ),
      ),
    ),
  );
  limits[`${impl}.gatewayOpenFiles`] = gws.children[0]?.hello.nofile;
  limits[`${impl}.gatewayProcesses`] = G;
  limits[`${impl}.simOpenFiles`] = sims.children[0]?.hello.nofile;
  // One socket per agent in the gateway and in its simulator process: a hard limit that ulimit
  // could not raise (no CAP_SYS_RESOURCE) caps what one process can hold.
  const gwFiles = Math.min(...gws.children.map((c) => Number(c.hello.nofile ?? Number.POSITIVE_INFINITY)));
  const simFiles = Math.min(...sims.children.map((c) => Number(c.hello.nofile ?? Number.POSITIVE_INFINITY)));
  const fdCap = Math.min((gwFiles - 256) * G, (simFiles - 256) * P);
  if (target > fdCap) {
    problems.push(
      `${label}: open-file limits (gateway processes ${gwFiles} each × ${G}, simulator processes ${simFiles} each × ${P}; ulimit -n could not raise them) cap the run at ${fmt(fdCap)} agents; target lowered from ${fmt(target)} (more processes: --gateways, --processes)`,
    );
    progress(`${label}: open-file limits cap the target at ${fmt(fdCap)} agents`);
    target = fdCap;
  }
  const gwTargetOf = (sim: number) => ({
    host: '127.0.0.1',
    port: Number(gws.children[sim % G]!.hello.port),
  });
  const gwStats = () => gws.stats();
  const placement = new Placement();
  /** Sends one command round's batch to gateway g: ours through its signed control API, grpc-js in-process. */
  const sendCommand = async (
    g: number,
    agentIds: string[],
    command: Record<string, unknown>,
    round: number,
  ): Promise<Record<string, number>> => {
    const gw = gws.children[g]!;
    if (impl !== 'ours') {
      const reply = await gw.request<{ counts: Record<string, number> }>(
        'command',
        {
          agent_ids: agentIds,
          command: {
            Task: {
              DataType: 2001,
              Name: 'collector',
              Data: JSON.stringify(command),
              Token: `bench-${round}`,
            },
          },
        },
        120_000,
      );
      return reply.counts;
    }
    const body = JSON.stringify({
      agent_ids: agentIds,
      command: {
        task: { data_type: 2001, name: 'collector', data: JSON.stringify(command), token: `bench-${round}` },
      },
    });
    const headers = signRequest({
      method: 'POST',
      path: '/command/batch',
      query: '',
      body,
      ak: aksk[0],
      sk: aksk[1],
    });
    const res = await fetch(`http://127.0.0.1:${gw.hello.httpPort}/command/batch`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(120_000),
    });
    const env = (await res.json()) as {
      code: number;
      msg?: string;
      data?: { counts?: Record<string, number> };
    };
    if (env.code !== 0) problems.push(`${label}: /command/batch answered code ${env.code} ${env.msg ?? ''}`);
    return env.data?.counts ?? {};
  };
  try {
    const base = await gws.stats('gc');
    progress(
      `${label}: ${G === 1 ? 'gateway' : `${G} gateway processes`} up (pid ${gws.children.map((c) => c.pid).join(', ')}, RSS ${fmt(mib(base.rss), 1)} MiB), ${P} simulator processes; ramp to ${fmt(target)} agents at ${cfg.rampRate}/s, ${cfg.rate} events/agent/s, ${encoding}`,
    );

    // ---- ramp ----
    let started = 0;
    let stoppedBy = 'reached the target';
    const rampStart = Date.now();
    let lastLine = 0;
    let prevG = await gwStats();
    let prevS = await sims.stats();
    let prevAt = Date.now();
    const line = (phase: string, g: GwStats, s: SimStats, prevGw: GwStats, prevSim: SimStats, dtS: number) =>
      progress(
        `${label} ${phase}: agents ${fmt(g.agents)} (sim connected ${fmt(s.connected)}/${fmt(s.agents)}), records/s ${fmt((g.records - prevGw.records) / dtS)} (sent ${fmt((s.recordsSent - prevSim.recordsSent) / dtS)}), gateway CPU ${fmt((100 * cpuS(prevGw, g)) / dtS)} % RSS ${fmt(mib(g.rss))} MiB lag p99 ${fmt(g.loopLagP99Ms ?? 0, 1)} ms, sims CPU ${fmt((100 * cpuS(prevSim, s)) / dtS)} % lag p99 ${fmt(s.loopLagP99Ms, 1)} ms, errors ${describeErrors(s.errors)}, load ${load()}`,
      );
    while (started < target) {
      if (left() < (cfg.holdS + 120) * 1000) {
        stoppedBy = 'time budget (--max-minutes)';
        break;
      }
      const n = Math.min(cfg.step, target - started);
      const shares = split(n, P);
      let first = started;
      await Promise.all(
        sims.children.map((c, i) => {
          placement.add(first, shares[i]!, i);
          const args = {
            target: gwTargetOf(i),
            count: shares[i],
            firstIndex: first,
            idPrefix,
            localAddresses: locals,
            encoding,
            rate: cfg.rate,
            spacingMs: (1000 * P) / cfg.rampRate,
            maxDials: cfg.simMaxDials,
          };
          first += shares[i]!;
          return c.request('start', args, 120_000);
        }),
      );
      started += n;
      const stepDeadline = Date.now() + (n / cfg.rampRate) * 1000 * 2 + 60_000;
      let g = await gwStats();
      let s = await sims.stats();
      while ((g.agents < started || s.connected < started) && Date.now() < stepDeadline) {
        await sleep(1000);
        g = await gwStats();
        s = await sims.stats();
        if (Date.now() - lastLine >= 5000) {
          const now = Date.now();
          line('ramp', g, s, prevG, prevS, (now - prevAt) / 1000);
          prevG = g;
          prevS = s;
          prevAt = now;
          lastLine = now;
        }
      }
      // Health over a few seconds at this step.
      const a = await gwStats();
      const sa = await sims.stats();
      const aAt = Date.now();
      await sleep(5000);
      const b = await gwStats();
      const sb = await sims.stats();
      const dt = (Date.now() - aAt) / 1000;
      const offered = started * cfg.rate;
      const received = (b.records - a.records) / dt;
      const sent = (sb.recordsSent - sa.recordsSent) / dt;
      const held = Math.min(b.agents, sb.connected);
      progress(
        `${label} step ${fmt(started)}: held ${fmt(held)}, records/s ${fmt(received)} received, ${fmt(sent)} sent, ${fmt(offered)} offered; gateway CPU ${fmt((100 * cpuS(a, b)) / dt)} %, sims CPU ${fmt((100 * cpuS(sa, sb)) / dt)} %, lag p99 ${fmt(b.loopLagP99Ms ?? 0, 1)} ms`,
      );
      if (held < started * 0.99) {
        stoppedBy = `step to ${fmt(started)}: only ${fmt(held)} held after ${fmt((Date.now() - rampStart) / 1000)} s`;
        break;
      }
      if (offered > 0 && received < offered * cfg.minRecordShare) {
        stoppedBy = `step to ${fmt(started)}: records/s received ${fmt(received)} < ${cfg.minRecordShare * 100} % of ${fmt(offered)} offered (the simulator sent ${fmt(sent)}/s: ${sent < offered * cfg.minRecordShare ? 'the load generator, sharing the cores, fell behind' : 'the gateway fell behind'})`;
        break;
      }
    }
    const rampS = (Date.now() - rampStart) / 1000;
    progress(`${label}: ramp ended after ${fmt(rampS)} s with ${fmt(started)} started: ${stoppedBy}`);

    // ---- hold (with the command rounds in the middle) ----
    const holdMs = Math.max(10_000, Math.min(cfg.holdS * 1000, left() - 200_000));
    if (holdMs < cfg.holdS * 1000)
      problems.push(`${label}: hold cut to ${fmt(holdMs / 1000)} s by --max-minutes`);
    await sims.all('reset');
    const h0 = await gwStats();
    const s0 = await sims.stats();
    const holdStart = Date.now();
    let minAgents = Math.min(h0.agents, s0.connected);
    let maxLag = 0;
    let maxSimLag = 0;
    let lastG = h0;
    let lastS = s0;
    let lastAt = holdStart;
    const commandAt = holdStart + holdMs / 2 - (cfg.commandRounds * 5000) / 2;
    let commandsDone = cfg.commandRounds === 0;
    const commandRuns: Array<{ ms: number; counts: Record<string, number> }> = [];
    while (Date.now() - holdStart < holdMs) {
      if (!commandsDone && Date.now() >= commandAt) {
        commandsDone = true;
        const sample = Math.min(cfg.commandAgents, started);
        const stride = started / sample;
        const ids = Array.from(
          { length: sample },
          (_, i) => `${idPrefix}${String(Math.floor(i * stride)).padStart(7, '0')}`,
        );
        // Round -1 (100 agents) warms the command path up (JIT, first request); not counted.
        for (let r = -1; r < cfg.commandRounds; r++) {
          if (r === 0) await sims.all('reset');
          const batch = r < 0 ? ids.slice(0, 100) : ids;
          const t = Date.now();
          const command = { sent_ms: t, round: r };
          const counts: Record<string, number> = {};
          // One batch per gateway, with the agents its simulator processes placed there, in parallel.
          const byGateway = Array.from({ length: G }, () => [] as string[]);
          for (const id of batch) byGateway[placement.simOf(Number(id.slice(idPrefix.length))) % G]!.push(id);
          const answered = await Promise.all(
            byGateway.map((gwIds, g) => (gwIds.length === 0 ? {} : sendCommand(g, gwIds, command, r))),
          );
          for (const c of answered) mergeCounts(counts, c);
          if (r < 0) {
            await sleep(2000);
            continue;
          }
          commandRuns.push({ ms: Date.now() - t, counts });
          progress(
            `${label} command round ${r + 1}/${cfg.commandRounds}: ${fmt(sample)} agents, answered in ${fmt(Date.now() - t)} ms: ${JSON.stringify(counts)}`,
          );
          await sleep(5000);
        }
      }
      await sleep(Math.min(10_000, Math.max(0, holdMs - (Date.now() - holdStart))));
      const g = await gwStats();

      const s = await sims.stats();
      minAgents = Math.min(minAgents, g.agents, s.connected);
      maxLag = Math.max(maxLag, g.loopLagP99Ms ?? 0);
      maxSimLag = Math.max(maxSimLag, s.loopLagP99Ms);
      const now = Date.now();
      line(
        `hold ${fmt((now - holdStart) / 1000)}/${fmt(holdMs / 1000)} s`,
        g,
        s,
        lastG,
        lastS,
        (now - lastAt) / 1000,
      );
      lastG = g;
      lastS = s;
      lastAt = now;
    }
    const h1 = await gwStats();
    const s1 = await sims.stats();
    const holdS = (Date.now() - holdStart) / 1000;
    await sleep(2000);
    const hist = await sims.histograms();
    const gcd = await gws.stats('gc', 300_000);
    const heldNow = gcd.agents;
    const cpuHold = cpuS(h0, h1);
    const recordsHold = h1.records - h0.records;
    const rssPerAgent = (gcd.rss - base.rss) / Math.max(1, heldNow);
    const heapPerAgent = (gcd.heapUsed - base.heapUsed) / Math.max(1, heldNow);
    progress(
      `${label}: held ${fmt(minAgents)} (min over ${fmt(holdS)} s); ${fmt(recordsHold / holdS)} records/s; gateway ${fmt((100 * cpuHold) / holdS)} % CPU; RSS after GC ${fmt(mib(gcd.rss))} MiB = ${fmt(rssPerAgent / 1024, 1)} KB/agent`,
    );
    record(impl, { name: 'fleet.agents_target', value: target, unit: 'agents', notes: `ramp: ${stoppedBy}` });
    record(impl, {
      name: 'fleet.agents_held',
      value: minAgents,
      unit: 'agents',
      better: 'higher',
      goal: 50_000,
      notes: `fewest agents connected (gateway and simulator view) over a ${fmt(holdS)} s hold at ${cfg.rate} events/agent/s; ramp ${fmt(rampS)} s, ${stoppedBy}`,
    });
    record(impl, { name: 'fleet.hold_s', value: Math.round(holdS), unit: 's' });
    record(impl, {
      name: 'fleet.records_per_s',
      value: Math.round(recordsHold / holdS),
      unit: 'records/s',
      better: 'higher',
      notes: `offered ≈ ${fmt(minAgents * (cfg.rate + 1 / cfg.heartbeatS))}/s (events + heartbeats)`,
    });
    record(impl, {
      name: 'fleet.gateway_cpu_pct',
      value: Math.round((100 * cpuHold) / holdS),
      unit: '% of one core',
      better: 'lower',
      notes: 'process.cpuUsage of the gateway process (all its threads) over the hold',
    });
    record(impl, {
      name: 'fleet.records_per_cpu_s',
      value: Math.round(recordsHold / Math.max(cpuHold, 1e-6)),
      unit: 'records/CPU-s',
      better: 'higher',
      notes:
        'records received per gateway CPU-second in steady state: small messages (one 100 ms tick of one agent each), heartbeats, TLS, HTTP/2',
    });
    record(impl, {
      name: 'fleet.cpu_us_per_agent_s',
      value: Number(((cpuHold * 1e6) / holdS / Math.max(1, minAgents)).toFixed(2)),
      unit: 'CPU-µs per agent-second',
      better: 'lower',
      notes: `gateway CPU per connected agent per second at ${cfg.rate} events/agent/s`,
    });
    record(impl, {
      name: 'fleet.rss_mib',
      value: Number(mib(gcd.rss).toFixed(1)),
      unit: 'MiB',
      notes: `gateway RSS after full GCs with ${fmt(heldNow)} agents (before the ramp: ${fmt(mib(base.rss), 1)} MiB); before GC ${fmt(mib(h1.rss), 1)} MiB`,
    });
    record(impl, {
      name: 'fleet.rss_per_agent',
      value: Number((rssPerAgent / 1024).toFixed(1)),
      unit: 'KB/agent',
      better: 'lower',
      notes:
        'gateway RSS growth after full GCs / agents, streaming (receive buffers and heartbeat details included)',
    });
    record(impl, {
      name: 'fleet.heap_per_agent',
      value: Number((heapPerAgent / 1024).toFixed(1)),
      unit: 'KB/agent',
      better: 'lower',
    });
    record(impl, {
      name: 'fleet.loop_lag_p99_max_ms',
      value: Number(maxLag.toFixed(1)),
      unit: 'ms',
      better: 'lower',
      notes: 'worst 10 s-window p99 of the gateway event-loop delay during the hold',
    });
    record(impl, {
      name: 'fleet.sim_loop_lag_p99_max_ms',
      value: Number(maxSimLag.toFixed(1)),
      unit: 'ms',
      better: 'lower',
      notes:
        'worst simulator process, worst 10 s-window p99 of its event-loop delay during the hold: ticks and command arrival times are late by this much',
    });
    record(impl, {
      name: 'fleet.sim_cpu_pct',
      value: Math.round((100 * cpuS(s0, s1)) / holdS),
      unit: '% of one core',
      notes: `the ${P} simulator processes together (they share the machine's cores with the gateway)`,
    });
    const expected = commandRuns.reduce((n, r) => n + (r.counts.sent ?? 0), 0);
    const c = hist.command;
    record(impl, {
      name: 'fleet.command_p99_ms',
      value: percentile(c, 99),
      unit: 'ms',
      better: 'lower',
      p50: percentile(c, 50),
      p999: percentile(c, 99.9),
      max: percentile(c, 100),
      received: c.totalCount,
      sent: expected,
      requestMs: commandRuns.map((r) => r.ms),
      notes: `${cfg.commandRounds} rounds × ${fmt(Math.min(cfg.commandAgents, started))} agents; send time (driver) → arrival at the agent; ${impl === 'ours' ? 'signed POST /command/batch to the control API' : 'Command written to each grpc-js call from the server process (no HTTP API)'}`,
    });
    if (c.totalCount < expected)
      problems.push(
        `${label}: ${expected - c.totalCount} of ${expected} commands sent were not seen by agents`,
      );

    // ---- reconnect storm ----
    if (left() < 60_000) {
      problems.push(`${label}: no time left for the reconnect storm`);
      return;
    }
    await sims.all('reset');
    const before = await gwStats();
    const sBefore = await sims.stats();
    const stormAgents = Math.min(before.agents, sBefore.connected);
    const stormStart = Date.now();
    await sims.all('drop');
    let lowest = Number.POSITIVE_INFINITY;
    let back99: number | undefined;
    let backAll: number | undefined;
    let lastStormLine = 0;
    let sg = before;
    const stormLimit = Math.min(cfg.stormTimeoutS * 1000, left() - 30_000);
    while (Date.now() - stormStart < stormLimit) {
      await sleep(500);
      sg = await gwStats();
      const ss = await sims.stats();
      const held = Math.min(sg.agents, ss.connected);
      lowest = Math.min(lowest, sg.agents);
      const el = (Date.now() - stormStart) / 1000;
      if (lowest < stormAgents * 0.5) {
        if (back99 === undefined && held >= stormAgents * 0.99) back99 = el;
        if (held >= stormAgents) {
          backAll = el;
          break;
        }
      }
      if (Date.now() - lastStormLine >= 5000) {
        lastStormLine = Date.now();
        progress(
          `${label} storm ${fmt(el)} s: gateway agents ${fmt(sg.agents)}, sim connected ${fmt(ss.connected)}/${fmt(stormAgents)}, gateway CPU ${fmt((100 * cpuS(before, sg)) / el)} % (avg), ${impl === 'ours' ? `refused before TLS ${fmt(refusedSince(before, sg))}, ` : ''}errors ${describeErrors(ss.errors)}`,
        );
      }
    }
    const stormCpu = cpuS(before, sg);
    const refusedInStorm = refusedSince(before, sg);
    const stormWall = (Date.now() - stormStart) / 1000;
    await sleep(1500);
    const sh = await sims.histograms();
    const ssEnd = await sims.stats();
    progress(
      `${label}: storm of ${fmt(stormAgents)}: ${backAll !== undefined ? `all back in ${fmt(backAll, 1)} s` : `NOT all back after ${fmt(stormWall)} s (${fmt(Math.min(sg.agents, ssEnd.connected))})`}; 99 % in ${back99 !== undefined ? fmt(back99, 1) : '—'} s; gateway CPU ${fmt(stormCpu, 1)} s`,
    );
    record(impl, {
      name: 'fleet.storm_all_back_s',
      value: backAll !== undefined ? Number(backAll.toFixed(1)) : null,
      unit: 's',
      better: 'lower',
      goal: 60,
      agents: stormAgents,
      back99S: back99 !== undefined ? Number(back99.toFixed(1)) : null,
      lowestAgents: lowest,
      refusedBeforeTls: refusedInStorm,
      simMaxDials: cfg.simMaxDials,
      notes: `every connection destroyed at once; agents redial after their fixed ${cfg.reconnectDelayS} s (included)${cfg.simMaxDials > 0 ? `, at most ${fmt(cfg.simMaxDials)} dials in flight per simulator process (the wait included)` : ''}; ${impl === 'ours' ? `${fmt(refusedInStorm)} connections refused before TLS by admission; ` : ''}seconds until the gateway holds all ${fmt(stormAgents)} again${backAll === undefined ? ` — not reached within ${fmt(stormWall)} s` : ''}`,
    });
    const r = sh.reconnect;
    record(impl, {
      name: 'fleet.storm_reconnect_p99_ms',
      value: percentile(r, 99),
      unit: 'ms',
      better: 'lower',
      p50: percentile(r, 50),
      max: percentile(r, 100),
      count: r.totalCount,
      notes: 'per agent: stream end → next stream open (5 s delay, dial, mTLS, HTTP/2, Transfer call)',
    });
    record(impl, {
      name: 'fleet.storm_handshakes_per_cpu_s',
      // Agents actually back (not the storm's size: an unsettled storm spends CPU on handshakes
      // that are abandoned).
      value: Math.round(Math.min(sg.agents, ssEnd.connected, stormAgents) / Math.max(stormCpu, 1e-6)),
      unit: 'handshakes/CPU-s',
      better: 'higher',
      notes:
        'agents back after the storm per gateway CPU-second spent during it, while the others stream (includes their traffic)',
    });
    record(impl, { name: 'fleet.storm_gateway_cpu_s', value: Number(stormCpu.toFixed(1)), unit: 'CPU-s' });
  } finally {
    progress(`${label}: stopping`);
    await Promise.all(sims.children.map((c) => stopChild(c, 30_000)));
    await Promise.all(gws.children.map((c) => stopChild(c, 30_000)));
  }
}

// ---- report ----------------------------------------------------------------------------------

const LABELS: Record<string, string> = {
  'fleet.agents_target': 'agents targeted',
  'fleet.agents_held': 'agents held through the hold',
  'fleet.hold_s': 'hold',
  'fleet.records_per_s': 'records/s received',
  'fleet.gateway_cpu_pct': 'gateway CPU',
  'fleet.records_per_cpu_s': 'records per gateway CPU-s',
  'fleet.cpu_us_per_agent_s': 'gateway CPU per agent',
  'fleet.rss_mib': 'gateway RSS (after GC)',
  'fleet.rss_per_agent': 'gateway RSS per agent',
  'fleet.heap_per_agent': 'gateway JS heap per agent',
  'fleet.loop_lag_p99_max_ms': 'event-loop lag p99 (worst window)',
  'fleet.sim_cpu_pct': 'simulator CPU',
  'fleet.sim_loop_lag_p99_max_ms': 'simulator event-loop lag p99 (worst)',
  'fleet.command_p99_ms': 'command delivery p99',
  'fleet.storm_all_back_s': 'reconnect storm: all back',
  'fleet.storm_reconnect_p99_ms': 'storm: per-agent reconnect p99',
  'fleet.storm_handshakes_per_cpu_s': 'storm: re-admissions per gateway CPU-s',
  'fleet.storm_gateway_cpu_s': 'storm: gateway CPU',
};

function table(): string {
  const names = resultNames(results);
  const rows: string[][] = [['metric', 'unit', 'fleetgate', 'grpc-js', 'goal']];
  const show = (r: Result | undefined) => {
    if (!r || r.value === null) return r ? 'not reached' : 'n/a';
    let s = fmt(r.value, Number.isInteger(r.value) ? 0 : 1);
    if (r.name === 'fleet.command_p99_ms' && r.p50 != null)
      s = `${fmt(Number(r.p50))} / ${s} / ${fmt(Number(r.max))}`;
    if (r.name === 'fleet.storm_all_back_s' && r.back99S != null) s = `${s} (99 %: ${r.back99S})`;
    return s;
  };
  for (const name of names) {
    const ours = results.ours.find((r) => r.name === name);
    const base = results.baseline.find((r) => r.name === name);
    const any = ours ?? base;
    const goal = any?.goal !== undefined ? `${any.better === 'lower' ? '<' : '≥'} ${fmt(any.goal)}` : '';
    const unit = name === 'fleet.command_p99_ms' ? 'ms p50/p99/max' : (any?.unit ?? '');
    rows.push([LABELS[name] ?? name, unit, show(ours), show(base), goal]);
  }
  return textTable(rows, (i) => i >= 2 && i <= 3);
}

async function main(): Promise<number> {
  const machine = machineInfo();
  progress(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory}, node ${machine.node}, load ${machine.loadAverageAtStart.join(' ')}`,
  );
  progress(`config: ${JSON.stringify(cfg)} impls ${impls.join(',')}`);
  await writeBenchPki(pkiDir);
  locals = await loopbackSources(8);
  Object.assign(limits, networkLimits(locals));
  limits.driverOpenFiles =
    readProc('/proc/self/limits')
      ?.match(/Max open files\s+(\S+)\s+(\S+)/)
      ?.slice(1, 3) ?? null;
  for (const impl of impls) {
    try {
      await runImpl(impl, impl === 'ours' ? cfg.agents : cfg.baselineAgents);
    } catch (err) {
      const msg = `${impl}: ${(err as Error).message}`;
      problems.push(msg);
      progress(`ERROR ${msg}`);
    }
    if (impl !== impls[impls.length - 1]) await sleep(5000); // let TIME_WAIT sockets and memory settle
  }
  rmSync(pkiDir, { recursive: true, force: true });
  const loadAverageAtEnd = loadAverageNow();
  console.log(
    `\nfleetgate gateway vs ${baselineName}, ${cfg.gateways === 1 ? 'one gateway process' : `${cfg.gateways} gateway processes (sums)`} + simulator on one machine — ${machine.cpu}, ${machine.cores} cores, ${machine.memory}, node ${machine.node}`,
  );
  console.log(
    `load average ${machine.loadAverageAtStart.join('/')} → ${loadAverageAtEnd.join('/')}; ${cfg.rate} events/agent/s, heartbeats every ${cfg.heartbeatS} s\n`,
  );
  console.log(table());
  console.log(`\nlimits: ${JSON.stringify(limits)}`);
  printProblems(problems);
  if (values.json) {
    const doc = {
      bench: 'fleet',
      machine: { ...machine, loadAverageAtEnd },
      config: { ...cfg, impls },
      limits,
      results: results.ours,
      baseline: { name: baselineName, results: results.baseline },
      problems,
    };
    writeJsonReport(values.json, doc, { t0, progress });
  }
  progress(`done in ${fmt((Date.now() - t0) / 1000)} s`);
  return 0;
}

runDriver(main, async () => {
  await Promise.allSettled([...running].map((c) => c.stop(2000)));
  rmSync(pkiDir, { recursive: true, force: true });
});
