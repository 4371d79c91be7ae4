/** The writer's counts: its stats() and the `fleetgate_agent_status_writes_total` metric. */
import { Counter, type Registry } from 'prom-client';
import type { HeartbeatWriterStats, WriteKind } from './types.js';

const METRIC = 'fleetgate_agent_status_writes_total';

export function createWriteStats(registry: Registry | undefined): {
  stats: HeartbeatWriterStats;
  count(kind: WriteKind, n?: number): void;
} {
  const stats: HeartbeatWriterStats = {
    tracked: 0,
    writes: { connect: 0, disconnect: 0, stale: 0, put: 0, aggregate: 0, counter: 0 },
    batches: 0,
    errors: 0,
    queuedPuts: 0,
  };
  const metric = registry
    ? ((registry.getSingleMetric(METRIC) as Counter<'kind'> | undefined) ??
      new Counter({
        name: METRIC,
        help: 'agent status writes to DynamoDB by kind (connect, disconnect, stale, put, aggregate, counter)',
        labelNames: ['kind'],
        registers: [registry],
      }))
    : undefined;
  return {
    stats,
    count(kind, n = 1) {
      stats.writes[kind] += n;
      metric?.inc({ kind }, n);
    },
  };
}
