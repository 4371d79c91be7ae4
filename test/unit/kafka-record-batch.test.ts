/**
 * Our single-pass Produce request / RecordBatch encoder (workers/kafka/record-batch.ts)
 * against kafkajs 2.2.4's own modules, byte for byte: random records (keys, values and header
 * values as strings — any Unicode, lone surrogates too — buffers or null; header arrays,
 * integer-like header keys), random partitions and topics, every compression (none, gzip,
 * snappy, lz4, zstd; our sync compress where a codec has one), every Produce version 3–7,
 * transactional or not. Then the kafkajs hook (produce-hook.ts): installed for this version,
 * it encodes record-set requests with ours and leaves every other request to kafkajs.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { registerCodecs } from '../../workers/kafka/codecs.js';
import {
  expandMessages,
  installProduceEncoder,
  produceEncoderStats,
  RecordSetMessage,
  versionMismatch,
} from '../../workers/kafka/produce-hook.js';
import { recordSetsOf } from '../../workers/kafka/producer.js';
import {
  type BatchCodec,
  Compression,
  decodeRecordSet,
  encodeProduceRequest,
  encodeRecordBatch,
  encodeRecordSet,
  type PlainRecord,
  type ProduceArgs,
  type RecordSet,
} from '../../workers/kafka/record-batch.js';

const require = createRequire(import.meta.url);
registerCodecs();

type Enc = { buffer: Buffer };
const { lookupCodec } = require('kafkajs/src/protocol/message/compression') as {
  lookupCodec: (t: number) => BatchCodec | null;
};
/** kafkajs' Produce request definition itself (the module, not the request table the hook wraps). */
const kafkaProduce = require('kafkajs/src/protocol/requests/produce') as {
  protocol: (o: { version: number }) => (args: ProduceArgs) => { request: { encode(): Promise<Enc> } };
};
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch: (o: Record<string, unknown>) => Promise<Enc>;
};
const KafkaRecord = require('kafkajs/src/protocol/recordBatch/record/v0') as (
  o: Record<string, unknown>,
) => Enc;
const Long = require('kafkajs/src/utils/long') as {
  fromInt(n: number): unknown;
  fromValue(v: unknown): unknown;
};
const { requests } = require('kafkajs/src/protocol/requests') as {
  requests: {
    Produce: {
      protocol: (o: { version: number }) => (args: ProduceArgs) => { request: { encode(): Promise<Enc> } };
    };
  };
};

const NOW = 1_700_000_123_456;
const COMPRESSIONS = [
  ['none', Compression.None],
  ['gzip', Compression.GZIP],
  ['snappy', Compression.Snappy],
  ['lz4', Compression.LZ4],
  ['zstd', Compression.ZSTD],
] as const;

// --- generators --------------------------------------------------------------------------------

const str = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.constantFrom('', 'agent-1', '1', '10', 'é✓'),
);
const buf = fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u));
/** Now and then a large, compressible value: several snappy (32 KiB) and lz4 (64 KiB) blocks. */
const big = fc
  .integer({ min: 40_000, max: 140_000 })
  .map((n) => Buffer.from('fleetgate '.repeat(n / 10 + 1)).subarray(0, n));
const bytesOrStr = fc.oneof(
  { arbitrary: buf, weight: 5 },
  { arbitrary: str, weight: 3 },
  { arbitrary: big, weight: 1 },
);
const headerValue = fc.oneof(str, buf);
const headers = fc.option(
  fc.dictionary(
    str.filter((k) => k !== '__proto__'),
    fc.oneof(
      { arbitrary: headerValue, weight: 4 },
      { arbitrary: fc.array(headerValue, { maxLength: 3 }), weight: 1 },
    ),
    { maxKeys: 4 },
  ),
  { nil: undefined },
);
const record: fc.Arbitrary<PlainRecord> = fc.record({
  key: fc.option(fc.oneof(str, buf), { nil: null }),
  value: fc.option(bytesOrStr, { nil: null }),
  headers,
});

/** Random topic data: topics → partitions → records, and for each partition a random cut into sets. */
const topicData = fc.array(
  fc.record({
    topic: fc.constantFrom('hids_svr', 'tópico-ü', 't'),
    partitions: fc.uniqueArray(
      fc.record({
        partition: fc.integer({ min: 0, max: 63 }),
        firstSequence: fc.option(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { nil: undefined }),
        records: fc.array(record, { minLength: 1, maxLength: 90, size: 'max' }),
        cuts: fc.array(fc.integer({ min: 1, max: 89 }), { maxLength: 6 }),
      }),
      { minLength: 1, maxLength: 4, selector: (p) => p.partition },
    ),
  }),
  { minLength: 1, maxLength: 2 },
);

const args = fc.record({
  version: fc.integer({ min: 3, max: 7 }),
  acks: fc.constantFrom(-1, 0, 1),
  timeout: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  transactionalId: fc.option(str, { nil: undefined }),
  producerId: fc.oneof(fc.constant(undefined), fc.constant(-1), fc.integer({ min: 0, max: 2 ** 40 })),
  producerEpoch: fc.option(fc.integer({ min: 0, max: 32_767 }), { nil: undefined }),
});

/** A partition's records cut into record sets at `cuts` (sets need not share a key to encode). */
function setsOf(records: PlainRecord[], cuts: number[]): RecordSet[] {
  const at = [...new Set(cuts.filter((c) => c < records.length))].sort((a, b) => a - b);
  const bounds = [0, ...at, records.length];
  const out: RecordSet[] = [];
  for (let i = 0; i + 1 < bounds.length; i++)
    out.push(encodeRecordSet(records[bounds[i]!]!.key, records, bounds[i]!, bounds[i + 1]!));
  return out;
}

async function kafkajsEncode(version: number, a: ProduceArgs): Promise<Buffer> {
  const saved = Date.now;
  Date.now = () => NOW;
  try {
    return Buffer.from((await kafkaProduce.protocol({ version })(a).request.encode()).buffer);
  } finally {
    Date.now = saved;
  }
}

// --- tests -------------------------------------------------------------------------------------

describe('Produce requests: ours = kafkajs 2.2.4, byte for byte', () => {
  for (const [name, compression] of COMPRESSIONS) {
    test(`random requests, compression ${name}`, async () => {
      await fc.assert(
        fc.asyncProperty(topicData, args, async (topics, a) => {
          const base = {
            acks: a.acks,
            timeout: a.timeout,
            compression,
            transactionalId: a.transactionalId,
            producerId: a.producerId === undefined ? undefined : Long.fromValue(a.producerId),
            producerEpoch: a.producerEpoch,
          };
          const plain: ProduceArgs = {
            ...base,
            topicData: topics.map((t) => ({
              topic: t.topic,
              partitions: t.partitions.map((p) => ({
                partition: p.partition,
                firstSequence: p.firstSequence,
                messages: p.records,
              })),
            })),
          };
          const sets: ProduceArgs<RecordSet> = {
            ...base,
            topicData: topics.map((t) => ({
              topic: t.topic,
              partitions: t.partitions.map((p) => ({
                partition: p.partition,
                firstSequence: p.firstSequence,
                messages: setsOf(p.records, p.cuts),
              })),
            })),
          };
          const theirs = await kafkajsEncode(a.version, plain);
          const ctx = { lookupCodec, now: () => NOW };
          const ours = await encodeProduceRequest(sets, (s) => s, ctx);
          assert.equal(ours.toString('hex'), theirs.toString('hex'));
          // Sync compression (lz4, snappy) writes the same bytes.
          const oursSync = await encodeProduceRequest(sets, (s) => s, { ...ctx, sync: true });
          assert.ok(oursSync.equals(theirs), 'sync compression: same bytes');
        }),
        { numRuns: name === 'none' ? 150 : 60 },
      );
    });
  }

  test('OffsetDelta and lengths across varint sizes: 9,000 records in one partition, 16 KiB values', async () => {
    const records: PlainRecord[] = Array.from({ length: 9000 }, (_, i) => ({
      key: `agent-${i % 3}`,
      value: i % 1000 === 7 ? Buffer.alloc(16_384 + i, i & 0xff) : Buffer.from(`v${i}`),
      headers: { 'fleetgate-gw': 'gw', 'fleetgate-seq': String(i) },
    }));
    for (const [name, compression] of COMPRESSIONS) {
      const a = (messages: unknown[]): ProduceArgs => ({
        acks: -1,
        timeout: 10_000,
        compression,
        producerId: Long.fromInt(-1),
        producerEpoch: 0,
        topicData: [{ topic: 'hids_svr', partitions: [{ partition: 0, firstSequence: 0, messages }] }],
      });
      const theirs = await kafkajsEncode(7, a(records));
      const ours = await encodeProduceRequest(
        a(setsOf(records, [1, 63, 64, 65, 8191, 8192, 8193])),
        (s) => s as RecordSet,
        {
          lookupCodec,
          now: () => NOW,
        },
      );
      assert.ok(ours.equals(theirs), name);
    }
  });
});

describe('RecordBatches: ours = kafkajs 2.2.4 RecordBatch, byte for byte', () => {
  for (const [name, compression] of COMPRESSIONS) {
    test(`random batches, compression ${name}`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(record, { minLength: 1, maxLength: 120 }),
          fc.array(fc.integer({ min: 1, max: 119 }), { maxLength: 8 }),
          fc.boolean(),
          async (records, cuts, transactional) => {
            const fields = {
              compression,
              timestamp: NOW,
              transactional,
              producerId: Long.fromInt(-1),
              producerEpoch: 0,
              firstSequence: 0,
            };
            const theirs = await RecordBatch({
              compression,
              records: records.map((r, i) => KafkaRecord({ ...r, offsetDelta: i, timestampDelta: 0 })),
              firstTimestamp: NOW,
              maxTimestamp: NOW,
              producerId: fields.producerId,
              producerEpoch: 0,
              firstSequence: 0,
              transactional,
              lastOffsetDelta: records.length - 1,
            });
            const sets = setsOf(records, cuts);
            const ours = await encodeRecordBatch(sets, fields, { lookupCodec });
            assert.equal(ours.toString('hex'), theirs.buffer.toString('hex'));
            const oursSync = await encodeRecordBatch(sets, fields, { lookupCodec, sync: true });
            assert.ok(oursSync.equals(theirs.buffer));
          },
        ),
        { numRuns: name === 'none' ? 150 : 60 },
      );
    });
  }
});

describe('record sets', () => {
  test('decodeRecordSet gives the records back (kafkajs encodes them to the same bytes)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 40 }), async (records) => {
        const set = encodeRecordSet('k', records);
        const back = decodeRecordSet(set);
        assert.equal(back.length, records.length);
        const a = (messages: unknown[]): ProduceArgs => ({
          acks: -1,
          timeout: 1,
          compression: 0,
          topicData: [{ topic: 't', partitions: [{ partition: 1, messages }] }],
        });
        assert.ok((await kafkajsEncode(7, a(back))).equals(await kafkajsEncode(7, a(records))));
      }),
      { numRuns: 100 },
    );
  });

  test("the producer's records → sets: one set per run of equal keys, in order", () => {
    const sets = recordSetsOf([
      { key: 'a', value: Buffer.from('1') },
      { key: 'a', value: new Uint8Array([2]) },
      { key: 'b', value: Buffer.from('3'), headers: { h: 'x' } },
      { key: 'a', value: Buffer.from('4') },
    ]);
    assert.deepEqual(
      sets.map((s) => [s.key, s.count]),
      [
        ['a', 2],
        ['b', 1],
        ['a', 1],
      ],
    );
    assert.deepEqual(
      sets.flatMap((s) => decodeRecordSet(s).map((r) => r.value?.toString('hex'))),
      ['31', '02', '33', '34'],
    );
  });
});

describe('the kafkajs hook', () => {
  test('only the exact kafkajs version it reproduces takes it', () => {
    assert.equal(versionMismatch('2.2.4'), undefined);
    for (const v of ['2.2.3', '2.2.5', '2.3.0', '3.0.0', undefined, 2.24])
      assert.match(versionMismatch(v) ?? '', /is not 2\.2\.4$/, String(v));
  });

  test('installs for kafkajs 2.2.4; record-set requests are ours, all others kafkajs', async () => {
    const state = await installProduceEncoder();
    assert.deepEqual(state, { installed: true });
    assert.deepEqual(await installProduceEncoder(), { installed: true }, 'idempotent');
    const records: PlainRecord[] = Array.from({ length: 30 }, (_, i) => ({
      key: `agent-${i % 2}`,
      value: Buffer.from(`value ${i}`),
      headers: { 'fleetgate-gw': 'gw', 'fleetgate-seq': String(i) },
    }));
    const setMessages = setsOf(records, [10, 20]).map((s) => new RecordSetMessage(s, true));
    const a = (messages: unknown[], compression: number): ProduceArgs => ({
      acks: -1,
      timeout: 5000,
      compression,
      producerId: -1,
      producerEpoch: 0,
      topicData: [{ topic: 'hids_svr', partitions: [{ partition: 2, firstSequence: 0, messages }] }],
    });
    const saved = Date.now;
    Date.now = () => NOW;
    try {
      for (const [name, compression] of COMPRESSIONS) {
        const before = { ...produceEncoderStats };
        const theirs = await kafkaProduce.protocol({ version: 7 })(a(records, compression)).request.encode();
        const viaTable = await requests.Produce.protocol({ version: 7 })(
          a(setMessages, compression),
        ).request.encode();
        assert.ok(
          Buffer.from(viaTable.buffer).equals(Buffer.from(theirs.buffer)),
          `${name}: hooked = kafkajs`,
        );
        assert.equal(produceEncoderStats.ours, before.ours + 1, `${name}: encoded by ours`);
        // Plain messages: kafkajs' own request, untouched.
        const plain = await requests.Produce.protocol({ version: 7 })(
          a(records, compression),
        ).request.encode();
        assert.ok(Buffer.from(plain.buffer).equals(Buffer.from(theirs.buffer)));
        assert.equal(produceEncoderStats.kafkajs, before.kafkajs + 1, `${name}: plain → kafkajs`);
        // Mixed: the sets are expanded and kafkajs encodes everything.
        const mixed = [...setMessages.slice(0, 2), ...records.slice(20)];
        const m = await requests.Produce.protocol({ version: 7 })(a(mixed, compression)).request.encode();
        assert.ok(Buffer.from(m.buffer).equals(Buffer.from(theirs.buffer)));
        assert.equal(produceEncoderStats.mixed, before.mixed + 1);
        // The fallback's expansion (what the producer hands kafkajs when the hook is absent).
        const expanded = await kafkaProduce
          .protocol({ version: 7 })(a(expandMessages(setMessages), compression))
          .request.encode();
        assert.ok(Buffer.from(expanded.buffer).equals(Buffer.from(theirs.buffer)));
      }
    } finally {
      Date.now = saved;
    }
  });
});

test('decodeRecordSet: header keys that name Object.prototype members stay plain keys', async () => {
  const records: PlainRecord[] = [
    {
      key: null,
      value: null,
      headers: { toString: Buffer.alloc(0), ['__proto__' as string]: 'p', constructor: ['a', 'b'] },
    },
  ];
  Object.defineProperty(records[0]!.headers!, '__proto__', { value: 'p', enumerable: true });
  const back = decodeRecordSet(encodeRecordSet(null, records));
  assert.deepEqual(Object.keys(back[0]!.headers), Object.keys(records[0]!.headers!));
  const a = (messages: unknown[]): ProduceArgs => ({
    acks: -1,
    timeout: 1,
    compression: 0,
    topicData: [{ topic: 't', partitions: [{ partition: 0, messages }] }],
  });
  assert.ok((await kafkajsEncode(7, a(back))).equals(await kafkajsEncode(7, a(records))));
});
