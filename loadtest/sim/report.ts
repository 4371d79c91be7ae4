/**
 * The simulator's JSON report (`fleetgate sim --json FILE`) and how reports of many simulator
 * processes or machines merge into one (`fleetgate sim merge FILE...`).
 *
 * Latencies are carried as HdrHistograms in their standard compressed base64 encoding
 * (`HISTFAAA…`, the same as Java's HdrHistogram `encodeIntoCompressedByteBuffer`), so a merge
 * adds histograms bucket by bucket and its percentiles are exact to the histogram's precision —
 * never an average of percentiles. Counts are summed; `connectedAtEnd` is a sum of what each
 * source saw at its own end, so sources should end together (the plan in docs/capacity.md starts
 * them with the same duration).
 */
import os from 'node:os';
import hdr from 'hdr-histogram-js';
import type { DisruptAction } from './disrupt.js';
import type { FleetSnapshot } from './fleet.js';
import type { RollingTaskReport } from './rolling-task.js';
import { addCounts, SIM_COUNTERS, type SimCounters, simCounters } from './sim-agent.js';

export const REPORT_FORMAT = 'fleetgate-sim/1';

/** 1 ms to 1 h, 3 significant digits (0.1 % relative error). */
const HISTOGRAM_SHAPE = {
  lowestDiscernibleValue: 1,
  highestTrackableValue: 3_600_000,
  numberOfSignificantValueDigits: 3 as const,
};

export type Histogram = ReturnType<typeof hdr.build>;

export function newHistogram(): Histogram {
  return hdr.build(HISTOGRAM_SHAPE);
}

/** Records millisecond samples (rounded, at least 1 ms; beyond 1 h clamped). */
export function recordSamples(h: Histogram, samples: readonly number[]): Histogram {
  for (const v of samples)
    h.recordValue(Math.min(HISTOGRAM_SHAPE.highestTrackableValue, Math.max(1, Math.round(v))));
  return h;
}

export function histogramOf(samples: readonly number[]): Histogram {
  return recordSamples(newHistogram(), samples);
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

/** Decodes into a histogram of our shape (so any number of them can be added). */
export function decodeHistogram(encoded: string): Histogram {
  const decoded = hdr.decodeFromCompressedBase64(encoded);
  const h = newHistogram();
  h.add(decoded);
  return h;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** The whole histogram, compressed base64 (mergeable). */
  histogram: string;
}

export function summarize(h: Histogram): LatencySummary {
  const count = h.totalCount;
  return {
    count,
    p50: count ? h.getValueAtPercentile(50) : 0,
    p99: count ? h.getValueAtPercentile(99) : 0,
    p999: count ? h.getValueAtPercentile(99.9) : 0,
    max: count ? h.maxValue : 0,
    histogram: encodeHistogram(h),
  };
}

export interface ReportSource {
  hostname: string;
  pid: number;
  processes: number;
  agents: number;
  startedAt: string;
  endedAt: string;
  /** The file it came from (merges only). */
  file?: string;
}

export interface SimReport extends SimCounters {
  format: typeof REPORT_FORMAT;
  scenario: string;
  /** Longest run of the sources, seconds. */
  elapsedS: number;
  agents: number;
  connectedAtEnd: number;
  errors: Record<string, number>;
  /** One message per error kind (the first seen): what a count alone does not say. */
  errorSamples?: Record<string, string>;
  /** ms from a stream's end to the agent's next stream. */
  reconnectMs: LatencySummary;
  /** ms from a command's `sent_ms` to its arrival at the agent. */
  commandLatencyMs: LatencySummary;
  /** One entry per simulator invocation merged into this report. */
  sources: ReportSource[];
  /** The scenario's disruption, once it happened. */
  disruption?: DisruptionReport;
  /**
   * rolling-task: the task the invocation with --manager created and rolled (rolling-task.ts).
   * A merge keeps it as it is: one invocation of a run creates the task.
   */
  rollingTask?: RollingTaskReport;
}

export interface DisruptionReport {
  kind: string;
  atS: number;
  /** Agents whose stream ended after the disruption. */
  agentsLost: number;
  /** Of those, agents that had a stream again before the end. */
  agentsReconnected: number;
  /** ms from the disruption until every lost agent was back (null: not all were). */
  allBackMs: number | null;
  /** kafka-outage: records sent while Kafka was down (the gateway spools them). */
  recordsDuringOutage?: number;
  /** What the simulator did: signals sent, commands run and their exit codes. */
  actions: DisruptAction[];
}

const COUNTS = ['agents', 'connectedAtEnd', ...SIM_COUNTERS] as const;

export function buildReport(
  s: FleetSnapshot,
  meta: {
    scenario: string;
    processes: number;
    startedAt: Date;
    endedAt?: Date;
    disrupt?: { kind: string; atS: number; actions: DisruptAction[] };
    rollingTask?: RollingTaskReport;
  },
): SimReport {
  const d = s.disruption;
  const disruption: DisruptionReport | undefined =
    meta.disrupt && (d || meta.disrupt.actions.length > 0)
      ? {
          kind: meta.disrupt.kind,
          atS: meta.disrupt.atS,
          agentsLost: d?.lost ?? 0,
          agentsReconnected: d?.back ?? 0,
          allBackMs: d && d.allBackMs >= 0 ? d.allBackMs : null,
          ...(meta.disrupt.kind === 'kafka-outage'
            ? { recordsDuringOutage: d?.recordsDuringOutage ?? 0 }
            : {}),
          actions: meta.disrupt.actions,
        }
      : undefined;
  return {
    ...(disruption ? { disruption } : {}),
    ...(meta.rollingTask ? { rollingTask: meta.rollingTask } : {}),
    format: REPORT_FORMAT,
    scenario: meta.scenario,
    elapsedS: Number(s.elapsedS.toFixed(1)),
    agents: s.agents,
    connectedAtEnd: s.connected,
    ...simCounters(s),
    errors: { ...s.errors },
    ...(s.errorSamples && Object.keys(s.errorSamples).length > 0
      ? { errorSamples: { ...s.errorSamples } }
      : {}),
    reconnectMs: summarize(histogramOf(s.reconnectMs)),
    commandLatencyMs: summarize(histogramOf(s.commandLatencyMs)),
    sources: [
      {
        hostname: os.hostname(),
        pid: process.pid,
        processes: meta.processes,
        agents: s.agents,
        startedAt: meta.startedAt.toISOString(),
        endedAt: (meta.endedAt ?? new Date()).toISOString(),
      },
    ],
  };
}

export class ReportFormatError extends Error {}

/** Checks the shape of a parsed report file; throws ReportFormatError naming what is wrong. */
export function parseReport(value: unknown, file = 'report'): SimReport {
  const r = value as Partial<SimReport> | null;
  if (typeof r !== 'object' || r === null) throw new ReportFormatError(`${file}: not a JSON object`);
  if (r.format !== REPORT_FORMAT)
    throw new ReportFormatError(
      `${file}: format ${JSON.stringify(r.format)} is not ${REPORT_FORMAT} (written by another version of fleetgate sim?)`,
    );
  for (const k of COUNTS) {
    if (typeof r[k] !== 'number' || !Number.isFinite(r[k]) || (r[k] as number) < 0)
      throw new ReportFormatError(`${file}: ${k} must be a non-negative number`);
  }
  for (const k of ['reconnectMs', 'commandLatencyMs'] as const) {
    if (typeof r[k]?.histogram !== 'string')
      throw new ReportFormatError(`${file}: ${k}.histogram is missing`);
  }
  if (!Array.isArray(r.sources)) throw new ReportFormatError(`${file}: sources must be an array`);
  if (r.rollingTask !== undefined) {
    const t = r.rollingTask as Partial<RollingTaskReport> | null;
    if (typeof t?.taskId !== 'string' || !Array.isArray(t.batches))
      throw new ReportFormatError(`${file}: rollingTask must have taskId and batches`);
  }
  return r as SimReport;
}

/**
 * One report from many: counts and errors summed, histograms added (percentiles recomputed from
 * the sum), sources concatenated, the scenario kept when all agree (else "mixed: a, b").
 */
export function mergeReports(reports: readonly SimReport[]): SimReport {
  if (reports.length === 0) throw new ReportFormatError('nothing to merge');
  const reconnect = newHistogram();
  const command = newHistogram();
  const errors: Record<string, number> = {};
  let errorSamples: Record<string, string> = {};
  const counts = Object.fromEntries(COUNTS.map((k) => [k, 0])) as Record<(typeof COUNTS)[number], number>;
  const scenarios = new Set<string>();
  const sources: ReportSource[] = [];
  let elapsedS = 0;
  let disruption: DisruptionReport | undefined;
  let rollingTask: RollingTaskReport | undefined;
  for (const r of reports) {
    if (r.disruption) disruption = mergeDisruption(disruption, r.disruption);
    if (r.rollingTask) {
      // Two tasks' batches and timings do not add up to one task's: refuse rather than mislead.
      if (rollingTask && rollingTask.taskId !== r.rollingTask.taskId)
        throw new ReportFormatError(
          `several reports carry a rolling task (${rollingTask.taskId}, ${r.rollingTask.taskId}): only one invocation of a run should have --manager`,
        );
      rollingTask = r.rollingTask;
    }
    for (const k of COUNTS) counts[k] += r[k];
    addCounts(errors, r.errors ?? {});
    errorSamples = { ...r.errorSamples, ...errorSamples };
    reconnect.add(decodeHistogram(r.reconnectMs.histogram));
    command.add(decodeHistogram(r.commandLatencyMs.histogram));
    scenarios.add(r.scenario);
    sources.push(...r.sources);
    elapsedS = Math.max(elapsedS, r.elapsedS ?? 0);
  }
  return {
    format: REPORT_FORMAT,
    scenario: scenarios.size === 1 ? [...scenarios][0]! : `mixed: ${[...scenarios].sort().join(', ')}`,
    elapsedS,
    ...counts,
    errors,
    ...(Object.keys(errorSamples).length > 0 ? { errorSamples } : {}),
    reconnectMs: summarize(reconnect),
    commandLatencyMs: summarize(command),
    sources,
    ...(disruption ? { disruption } : {}),
    ...(rollingTask ? { rollingTask } : {}),
  };
}

/** Sums the agents and records; all back only when every report with losses is (the slowest sets the time). */
function mergeDisruption(a: DisruptionReport | undefined, b: DisruptionReport): DisruptionReport {
  if (!a) return { ...b, actions: [...b.actions] };
  const allBack = (r: DisruptionReport) => r.agentsLost === 0 || r.allBackMs !== null;
  return {
    kind: a.kind === b.kind ? a.kind : `mixed: ${a.kind}, ${b.kind}`,
    atS: Math.min(a.atS, b.atS),
    agentsLost: a.agentsLost + b.agentsLost,
    agentsReconnected: a.agentsReconnected + b.agentsReconnected,
    allBackMs:
      allBack(a) && allBack(b) && a.agentsLost + b.agentsLost > 0
        ? Math.max(a.allBackMs ?? 0, b.allBackMs ?? 0)
        : null,
    ...(a.recordsDuringOutage !== undefined || b.recordsDuringOutage !== undefined
      ? { recordsDuringOutage: (a.recordsDuringOutage ?? 0) + (b.recordsDuringOutage ?? 0) }
      : {}),
    actions: [...a.actions, ...b.actions],
  };
}
