/**
 * The gateway's readiness (/readyz on the control API) and what discovery is told: not ready
 * while draining or while the sink cannot take records (spool full, spool disk failing), so
 * discovery and load balancers send new agents elsewhere; degraded but ready while a part that
 * records do not need is down (the store: agent status, configs, load control).
 */
import type { Readiness } from '../../platform/http/health-routes.js';
import type { IngestSink } from '../ingest/sink.js';

export interface GatewayReadinessInput {
  draining: () => boolean;
  sink: Pick<IngestSink, 'health'>;
  /** What is degraded now (e.g. 'store unavailable: …'); empty when nothing is. */
  degraded?: () => string[];
}

export function gatewayReadiness(o: GatewayReadinessInput): () => Readiness {
  return () => {
    if (o.draining()) return 'draining';
    const health = o.sink.health?.() ?? { ready: true, reasons: [] };
    const degraded = o.degraded?.() ?? [];
    if (health.ready && degraded.length === 0) return true;
    return {
      ready: health.ready,
      status: health.ready ? 'degraded' : 'not ready',
      ...(health.reasons.length > 0 ? { reasons: health.reasons } : {}),
      ...(degraded.length > 0 ? { degraded } : {}),
    };
  };
}

/**
 * The connection limit to register in discovery: while not ready, no room for new agents (the
 * limit is the agents already here, i.e. full; 0 when none, which drops the agent port from
 * discovery until ready again).
 */
export function advertisedLimit(limit: number, connected: number, ready: boolean): number {
  return ready ? limit : Math.min(limit, connected);
}

/** Calls `onChange` when `ready()` flips (polled every `everyMs`); returns the stop function. */
export function watchReadiness(ready: () => boolean, onChange: (ready: boolean) => void, everyMs = 1000) {
  let last = ready();
  const timer = setInterval(() => {
    const now = ready();
    if (now !== last) {
      last = now;
      onChange(now);
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
