/**
 * Runs many simulated agents in this process (`runFleet`), or spreads them over child processes
 * (`runFleetProcesses`) that report their counters every second; prints a progress line while it
 * runs and a report at the end. Bounded: stops by itself after the scenario's duration.
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import hdr from 'hdr-histogram-js';
import { readAgentTls } from '../agent/raw-agent.js';
import { SCENARIOS, type Scenario } from './scenario.js';
import {
  addCounts,
  newStats,
  SIM_COUNTERS,
  SimAgent,
  type SimCounters,
  type SimStats,
  simCounters,
} from './sim-agent.js';

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
}

/** Counters, serialisable between processes. */
export interface FleetSnapshot extends SimCounters {
  elapsedS: number;
  agents: number;
  connected: number;
  errors: Record<string, number>;
  reconnectMs: number[];
  commandLatencyMs: number[];
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
    ...over,
  };
}

function snapshot(stats: SimStats, agents: number, startedAt: number, drain: boolean): FleetSnapshot {
  const s: FleetSnapshot = {
    elapsedS: (Date.now() - startedAt) / 1000,
    agents,
    connected: stats.connected,
    ...simCounters(stats),
    errors: Object.fromEntries(stats.errors),
    reconnectMs: drain ? stats.reconnectMs.splice(0) : [...stats.reconnectMs],
    commandLatencyMs: drain ? stats.commandLatencyMs.splice(0) : [...stats.commandLatencyMs],
  };
  return s;
}

export async function runFleet(o: FleetOptions): Promise<FleetSnapshot> {
  const tls = readAgentTls(o.pkiDir);
  const stats = newStats();
  const agents: SimAgent[] = [];
  const startedAt = Date.now();
  const first = o.firstIndex ?? 0;
  const spacing = o.scenario.rampS > 0 ? (o.scenario.rampS * 1000) / o.agents : 0;
  for (let i = 0; i < o.agents; i++) {
    const index = first + i;
    const a = new SimAgent(randomUUID(), index, {
      tls,
      ...(o.discovery ? { discovery: o.discovery } : {}),
      ...(o.gateway ? { gateway: o.gateway } : {}),
      ...(o.sourceAddresses > 1 ? { localAddress: `127.0.0.${(index % o.sourceAddresses) + 1}` } : {}),
      scenario: o.scenario,
      stats,
    });
    agents.push(a);
    if (spacing > 0) setTimeout(() => a.start(), i * spacing).unref();
    else a.start();
  }
  const collected = { reconnectMs: [] as number[], commandLatencyMs: [] as number[] };
  const progress = setInterval(() => {
    const s = snapshot(stats, o.agents, startedAt, true);
    collected.reconnectMs.push(...s.reconnectMs);
    collected.commandLatencyMs.push(...s.commandLatencyMs);
    o.onProgress?.(s);
  }, 1000);
  await new Promise((r) => setTimeout(r, o.scenario.durationS * 1000));
  clearInterval(progress);
  for (const a of agents) a.stop();
  const end = snapshot(stats, o.agents, startedAt, true);
  end.reconnectMs.push(...collected.reconnectMs);
  end.commandLatencyMs.push(...collected.commandLatencyMs);
  return end;
}

/** Sums child snapshots (latency samples are concatenated). */
export function mergeSnapshots(parts: FleetSnapshot[]): FleetSnapshot {
  const out = emptySnapshot({ elapsedS: Math.max(0, ...parts.map((p) => p.elapsedS)) });
  for (const p of parts) {
    for (const k of ['agents', 'connected', ...SIM_COUNTERS] as const) out[k] += p[k];
    addCounts(out.errors, p.errors);
    out.reconnectMs.push(...p.reconnectMs);
    out.commandLatencyMs.push(...p.commandLatencyMs);
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
  const samples = { reconnectMs: [] as number[], commandLatencyMs: [] as number[] };
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
            if (p === 0)
              o.onProgress?.({
                ...mergeSnapshots([...latest.values()]),
                reconnectMs: [],
                commandLatencyMs: [],
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
  return merged;
}

export function scenarioByName(name: string): Scenario {
  const s = SCENARIOS[name];
  if (!s) throw new Error(`unknown scenario "${name}" (known: ${Object.keys(SCENARIOS).join(', ')})`);
  return s;
}
