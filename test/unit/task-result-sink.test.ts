/** The gateway's batching TaskResultSink: batch size, order under retries, bounded buffer. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createTaskMetrics } from '../../manager/tasks/metrics.js';
import { createResultSink } from '../../manager/tasks/result-sink.js';
import type { ResultItem } from '../../manager/tasks/types.js';
import { silentLogger } from '../../platform/obs/logger.js';

const result = (i: number) => ({
  agentId: `a${i}`,
  dataType: 5100,
  fields: { token: `t${i}`, status: 'succeed', msg: '' },
});

test('hands over batches of 100 at once; the rest on flush; fields as Elkeid posts them', async () => {
  const batches: ResultItem[][] = [];
  const sink = createResultSink({
    deliver: async (items) => {
      batches.push(items);
    },
    logger: silentLogger(),
    flushMs: 60_000,
  });
  for (let i = 0; i < 250; i++) sink.report(result(i));
  await sink.flush();
  assert.deepEqual(
    batches.map((b) => b.length),
    [100, 100, 50],
  );
  assert.deepEqual(batches[0]![0], {
    token: 't0',
    status: 'succeed',
    msg: '',
    data_type: '5100',
    agent_id: 'a0',
  });
  await sink.close();
});

test('a failed hand-over is retried with backoff, in order, nothing lost', async () => {
  const seen: string[] = [];
  let fail = 2;
  const sink = createResultSink({
    deliver: async (items) => {
      if (fail-- > 0) throw new Error('manager down');
      seen.push(...items.map((i) => i.token!));
    },
    logger: silentLogger(),
    retryBaseMs: 20,
    flushMs: 60_000,
  });
  for (let i = 0; i < 150; i++) sink.report(result(i));
  await sink.flush(5000);
  assert.deepEqual(
    seen,
    Array.from({ length: 150 }, (_, i) => `t${i}`),
  );
  assert.equal(sink.buffered, 0);
  await sink.close();
});

test('past maxBuffer new results are dropped and counted', async () => {
  const registry = new Registry();
  const metrics = createTaskMetrics(registry);
  const sink = createResultSink({
    deliver: async () => {
      throw new Error('manager down');
    },
    logger: silentLogger(),
    metrics,
    maxBuffer: 10,
    batchSize: 1000,
    retryBaseMs: 10_000,
    flushMs: 60_000,
  });
  for (let i = 0; i < 25; i++) sink.report(result(i));
  assert.equal(sink.buffered, 10);
  assert.equal(sink.dropped, 15);
  const m = await registry.getSingleMetric('fleetgate_task_result_sink_dropped_total')?.get();
  assert.equal(m?.values[0]?.value, 15);
});
