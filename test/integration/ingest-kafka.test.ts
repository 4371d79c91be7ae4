/**
 * The ingest pipeline through the real component: agents → gateway → piscina workers → a real
 * Kafka broker (and the spool when Kafka does not take records). Every record is counted by its
 * acceptance headers, so loss and duplication are exact.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, test } from 'node:test';
import { encodeItem } from '../../gateway/agent/item.js';
import { IngestPipeline } from '../../gateway/ingest/pipeline.js';
import { Spool } from '../../gateway/ingest/spool.js';
import { connectAgent, openTransfer } from '../../loadtest/agent/raw-agent.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { createMetrics } from '../../platform/obs/metrics.js';
import { grpc } from '../../proto/gen/elkeid.js';
import { HEADER_GW, HEADER_SEQ } from '../../workers/spool-entry.js';
import { startTestGateway, tempDir, waitFor } from '../helpers/gateway.js';
import { BROKER, consumeAll, createTopic, kafkaReady } from '../helpers/kafka.js';
import { metricValue } from '../helpers/metrics.js';

before(kafkaReady, { timeout: 180_000 });

async function pipeline(
  t: import('node:test').TestContext,
  opts: { topic?: string; workers: number; brokers?: string[]; batchWindowMs?: number },
) {
  const spool = await Spool.open(path.join(tempDir(t), 'spool'));
  const metrics = createMetrics();
  const p = new IngestPipeline({
    spool,
    kafka: opts.topic
      ? {
          brokers: opts.brokers ?? [BROKER],
          clientId: 'test',
          topic: opts.topic,
          compression: 'lz4',
          partitioner: 'murmur2',
        }
      : undefined,
    workers: opts.workers,
    gatewayId: 'gw-test',
    metrics,
    logger: silentLogger(),
    retryMinMs: 50,
    retryMaxMs: 200,
    ...(opts.batchWindowMs !== undefined ? { batchWindowMs: opts.batchWindowMs } : {}),
  });
  t.after(() => p.close());
  return { p, spool, metrics };
}

const bodyOf = (n: number) =>
  encodeItem({ n: String(n), exe: '/usr/bin/true', argv: 'true --long-arg'.repeat(20) });

/** Sends `batches` RawData of `perBatch` records from each of `agents` agents, awaiting the gateway. */
async function drive(
  g: Awaited<ReturnType<typeof startTestGateway>>,
  agents: number,
  batches: number,
  perBatch: number,
) {
  const streams = await Promise.all(
    Array.from({ length: agents }, async (_, a) => {
      const session = await connectAgent(g.address, g.tls);
      return { session, s: openTransfer(session), id: `agent-${a}` };
    }),
  );
  let t = 0;
  for (let b = 0; b < batches; b++) {
    for (const { s, id } of streams) {
      s.send({
        AgentID: id,
        Hostname: `h-${id}`,
        IntranetIPv4: ['10.1.0.1', '10.1.0.2'],
        Data: Array.from({ length: perBatch }, () => ({
          DataType: 59,
          Timestamp: ++t,
          Body: bodyOf(t),
        })),
      });
    }
  }
  return streams;
}

function checkOrderAndCount(
  records: Array<{ key: string; value: Buffer; headers: Record<string, string> }>,
  expected: number,
) {
  assert.equal(records.length, expected, 'every record exactly once');
  const seqs = new Set(records.map((r) => r.headers[HEADER_SEQ]));
  assert.equal(seqs.size, expected, 'no duplicate acceptance sequence');
  const lastByAgent = new Map<string, number>();
  for (const r of records) {
    assert.equal(r.headers[HEADER_GW], 'gw-test');
    const mq = grpc.MQData.decode(r.value);
    assert.equal(mq.AgentID, r.key);
    assert.equal(mq.DataType, 59);
    assert.equal(mq.IntranetIPv4, '10.1.0.1,10.1.0.2');
    const at = Number(mq.AgentTime);
    // The body reaches Kafka byte for byte as the agent sent it.
    assert.deepEqual(Buffer.from(mq.Body), Buffer.from(bodyOf(at)));
    assert.ok((lastByAgent.get(r.key) ?? 0) < at, `records of ${r.key} in order`);
    lastByAgent.set(r.key, at);
  }
}

for (const workers of [1, 0]) {
  test(`records reach Kafka as MQData with acceptance headers, in order per agent (workers=${workers})`, async (t) => {
    const topic = await createTopic(t);
    const { p, metrics } = await pipeline(t, { topic, workers });
    const g = await startTestGateway(t, { sink: p });
    const streams = await drive(g, 8, 5, 20);
    await waitFor(() => g.gateway.sessions.size === 8, 10_000, 'agents');
    const records = await consumeAll(topic, 800, 30_000);
    checkOrderAndCount(records, 800);
    assert.equal(
      (await metrics.ingestRecords.get()).values.find((v) => v.labels.path === 'kafka')?.value,
      800,
    );
    for (const { session } of streams) session.destroy();
  });
}

test('with Kafka unreachable, records are spooled (nothing lost, nothing dropped) and accepted in order', async (t) => {
  const { p, spool, metrics } = await pipeline(t, { topic: 'unused', workers: 1, brokers: ['127.0.0.1:1'] });
  const g = await startTestGateway(t, { sink: p });
  const streams = await drive(g, 3, 4, 10);
  await waitFor(() => spool.stats().entries === 120, 60_000, 'records in the spool');
  assert.equal(p.spooling, true);
  const spooled = (await metrics.ingestRecords.get()).values.find((v) => v.labels.path === 'spool')?.value;
  assert.equal(spooled, 120);
  const entries = await spool.read(spool.pendingFrom(), 1000);
  const last = new Map<string, number>();
  for (const e of entries) {
    const at = Number(grpc.MQData.decode(e.value.subarray(2 + 'gw-test'.length + 8)).AgentTime);
    assert.ok((last.get(e.key) ?? 0) < at, 'spooled in order per agent');
    last.set(e.key, at);
  }
  for (const { session } of streams) session.destroy();
});

test('undecodable bodies are delivered as sent (as Elkeid does) and never stop the batch around them', async (t) => {
  const topic = await createTopic(t);
  const { p } = await pipeline(t, { topic, workers: 1 });
  const g = await startTestGateway(t, { sink: p });
  const session = await connectAgent(g.address, g.tls);
  t.after(() => session.destroy());
  const s = openTransfer(session);
  const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]);
  s.send({
    AgentID: 'bad-bodies',
    Data: [
      { DataType: 59, Timestamp: 1, Body: bodyOf(1) },
      { DataType: 1000, Timestamp: 2, Body: garbage }, // a heartbeat the gateway cannot parse
      { DataType: 5100, Timestamp: 3, Body: garbage }, // a task result the gateway cannot parse
      { DataType: 59, Timestamp: 4, Body: garbage },
      { DataType: 59, Timestamp: 5, Body: bodyOf(5) },
    ],
  });
  const records = await consumeAll(topic, 5, 20_000);
  assert.equal(records.length, 5);
  const bodies = records
    .map((r) => grpc.MQData.decode(r.value))
    .sort((a, b) => Number(a.AgentTime) - Number(b.AgentTime))
    .map((m) => Buffer.from(m.Body));
  assert.deepEqual(bodies, [Buffer.from(bodyOf(1)), garbage, garbage, garbage, Buffer.from(bodyOf(5))]);
  assert.equal(
    await metricValue(g.gateway.metrics.registry, 'fleetgate_records_undecodable_total', {
      data_type: '1000',
    }),
    1,
    'counted',
  );
});

/** A window no test waits out: whatever reaches Kafka got there because the window was ended. */
const ENDLESS_WINDOW_MS = 600_000;

test("the batch window gathers agents' batches into one produce task; flush sends them at once", async (t) => {
  const topic = await createTopic(t);
  const { p, metrics } = await pipeline(t, { topic, workers: 1, batchWindowMs: ENDLESS_WINDOW_MS });
  const g = await startTestGateway(t, { sink: p });
  // One RawData per agent and nothing behind it: each waits in the window for the others.
  const streams = await drive(g, 4, 1, 5);
  const handled = () => [...g.gateway.sessions.all()].reduce((n, a) => n + a.records, 0);
  await waitFor(() => handled() === 20, 10_000, 'all four batches handed to the pipeline');
  assert.equal(await metricValue(metrics.registry, 'fleetgate_ingest_produce_tasks_total'), 0, 'held');
  await p.flush();
  assert.equal(await metricValue(metrics.registry, 'fleetgate_ingest_produce_tasks_total'), 1);
  checkOrderAndCount(await consumeAll(topic, 20, 20_000), 20);
  for (const { session } of streams) session.destroy();
});

test('an agent with more to send is not held by the batch window (the call reports its backlog)', async (t) => {
  const topic = await createTopic(t);
  // Waited out once per RawData, 30 of them would take 45 s: the test would time out.
  const { p } = await pipeline(t, { topic, workers: 1, batchWindowMs: 1500 });
  const g = await startTestGateway(t, { sink: p });
  // 30 RawData written back to back: when one is handed over, the next has arrived behind it
  // (the first may wait out one window: the rest had not arrived when it was handed over).
  const streams = await drive(g, 1, 30, 4);
  checkOrderAndCount(await consumeAll(topic, 30 * 4, 30_000), 30 * 4);
  for (const { session } of streams) session.destroy();
});
