/**
 * Load control on the gateway (Elkeid has none): applies the desired connection limit the manager
 * stores for this gateway (`fleet#limit`, read by the HeartbeatWriter every few seconds).
 *
 *   - admission: the session registry refuses new streams at min(desired, FLEETGATE_MAX_CONNECTIONS)
 *     with RESOURCE_EXHAUSTED, as at the hard limit (SessionRegistry.setDesiredLimit);
 *   - discovery: `onLimitChange` fires so the registrar re-registers at once with the lower `limit`,
 *     and discovery, which leaves full instances out and orders by weight / limit, sends agents to
 *     the other gateways;
 *   - shedding: above the limit, excess streams are ended with status OK (as Elkeid's `/conn/reset`)
 *     at most `ratePerSecond` in any one-second window (a sliding window of the last second's
 *     closes), spread evenly over the second by a token bucket holding 200 ms worth, oldest
 *     connection first or at random: a gradual move, never a reconnect storm. A stock Elkeid
 *     agent does not ask discovery at once (docs/elkeid-protocol.md §1.8): it re-opens its stream on
 *     the same ready connection every 5 s, is refused here by admission, and re-resolves after
 *     about five reuses (~30 s); fleetgate's simulator asks discovery on every reconnect.
 *
 * A stream being ended counts as gone for the excess, so a slow close is not shed twice.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../../platform/obs/logger.js';
import { Status } from '../grpc/status.js';
import type { AgentSession, SessionRegistry } from './sessions.js';

export type ShedOrder = 'oldest' | 'random';

export interface LoadShedderOptions {
  sessions: SessionRegistry;
  /** The desired limit now (HeartbeatWriter.desiredLimit); undefined = none. */
  desiredLimit: () => number | undefined;
  /** Streams ended per second at most (FLEETGATE_SHED_RATE). */
  ratePerSecond: number;
  /** Which streams go first (FLEETGATE_SHED_ORDER). */
  order: ShedOrder;
  logger: Logger;
  registry?: Registry;
  /** Called when the effective limit changes (re-register in discovery). */
  onLimitChange?: (effective: number, desired: number | undefined) => void;
  /** Called per ended stream with the time the shedder decided it (its clock; tests). */
  onShed?: (agentId: string, atMs: number) => void;
  /** Default 100 ms. */
  tickMs?: number;
  now?: () => number;
  random?: () => number;
}

export interface LoadShedder {
  start(): void;
  /** One step now (what the timer does): applies the limit, ends what the rate allows. */
  tick(): number;
  /** Streams ended so far. */
  readonly shed: number;
  stop(): void;
}

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/**
 * The `n` oldest of the sessions `eligible` accepts (by `connectedAt`, then iteration order), in
 * that order. A tick picks a few (at most the bucket: 200 ms of the rate) out of every stream of
 * the gateway, ten times a second while shedding; sorting them all each time costs ~20 ms a tick
 * at 100,000 streams. One pass keeping the n oldest reads each stream's age once (a sort is used
 * only for large n, where inserting into the kept list would cost more).
 */
export function oldest(
  sessions: Iterable<AgentSession>,
  n: number,
  eligible: (s: AgentSession) => boolean = () => true,
): AgentSession[] {
  if (n <= 0) return [];
  if (n > 256) {
    return [...sessions]
      .filter(eligible)
      .map((s, i) => [s, i] as const)
      .sort((a, b) => a[0].connectedAt - b[0].connectedAt || a[1] - b[1])
      .slice(0, n)
      .map(([s]) => s);
  }
  const keep: Array<{ s: AgentSession; at: number }> = [];
  for (const s of sessions) {
    if (!eligible(s)) continue;
    const at = s.connectedAt;
    // Full and not strictly older than the youngest kept: it loses (ties go to the earlier one).
    if (keep.length === n && at >= keep[n - 1]!.at) continue;
    // After every kept one of the same age or older.
    let lo = 0;
    let hi = keep.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keep[mid]!.at <= at) lo = mid + 1;
      else hi = mid;
    }
    keep.splice(lo, 0, { s, at });
    if (keep.length > n) keep.pop();
  }
  return keep.map((k) => k.s);
}

/** The shedder's metrics, registered once per registry (a second shedder reuses them). */
interface ShedMetrics {
  shed: Counter | undefined;
  desiredLimit: Gauge | undefined;
}

function shedMetrics(registry: Registry | undefined): ShedMetrics {
  if (!registry) return { shed: undefined, desiredLimit: undefined };
  return {
    shed: metric(
      registry,
      'fleetgate_gateway_shed_connections_total',
      () =>
        new Counter({
          name: 'fleetgate_gateway_shed_connections_total',
          help: 'agent streams ended by load control (above the desired connection limit)',
          registers: [registry],
        }),
    ),
    desiredLimit: metric(
      registry,
      'fleetgate_gateway_desired_limit',
      () =>
        new Gauge({
          name: 'fleetgate_gateway_desired_limit',
          help: 'connection limit set by the manager for this gateway (-1: none); admission uses min(this, FLEETGATE_MAX_CONNECTIONS)',
          registers: [registry],
        }),
    ),
  };
}

/** What one load shedder carries from tick to tick. */
class ShedderState {
  /** Streams ended by us that have not left the registry yet. */
  readonly closing = new Set<AgentSession>();
  /** Token bucket: closes allowed now, refilled at the rate up to `burst` (200 ms worth). */
  tokens = 0;
  readonly burst: number;
  /** When each of the last second's closes happened (the hard cap). */
  readonly recent: number[] = [];
  lastTickAt: number;
  shed = 0;
  lastEffective: number;
  lastDesired: number | undefined;
  timer: NodeJS.Timeout | undefined;

  constructor(
    readonly options: LoadShedderOptions,
    readonly log: Logger,
    readonly metrics: ShedMetrics,
    readonly now: () => number,
    readonly random: () => number,
    readonly rate: number,
  ) {
    this.burst = Math.max(1, rate * 0.2);
    this.lastTickAt = now();
    this.lastEffective = options.sessions.effectiveLimit;
  }

  /** A live stream not already being ended by us. */
  readonly eligible = (session: AgentSession): boolean => session.live && !this.closing.has(session);
}

export function createLoadShedder(options: LoadShedderOptions): LoadShedder {
  const metrics = shedMetrics(options.registry);
  metrics.desiredLimit?.set(-1);
  const state = new ShedderState(
    options,
    options.logger.child({ component: 'load-shedder' }),
    metrics,
    options.now ?? Date.now,
    options.random ?? Math.random,
    Math.max(0.001, options.ratePerSecond),
  );
  const tickMs = options.tickMs ?? 100;
  const tick = () => shedderTick(state);
  return {
    start() {
      if (state.timer) return;
      state.lastTickAt = state.now();
      state.timer = setInterval(() => {
        try {
          tick();
        } catch (err) {
          state.log.warn({ err }, 'load shedder tick failed');
        }
      }, tickMs);
      state.timer.unref();
    },
    tick,
    get shed() {
      return state.shed;
    },
    stop() {
      if (state.timer) clearInterval(state.timer);
      state.timer = undefined;
    },
  };
}

/** One step: reads and applies the desired limit, then ends what the excess and the rate allow. */
function shedderTick(state: ShedderState): number {
  const tickAt = state.now();
  const elapsedSeconds = Math.max(0, tickAt - state.lastTickAt) / 1000;
  state.lastTickAt = tickAt;
  const { desired, effective } = applyDesiredLimit(state);
  const { sessions } = state.options;
  for (const session of state.closing) {
    if (sessions.get(session.agentId) !== session) state.closing.delete(session);
  }
  const excess = sessions.size - state.closing.size - effective;
  if (desired === undefined || excess <= 0) {
    // Nothing to do: the bucket starts from empty when shedding starts, so it never bursts.
    state.tokens = 0;
    return 0;
  }
  return shedExcess(state, tickAt, elapsedSeconds, excess, effective);
}

/**
 * Reads the desired limit, hands it to the registry's admission and the gauge, and on a change
 * logs it and tells discovery (onLimitChange).
 */
function applyDesiredLimit(state: ShedderState): { desired: number | undefined; effective: number } {
  const { options } = state;
  const desired = options.desiredLimit();
  options.sessions.setDesiredLimit(desired);
  state.metrics.desiredLimit?.set(desired ?? -1);
  const effective = options.sessions.effectiveLimit;
  if (effective !== state.lastEffective || desired !== state.lastDesired) {
    state.log.info(
      { desired: desired ?? null, effective, connected: options.sessions.size },
      'connection limit changed',
    );
    state.lastEffective = effective;
    state.lastDesired = desired;
    options.onLimitChange?.(effective, desired);
  }
  return { desired, effective };
}

/** Ends up to `excess` streams, as many as the token bucket and the one-second cap allow. */
function shedExcess(
  state: ShedderState,
  tickAt: number,
  elapsedSeconds: number,
  excess: number,
  effective: number,
): number {
  state.tokens = Math.min(state.burst, state.tokens + elapsedSeconds * state.rate);
  const { recent } = state;
  while (recent.length > 0 && recent[0]! <= tickAt - 1000) recent.shift();
  const count = Math.min(excess, Math.floor(state.tokens), Math.floor(state.rate) - recent.length);
  if (count <= 0) return 0;
  state.tokens -= count;
  const victims = pickVictims(state, count);
  for (const session of victims) {
    state.closing.add(session);
    recent.push(tickAt);
    session.close(Status.OK, 'connection limit lowered: reconnect through discovery', { goaway: true });
    state.options.onShed?.(session.agentId, tickAt);
  }
  state.shed += victims.length;
  state.metrics.shed?.inc(victims.length);
  state.log.info(
    { closed: victims.length, excess, effective },
    'shed agent streams above the connection limit',
  );
  return victims.length;
}

/** The `count` streams to end, in the configured order. */
function pickVictims(state: ShedderState, count: number): AgentSession[] {
  const { sessions, order } = state.options;
  if (order === 'random') {
    const live = [...sessions.all()].filter(state.eligible);
    for (let i = live.length - 1; i > 0; i--) {
      const j = Math.floor(state.random() * (i + 1));
      [live[i], live[j]] = [live[j]!, live[i]!];
    }
    return live.slice(0, count);
  }
  // Oldest first; the registry iterates in attach order, which breaks ties of the second.
  return oldest(sessions.all(), count, state.eligible);
}
