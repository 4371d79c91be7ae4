/**
 * The producer with our Produce encoder (produce-hook.ts) and with kafkajs' own (what it falls
 * back to when the hook does not fit the installed kafkajs), against the real broker: the same
 * records — several keys, headers, sizes — reach Kafka identically through both, partition by
 * partition in offset order, for each compression; and our encoder is the one that ran.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { produceEncoderStats } from '../../workers/kafka/produce-hook.js';
import {
  type CompressionName,
  createRecordProducer,
  type ProducerRecord,
} from '../../workers/kafka/producer.js';
import { BROKER, type ConsumedRecord, consumeAll, createTopic, kafkaReady } from '../helpers/kafka.js';

before(kafkaReady, { timeout: 180_000 });

function records(n: number): ProducerRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `agent-${i % 7}`,
    value:
      i % 50 === 3 ? Buffer.from('big '.repeat(20_000)) : Buffer.from(`record ${i} ${'x'.repeat(i % 300)}`),
    headers: { 'fleetgate-gw': 'gw-encoder', 'fleetgate-seq': String(i), ...(i % 3 ? {} : { extra: 'é' }) },
  }));
}

const view = (rs: ConsumedRecord[]) =>
  [...rs]
    .sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)))
    .map((r) => ({
      partition: r.partition,
      key: r.key,
      value: r.value.toString('base64'),
      headers: r.headers,
    }));

for (const compression of ['none', 'lz4', 'zstd'] as const satisfies readonly CompressionName[]) {
  test(`ours and kafkajs' encoder write the same records (${compression})`, async (t) => {
    const N = 400;
    const topics = { ours: await createTopic(t), kafkajs: await createTopic(t) };
    const send = async (encoder: 'fleetgate' | 'kafkajs', topic: string) => {
      const p = createRecordProducer({
        brokers: [BROKER],
        clientId: `encoder-${encoder}`,
        topic,
        compression,
        partitioner: 'fnv1a',
        produceEncoder: encoder,
        syncCompression: encoder === 'fleetgate',
      });
      try {
        const rs = records(N);
        // Concurrent calls, so that batches hold several calls' sets of several keys.
        await Promise.all([0, 100, 200, 300].map((at) => p.send(rs.slice(at, at + 100))));
      } finally {
        await p.disconnect();
      }
    };
    const before = { ...produceEncoderStats };
    await send('fleetgate', topics.ours);
    assert.ok(produceEncoderStats.ours > before.ours, 'our encoder wrote the requests');
    const mid = { ...produceEncoderStats };
    await send('kafkajs', topics.kafkajs);
    assert.equal(produceEncoderStats.ours, mid.ours, "kafkajs' encoder wrote the fallback's requests");
    assert.ok(produceEncoderStats.kafkajs > mid.kafkajs);

    const [ours, theirs] = await Promise.all([consumeAll(topics.ours, N), consumeAll(topics.kafkajs, N)]);
    assert.equal(ours.length, N);
    assert.deepEqual(view(ours), view(theirs));
  });
}
