/**
 * A gateway's ingest load as it publishes it with its aggregate (manager/agent-status-writer.ts,
 * every 30 s): records per second received from agents, records per second that reached Kafka
 * (produced directly or shipped from the spool), and the spool's depth. Read from the process's
 * own Prometheus counters, so nothing in the record path changes; rates are over the interval
 * between two readings (one aggregate period).
 */
import type { Metrics } from '../../platform/obs/metrics.js';

export interface GatewayLoad {
  /** Records received from agents per second since the previous reading. */
  recordsInPerS: number;
  /** Records that reached Kafka per second since the previous reading (direct + shipped from the spool). */
  recordsToKafkaPerS: number;
  /** Records in the spool not yet shipped. */
  spoolRecords: number;
  spoolBytes: number;
}

interface CounterReading {
  atMs: number;
  recordsIn: number;
  toKafka: number;
}

interface Readable {
  get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }>;
}

async function total(metric: Readable, only?: (labels: Record<string, unknown>) => boolean): Promise<number> {
  const m = await metric.get();
  return m.values.filter((v) => !only || only(v.labels)).reduce((n, v) => n + v.value, 0);
}

const perSecond = (delta: number, ms: number) =>
  ms > 0 ? Math.round((Math.max(0, delta) * 10_000) / ms) / 10 : 0;

/** Returns the reader the status writer calls with each aggregate. */
export function createLoadMeter(metrics: Metrics, now: () => number = Date.now): () => Promise<GatewayLoad> {
  let previous: CounterReading = { atMs: now(), recordsIn: 0, toKafka: 0 };
  return async () => {
    const [recordsIn, direct, shipped, spoolRecords, spoolBytes] = await Promise.all([
      total(metrics.recordsIn),
      total(metrics.ingestRecords, (l) => l.path === 'kafka'),
      total(metrics.spoolShipped),
      total(metrics.spoolPending),
      total(metrics.spoolBytes),
    ]);
    const reading: CounterReading = { atMs: now(), recordsIn, toKafka: direct + shipped };
    const ms = reading.atMs - previous.atMs;
    const load: GatewayLoad = {
      recordsInPerS: perSecond(reading.recordsIn - previous.recordsIn, ms),
      recordsToKafkaPerS: perSecond(reading.toKafka - previous.toKafka, ms),
      spoolRecords,
      spoolBytes,
    };
    previous = reading;
    return load;
  };
}
