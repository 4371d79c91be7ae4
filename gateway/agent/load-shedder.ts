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

export function createLoadShedder(o: LoadShedderOptions): LoadShedder {
  const log = o.logger.child({ component: 'load-shedder' });
  const now = o.now ?? Date.now;
  const random = o.random ?? Math.random;
  const rate = Math.max(0.001, o.ratePerSecond);
  const tickMs = o.tickMs ?? 100;
  const shedCounter = o.registry
    ? metric(
        o.registry,
        'fleetgate_gateway_shed_connections_total',
        () =>
          new Counter({
            name: 'fleetgate_gateway_shed_connections_total',
            help: 'agent streams ended by load control (above the desired connection limit)',
            registers: [o.registry!],
          }),
      )
    : undefined;
  const limitGauge = o.registry
    ? metric(
        o.registry,
        'fleetgate_gateway_desired_limit',
        () =>
          new Gauge({
            name: 'fleetgate_gateway_desired_limit',
            help: 'connection limit set by the manager for this gateway (-1: none); admission uses min(this, FLEETGATE_MAX_CONNECTIONS)',
            registers: [o.registry!],
          }),
      )
    : undefined;
  limitGauge?.set(-1);

  /** Streams ended by us that have not left the registry yet. */
  const closing = new Set<AgentSession>();
  let tokens = 0;
  const burst = Math.max(1, rate * 0.2);
  /** When each of the last second's closes happened (the hard cap). */
  const recent: number[] = [];
  let last = now();
  let shed = 0;
  let lastEffective = o.sessions.effectiveLimit;
  let lastDesired: number | undefined;
  let timer: NodeJS.Timeout | undefined;

  const eligible = (s: AgentSession) => s.live && !closing.has(s);

  function pick(n: number): AgentSession[] {
    if (o.order === 'random') {
      const live = [...o.sessions.all()].filter(eligible);
      for (let i = live.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [live[i], live[j]] = [live[j]!, live[i]!];
      }
      return live.slice(0, n);
    }
    // Oldest first; the registry iterates in attach order, which breaks ties of the second.
    return oldest(o.sessions.all(), n, eligible);
  }

  function tick(): number {
    const t = now();
    const dt = Math.max(0, t - last) / 1000;
    last = t;
    const desired = o.desiredLimit();
    o.sessions.setDesiredLimit(desired);
    limitGauge?.set(desired ?? -1);
    const effective = o.sessions.effectiveLimit;
    if (effective !== lastEffective || desired !== lastDesired) {
      log.info(
        { desired: desired ?? null, effective, connected: o.sessions.size },
        'connection limit changed',
      );
      lastEffective = effective;
      lastDesired = desired;
      o.onLimitChange?.(effective, desired);
    }
    for (const s of closing) if (o.sessions.get(s.agentId) !== s) closing.delete(s);
    const excess = o.sessions.size - closing.size - effective;
    if (desired === undefined || excess <= 0) {
      // Nothing to do: the bucket starts from empty when shedding starts, so it never bursts.
      tokens = 0;
      return 0;
    }
    tokens = Math.min(burst, tokens + dt * rate);
    while (recent.length > 0 && recent[0]! <= t - 1000) recent.shift();
    const n = Math.min(excess, Math.floor(tokens), Math.floor(rate) - recent.length);
    if (n <= 0) return 0;
    tokens -= n;
    const victims = pick(n);
    for (const s of victims) {
      closing.add(s);
      recent.push(t);
      s.close(Status.OK, 'connection limit lowered: reconnect through discovery', { goaway: true });
      o.onShed?.(s.agentId, t);
    }
    shed += victims.length;
    shedCounter?.inc(victims.length);
    log.info({ closed: victims.length, excess, effective }, 'shed agent streams above the connection limit');
    return victims.length;
  }

  return {
    start() {
      if (timer) return;
      last = now();
      timer = setInterval(() => {
        try {
          tick();
        } catch (err) {
          log.warn({ err }, 'load shedder tick failed');
        }
      }, tickMs);
      timer.unref();
    },
    tick,
    get shed() {
      return shed;
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
