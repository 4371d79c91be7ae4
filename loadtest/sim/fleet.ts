/**
 * Runs many simulated agents in this process (`runFleet`), or spreads them over child processes
 * (`runFleetProcesses`) that report their counters every second; prints a progress line while it
 * runs and a report at the end. Bounded: stops by itself after the scenario's duration, or
 * earlier when its `stop` signal aborts (a test that ends the run once it has seen what it waits
 * for, instead of sleeping out a duration long enough for a slow machine).
 */
import { fork } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import hdr from 'hdr-histogram-js';
import { abortableSleep } from '../../platform/backoff.js';
import { readAgentTls } from '../agent/raw-agent.js';
import { agentCertificates } from './agent-certs.js';
import { disruptDelayMs, SCENARIOS, type Scenario } from './scenario.js';
import {
  addCounts,
  newStats,
  SIM_COUNTERS,
  SimAgent,
  type SimCounters,
  type SimStats,
  setMaxDialsInFlight,
  simCounters,
  type TaskArrival,
} from './sim-agent.js';

/**
 * Agent `index`'s ID in a run with this seed, UUID-shaped. Derived rather than random so that the
 * parent process knows the IDs its child processes use (the rolling-task driver targets them).
 */
export function simAgentId(seed: string, index: number): string {
  const h = createHash('sha256').update(`${seed}:${index}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface FleetOptions {
  agents: number;
  scenario: Scenario;
  pkiDir: string;
  discovery?: string;
  gateway?: { host: string; port: number };
  /** Loopback source addresses to spread connections over (127.0.0.1 … 127.0.0.N). */
  sourceAddresses: number;
  /** Offset of the agent index (child processes). */
  firstIndex?: number;
  /** Progress and per-second reports. */
  onProgress?: (s: FleetSnapshot) => void;
  /** kafka-outage: seconds the outage lasts (records sent meanwhile are counted). */
  outageS?: number;
  /** Dials in flight at once in each process (sim-agent.ts DialPool); absent: unbounded. */
  maxDials?: number;
  /** Each agent presents its own certificate (CN = AgentID), signed at start with the PKI dir's CA key. */
  perAgentCerts?: boolean;
  /** Seed of the agents' IDs (simAgentId); the same in every process of a run. Default random. */
  idSeed?: string;
  /** Ends the run before the scenario's duration when aborted (in-process runs only). */
  stop?: AbortSignal;
}

/**
 * What a disruption did, measured from its moment (scenario.disrupt.atS): agents whose stream
 * ended after it, how many of those got a stream again, and when the last of them did.
 */
export interface DisruptionCounts {
  /** Agents whose stream ended after the disruption (the storm drops every connected agent). */
  lost: number;
  /** Of those, agents with a new stream since. */
  back: number;
  /** ms from the disruption until every lost agent was back; -1 while some are not (or none lost). */
  allBackMs: number;
  /** kafka-outage: records sent between the disruption and the end of the outage. */
  recordsDuringOutage: number;
}

/** Counters, serialisable between processes. */
export interface FleetSnapshot extends SimCounters {
  elapsedS: number;
  agents: number;
  connected: number;
  errors: Record<string, number>;
  /** A sample message per error kind (the first seen). */
  errorSamples?: Record<string, string>;
  reconnectMs: number[];
  commandLatencyMs: number[];
  /** rolling-task: arrivals of the task's commands at agents. */
  taskArrivals: TaskArrival[];
  /** Set once the scenario's disruption has happened. */
  disruption?: DisruptionCounts;
}

/** A snapshot of no agents, with `over` on top. */
export function emptySnapshot(over: Partial<FleetSnapshot> = {}): FleetSnapshot {
  return {
    elapsedS: 0,
    agents: 0,
    connected: 0,
    ...simCounters(),
    errors: {},
    reconnectMs: [],
    commandLatencyMs: [],
    taskArrivals: [],
    ...over,
  };
}

/** Follows agents' streams from the disruption on (one loss per agent is counted). */
class DisruptionTracker {
  at = 0;
  #lost = new Set<number>();
  #back = new Set<number>();
  #lastBackAt = 0;
  #outageStartRecords = 0;
  #outageRecords: number | undefined;
  stopping = false;

  begin(stats: SimStats): void {
    this.at = Date.now();
    this.#outageStartRecords = stats.recordsSent;
  }

  endOutage(stats: SimStats): void {
    if (this.at && this.#outageRecords === undefined)
      this.#outageRecords = stats.recordsSent - this.#outageStartRecords;
  }

  onStream(index: number, up: boolean): void {
    if (!this.at || this.stopping) return;
    if (!up) this.#lost.add(index);
    else if (this.#lost.has(index) && !this.#back.has(index)) {
      this.#back.add(index);
      this.#lastBackAt = Date.now();
    }
  }

  counts(stats: SimStats, outage: boolean): DisruptionCounts | undefined {
    if (!this.at) return undefined;
    const lost = this.#lost.size;
    const back = this.#back.size;
    return {
      lost,
      back,
      allBackMs: lost > 0 && back === lost ? this.#lastBackAt - this.at : -1,
      recordsDuringOutage: outage ? (this.#outageRecords ?? stats.recordsSent - this.#outageStartRecords) : 0,
    };
  }
}

function snapshot(stats: SimStats, agents: number, startedAt: number, drain: boolean): FleetSnapshot {
  const s: FleetSnapshot = {
    elapsedS: (Date.now() - startedAt) / 1000,
    agents,
    connected: stats.connected,
    ...simCounters(stats),
    errors: Object.fromEntries(stats.errors),
    errorSamples: Object.fromEntries(stats.errorSamples),
    reconnectMs: drain ? stats.reconnectMs.splice(0) : [...stats.reconnectMs],
    commandLatencyMs: drain ? stats.commandLatencyMs.splice(0) : [...stats.commandLatencyMs],
    taskArrivals: drain ? stats.taskArrivals.splice(0) : [...stats.taskArrivals],
  };
  return s;
}

export async function runFleet(o: FleetOptions): Promise<FleetSnapshot> {
  const tls = readAgentTls(o.pkiDir);
  if (o.maxDials !== undefined) setMaxDialsInFlight(o.maxDials);
  const stats = newStats();
  const agents: SimAgent[] = [];
  const first = o.firstIndex ?? 0;
  const idSeed = o.idSeed ?? randomUUID();
  // Certificates first: the run's clock (ramp, disruption) starts once every agent can dial.
  const ownTls = o.perAgentCerts
    ? await agentCertificates(
        o.pkiDir,
        Array.from({ length: o.agents }, (_, i) => simAgentId(idSeed, first + i)),
        (n) => console.error(`[sim] ${n}/${o.agents} agent certificates`),
      )
    : undefined;
  const startedAt = Date.now();
  const spacing = o.scenario.rampS > 0 ? (o.scenario.rampS * 1000) / o.agents : 0;
  const disrupt = o.scenario.disrupt;
  const tracker = new DisruptionTracker();
  const outage = disrupt?.kind === 'kafka-outage';
  const timers: NodeJS.Timeout[] = [];
  if (disrupt && disrupt.atS < o.scenario.durationS) {
    const delayMs = disruptDelayMs(disrupt, startedAt);
    timers.push(
      setTimeout(() => {
        tracker.begin(stats);
        // A network blip: every socket is destroyed at once; agents reconnect as stock (5 s).
        if (disrupt.kind === 'reconnect-storm') for (const a of agents) a.drop();
      }, delayMs),
    );
    if (outage)
      timers.push(
        setTimeout(() => tracker.endOutage(stats), delayMs + (o.outageS ?? disrupt.outageS ?? 30) * 1000),
      );
  }
  const withDisruption = (s: FleetSnapshot): FleetSnapshot => {
    const d = tracker.counts(stats, outage);
    if (d) s.disruption = d;
    return s;
  };
  for (let i = 0; i < o.agents; i++) {
    const index = first + i;
    const a = new SimAgent(simAgentId(idSeed, index), index, {
      tls: ownTls?.[i] ?? tls,
      ...(o.discovery ? { discovery: o.discovery } : {}),
      ...(o.gateway ? { gateway: o.gateway } : {}),
      ...(o.sourceAddresses > 1 ? { localAddress: `127.0.0.${(index % o.sourceAddresses) + 1}` } : {}),
      scenario: o.scenario,
      stats,
      onStream: (index, up) => tracker.onStream(index, up),
      // Every record is numbered per agent under the run's id (sequence.ts, `fleetgate sim verify`).
      run: idSeed,
    });
    agents.push(a);
    if (spacing > 0) setTimeout(() => a.start(), i * spacing).unref();
    else a.start();
  }
  const collected = {
    reconnectMs: [] as number[],
    commandLatencyMs: [] as number[],
    taskArrivals: [] as TaskArrival[],
  };
  const progress = setInterval(() => {
    const s = withDisruption(snapshot(stats, o.agents, startedAt, true));
    collected.reconnectMs.push(...s.reconnectMs);
    collected.commandLatencyMs.push(...s.commandLatencyMs);
    collected.taskArrivals.push(...s.taskArrivals);
    o.onProgress?.(s);
  }, 1000);
  await abortableSleep(o.scenario.durationS * 1000, o.stop);
  clearInterval(progress);
  for (const t of timers) clearTimeout(t);
  tracker.stopping = true;
  // Stopping waits for each agent's status (nothing sent is lost); the report is the run's end,
  // while still connected. No record is sent during the stop.
  for (const a of agents) a.halt();
  const end = withDisruption(snapshot(stats, o.agents, startedAt, true));
  await Promise.all(agents.map((a) => a.stop()));
  end.recordsSent = stats.recordsSent;
  end.reconnectMs.push(...collected.reconnectMs);
  end.commandLatencyMs.push(...collected.commandLatencyMs);
  end.taskArrivals.push(...collected.taskArrivals);
  return end;
}

/** Sums child snapshots (latency samples are concatenated). */
export function mergeSnapshots(parts: FleetSnapshot[]): FleetSnapshot {
  const out = emptySnapshot({ elapsedS: Math.max(0, ...parts.map((p) => p.elapsedS)) });
  for (const p of parts) {
    for (const k of ['agents', 'connected', ...SIM_COUNTERS] as const) out[k] += p[k];
    addCounts(out.errors, p.errors);
    out.errorSamples = { ...p.errorSamples, ...out.errorSamples };
    out.reconnectMs.push(...p.reconnectMs);
    out.commandLatencyMs.push(...p.commandLatencyMs);
    out.taskArrivals.push(...(p.taskArrivals ?? []));
  }
  const ds = parts.map((p) => p.disruption).filter((d): d is DisruptionCounts => d !== undefined);
  if (ds.length > 0) {
    const d: DisruptionCounts = { lost: 0, back: 0, allBackMs: 0, recordsDuringOutage: 0 };
    for (const x of ds) {
      d.lost += x.lost;
      d.back += x.back;
      d.recordsDuringOutage += x.recordsDuringOutage;
    }
    // All back only when every part with losses is; the slowest part sets the time.
    const lossy = ds.filter((x) => x.lost > 0);
    d.allBackMs =
      lossy.length > 0 && lossy.every((x) => x.allBackMs >= 0)
        ? Math.max(...lossy.map((x) => x.allBackMs))
        : -1;
    out.disruption = d;
  }
  return out;
}

/** p50/p99/p999 of latency samples with HdrHistogram (ms, 3 significant digits). */
export function percentiles(samples: number[]): {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
} {
  if (samples.length === 0) return { count: 0, p50: 0, p99: 0, p999: 0, max: 0 };
  const h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000,
    numberOfSignificantValueDigits: 3,
  });
  for (const v of samples) h.recordValue(Math.max(1, Math.round(v)));
  return {
    count: samples.length,
    p50: h.getValueAtPercentile(50),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
  };
}

/** Spreads the fleet over `processes` children (`fleet-child`), merging their reports each second. */
export async function runFleetProcesses(o: FleetOptions & { processes: number }): Promise<FleetSnapshot> {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const child = fileURLToPath(new URL(`./fleet-child${ext}`, import.meta.url));
  const per = Math.ceil(o.agents / o.processes);
  const latest = new Map<number, FleetSnapshot>();
  const samples = {
    reconnectMs: [] as number[],
    commandLatencyMs: [] as number[],
    taskArrivals: [] as TaskArrival[],
  };
  const finals = await Promise.all(
    Array.from({ length: o.processes }, (_, p) => {
      const agents = Math.min(per, o.agents - p * per);
      if (agents <= 0) return Promise.resolve(undefined);
      return new Promise<FleetSnapshot | undefined>((resolve, reject) => {
        const c = fork(child, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        c.on('message', (m: { kind: 'progress' | 'done'; snapshot: FleetSnapshot }) => {
          if (m.kind === 'progress') {
            latest.set(p, m.snapshot);
            samples.reconnectMs.push(...m.snapshot.reconnectMs);
            samples.commandLatencyMs.push(...m.snapshot.commandLatencyMs);
            samples.taskArrivals.push(...m.snapshot.taskArrivals);
            if (p === 0)
              o.onProgress?.({
                ...mergeSnapshots([...latest.values()]),
                reconnectMs: [],
                commandLatencyMs: [],
                taskArrivals: [],
              });
          } else resolve(m.snapshot);
        });
        c.on('exit', (code) =>
          code === 0 ? resolve(undefined) : reject(new Error(`simulator process ${p} exited ${code}`)),
        );
        const { onProgress: _omit, ...rest } = o;
        c.send({ ...rest, agents, firstIndex: p * per });
      });
    }),
  );
  const merged = mergeSnapshots(finals.filter((f): f is FleetSnapshot => f !== undefined));
  merged.reconnectMs.push(...samples.reconnectMs);
  merged.commandLatencyMs.push(...samples.commandLatencyMs);
  merged.taskArrivals.push(...samples.taskArrivals);
  return merged;
}

export function scenarioByName(name: string): Scenario {
  const s = SCENARIOS[name];
  if (!s) throw new Error(`unknown scenario "${name}" (known: ${Object.keys(SCENARIOS).join(', ')})`);
  return s;
}
