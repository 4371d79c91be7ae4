import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLoadMeter } from '../../gateway/process/gateway-load.js';
import { createMetrics } from '../../platform/obs/metrics.js';

test('gateway load: records/s in and into Kafka over the period between readings, and the spool depth', async () => {
  const metrics = createMetrics();
  let now = 1_000_000;
  const read = createLoadMeter(metrics, () => now);
  metrics.recordsIn.inc({ data_type: '1000' }, 200);
  metrics.recordsIn.inc({ data_type: '59' }, 100);
  metrics.ingestRecords.inc({ path: 'kafka' }, 120);
  metrics.ingestRecords.inc({ path: 'spool' }, 180); // spooled: not in Kafka yet
  metrics.spoolShipped.inc(30); // shipped from the spool: in Kafka now
  metrics.spoolPending.set(150);
  metrics.spoolBytes.set(64_000);
  now += 30_000;
  assert.deepEqual(await read(), {
    recordsInPerS: 10,
    recordsToKafkaPerS: 5,
    spoolRecords: 150,
    spoolBytes: 64_000,
  });
  // The next reading covers only what came since.
  metrics.recordsIn.inc({ data_type: '1000' }, 15);
  now += 30_000;
  assert.deepEqual(await read(), {
    recordsInPerS: 0.5,
    recordsToKafkaPerS: 0,
    spoolRecords: 150,
    spoolBytes: 64_000,
  });
});
