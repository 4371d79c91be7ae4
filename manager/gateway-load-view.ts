/**
 * A gateway's published ingest load (gateway/process/gateway-load.ts, stored in its aggregate) as
 * the API shows it: null where the gateway publishes none (an older gateway, or one without the
 * store), never a made-up zero.
 */
import type { GatewayLoad } from '../gateway/process/gateway-load.js';

export function parseGatewayLoad(v: unknown): GatewayLoad | undefined {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const r = v as Record<string, unknown>;
  const fields = ['recordsInPerS', 'recordsToKafkaPerS', 'spoolRecords', 'spoolBytes'] as const;
  if (!fields.every((f) => typeof r[f] === 'number' && Number.isFinite(r[f]))) return undefined;
  return {
    recordsInPerS: r.recordsInPerS as number,
    recordsToKafkaPerS: r.recordsToKafkaPerS as number,
    spoolRecords: r.spoolRecords as number,
    spoolBytes: r.spoolBytes as number,
  };
}

export function gatewayLoadView(load: GatewayLoad | undefined) {
  return {
    records_in_per_s: load?.recordsInPerS ?? null,
    records_to_kafka_per_s: load?.recordsToKafkaPerS ?? null,
    spool_records: load?.spoolRecords ?? null,
    spool_bytes: load?.spoolBytes ?? null,
  };
}
