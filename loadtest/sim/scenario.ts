/**
 * The load scenarios, as data shared by the Node simulator and the k6 scripts (loadtest/k6/
 * reads the JSON that `scenarioJson()` produces: `npm run gen:k6` writes it, and a test checks the
 * file is current). Numbers follow a stock Elkeid agent (docs/elkeid-protocol.md §1.8–§1.11).
 */
export interface EventKind {
  dataType: number;
  /** Share of the event stream. */
  weight: number;
  /** Approximate encoded body size. */
  bytes: number;
}

export interface Scenario {
  name: string;
  description: string;
  /** How long the scenario runs, then stops by itself. */
  durationS: number;
  /** Agents start spread over this many seconds (0: all at once). */
  rampS: number;
  /** Events per agent per second (Poisson-ish, batched every send tick). */
  eventsPerAgentPerS: number;
  /** Reconnect delay after a stream ends (Elkeid: fixed 5 s, no back-off, no jitter). */
  reconnectDelayMs: number;
  /** Optional disruption at a point of the run. */
  disrupt?: {
    atS: number;
    /**
     * Wall-clock moment (epoch ms) that overrides atS: simulators on many machines (clocks kept
     * by NTP) disrupt together, whenever each of them started (`--disrupt-at-time`).
     */
    atEpochMs?: number;
    kind: 'reconnect-storm' | 'gateway-sigterm' | 'gateway-sigkill' | 'kafka-outage' | 'rolling-task';
    /** kafka-outage: seconds until the recover command (default 30). */
    outageS?: number;
    /** rolling-task: share of the agents each run of the task releases (Elkeid's rolling_percent). */
    rollingPercent?: number;
  };
}

/** Milliseconds from now until the disruption, for a run that started at `startedAt` (epoch ms). */
export function disruptDelayMs(d: NonNullable<Scenario['disrupt']>, startedAt: number): number {
  const at = d.atEpochMs ?? startedAt + d.atS * 1000;
  return Math.max(0, at - Date.now());
}

export const AGENT = {
  sendTickMs: 100,
  heartbeatS: 60,
  ringSlots: 2048,
  dialTimeoutMs: 15_000,
  discoveryName: 'hids_svr_grpc',
  discoveryCount: 10,
  product: 'elkeid-agent',
  version: '1.9.1.4',
} as const;

/** A realistic mix: process execution dominates, then network connections and DNS. */
export const EVENT_MIX: readonly EventKind[] = [
  { dataType: 59, weight: 0.6, bytes: 600 },
  { dataType: 42, weight: 0.2, bytes: 420 },
  { dataType: 601, weight: 0.15, bytes: 300 },
  { dataType: 5003, weight: 0.05, bytes: 900 },
];

export const SCENARIOS: Readonly<Record<string, Scenario>> = {
  steady: {
    name: 'steady',
    description: 'agents connect over rampS and stream at a steady event rate',
    durationS: 600,
    rampS: 60,
    eventsPerAgentPerS: 2,
    reconnectDelayMs: 5000,
  },
  ramp: {
    name: 'ramp',
    description: 'agents join linearly over the whole run',
    durationS: 300,
    rampS: 300,
    eventsPerAgentPerS: 2,
    reconnectDelayMs: 5000,
  },
  'reconnect-storm': {
    name: 'reconnect-storm',
    description: 'every agent is disconnected at once mid-run (conn/reset) and reconnects after 5 s',
    durationS: 180,
    rampS: 30,
    eventsPerAgentPerS: 1,
    reconnectDelayMs: 5000,
    disrupt: { atS: 60, kind: 'reconnect-storm' },
  },
  'gateway-loss': {
    name: 'gateway-loss',
    description: 'one gateway is killed (SIGKILL) mid-run; its agents move to the others',
    durationS: 180,
    rampS: 30,
    eventsPerAgentPerS: 1,
    reconnectDelayMs: 5000,
    disrupt: { atS: 60, kind: 'gateway-sigkill' },
  },
  'kafka-outage': {
    name: 'kafka-outage',
    description: 'Kafka is stopped mid-run and restarted; records spool and are shipped in order',
    durationS: 240,
    rampS: 30,
    eventsPerAgentPerS: 2,
    reconnectDelayMs: 5000,
    disrupt: { atS: 60, kind: 'kafka-outage' },
  },
  'rolling-task': {
    name: 'rolling-task',
    description: 'a task is sent to every agent in rolling batches; agents answer with a result record',
    durationS: 180,
    rampS: 30,
    eventsPerAgentPerS: 1,
    reconnectDelayMs: 5000,
    disrupt: { atS: 60, kind: 'rolling-task', rollingPercent: 0.25 },
  },
};

/** What k6 reads (loadtest/k6/scenario.json). */
export function scenarioJson(): string {
  return `${JSON.stringify({ agent: AGENT, eventMix: EVENT_MIX, scenarios: SCENARIOS }, null, 2)}\n`;
}

/** Picks an event kind by weight. */
export function pickEvent(rand: () => number): EventKind {
  let x = rand();
  for (const e of EVENT_MIX) {
    x -= e.weight;
    if (x <= 0) return e;
  }
  return EVENT_MIX[0]!;
}
