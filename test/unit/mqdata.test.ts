import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import protobuf from 'protobufjs/minimal.js';
import { encodeItem } from '../../gateway/agent/item.js';
import { grpc } from '../../proto/gen/elkeid.js';
import { encodeRecordSet } from '../../workers/kafka/record-batch.js';
import { buildMqRecords } from '../../workers/mqdata.js';
import { readRawWire } from '../../workers/raw-wire.js';
import { buildRecordSet } from '../../workers/record-set.js';
import { HEADER_GW, HEADER_SEQ } from '../../workers/spool-entry.js';

test('MQData fields follow docs/elkeid-protocol.md §1.1 and the body is the agent bytes', () => {
  const body = encodeItem({ exe: '/bin/sh', argv: 'sh -c id' });
  const raw = grpc.RawData.decode(
    grpc.RawData.encode({
      AgentID: 'a-1',
      IntranetIPv4: ['10.0.0.1', '10.0.0.2'],
      ExtranetIPv4: [],
      IntranetIPv6: ['fd00::1'],
      Hostname: 'h',
      Version: '1.9.1',
      Product: 'elkeid-agent',
      Data: [
        { DataType: 59, Timestamp: 1700000000, Body: body },
        { DataType: 1000, Timestamp: 1700000001, Body: new Uint8Array() },
      ],
    }).finish(),
  );
  const recs = buildMqRecords(raw, 1_700_000_123_999, 'web,prod');
  assert.equal(recs.length, 2);
  const mq = grpc.MQData.decode(recs[0]!.value);
  assert.equal(recs[0]!.key, 'a-1');
  assert.equal(mq.DataType, 59);
  assert.equal(Number(mq.AgentTime), 1700000000);
  assert.deepEqual(Buffer.from(mq.Body), Buffer.from(body));
  assert.equal(mq.IntranetIPv4, '10.0.0.1,10.0.0.2');
  assert.equal(mq.ExtranetIPv4, '');
  assert.equal(mq.IntranetIPv6, 'fd00::1');
  assert.equal(mq.Hostname, 'h');
  assert.equal(mq.Version, '1.9.1');
  assert.equal(mq.Product, 'elkeid-agent');
  assert.equal(Number(mq.SvrTime), 1700000123);
  assert.equal(mq.PSMName, '');
  assert.equal(mq.Tag, 'web,prod');
  // Byte-identical to a canonical proto3 encoding (zero fields omitted, field order ascending),
  // which is what Go's proto.Marshal emits.
  const canonical = grpc.MQData.encode(mq).finish();
  assert.deepEqual(Buffer.from(recs[0]!.value), Buffer.from(canonical));
  assert.deepEqual(
    Buffer.from(recs[1]!.value),
    Buffer.from(grpc.MQData.encode(grpc.MQData.decode(recs[1]!.value)).finish()),
  );
});

test('record sets built from RawData (the worker path) = buildMqRecords + acceptance headers, byte for byte', () => {
  // int64 beyond 2^53 as protobufjs takes it: a Long (typed as number for the generated types).
  const long = (b: bigint) =>
    (protobuf.util.Long as unknown as { fromString(s: string): number }).fromString(String(b));
  const int64 = fc.oneof(
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
    fc.constantFrom(0, 1, 1_700_000_000, 2 ** 32, 2 ** 35 - 1, 2 ** 35, 2 ** 53 - 1, -(2 ** 53) + 1),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(long),
  );
  const text = fc.string({ unit: 'binary', maxLength: 20 });
  const rawData = fc.record({
    AgentID: fc.oneof(text, fc.uuid()),
    IntranetIPv4: fc.array(text, { maxLength: 3 }),
    ExtranetIPv4: fc.array(text, { maxLength: 2 }),
    IntranetIPv6: fc.array(text, { maxLength: 2 }),
    ExtranetIPv6: fc.array(text, { maxLength: 2 }),
    Hostname: text,
    Version: text,
    Product: text,
    Data: fc.array(
      fc.record(
        {
          DataType: fc.oneof(
            fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
            fc.constantFrom(0, 59, 1000, 5100),
          ),
          Timestamp: int64,
          Body: fc.oneof(
            fc.uint8Array({ maxLength: 400 }),
            fc.uint8Array({ minLength: 16_000, maxLength: 20_000 }),
          ),
        },
        { requiredKeys: [] },
      ),
      { maxLength: 30 },
    ),
  });
  fc.assert(
    fc.property(
      rawData,
      fc.integer({ min: 0, max: 2 ** 45 }),
      fc.oneof(fc.constant(''), text),
      fc.oneof(
        fc.constantFrom(1, 9, 10, 99_999, 2 ** 31 - 5, 2 ** 53 - 40),
        fc.integer({ min: 0, max: 2 ** 40 }),
      ),
      fc.constantFrom('gw-test', 'host-ä/1234-abcd', ''),
      (r, receivedAt, tag, seq0, gw) =>
        assertSetOfWire(grpc.RawData.encode(r).finish(), receivedAt, tag, gw, seq0),
    ),
    { numRuns: 400 },
  );
});

/** buildRecordSet of the wire bytes = buildMqRecords of protobufjs' decode + acceptance headers. */
function assertSetOfWire(bytes: Uint8Array, receivedAt: number, tag: string, gw: string, seq0: number) {
  const raw = grpc.RawData.decode(bytes);
  const set = buildRecordSet(readRawWire(bytes), receivedAt, tag, gw, seq0);
  const expected = encodeRecordSet(
    raw.AgentID,
    buildMqRecords(raw, receivedAt, tag).map((m, i) => ({
      key: m.key,
      value: Buffer.from(m.value),
      headers: { [HEADER_GW]: gw, [HEADER_SEQ]: String(seq0 + i) },
    })),
  );
  assert.equal(set.key, raw.AgentID);
  assert.equal(set.count, raw.Data.length);
  assert.equal(set.data.toString('hex'), expected.data.toString('hex'));
  assert.deepEqual([...set.ends], [...expected.ends]);
}

/** The top-level fields of an encoded message, each as its field number and its whole bytes. */
function fieldsOf(bytes: Uint8Array): { field: number; bytes: Uint8Array }[] {
  const r = protobuf.Reader.create(bytes);
  const out: { field: number; bytes: Uint8Array }[] = [];
  while (r.pos < r.len) {
    const start = r.pos;
    const tag = r.uint32();
    r.skipType(tag & 7);
    out.push({ field: tag >>> 3, bytes: bytes.subarray(start, r.pos) });
  }
  return out;
}

test('record sets from the wire: header fields between records, unknown and repeated fields, as protobufjs decodes them', () => {
  const unknown = fc.constantFrom(
    protobuf.Writer.create()
      .uint32((20 << 3) | 0)
      .uint64(2 ** 40)
      .finish(),
    protobuf.Writer.create()
      .uint32((21 << 3) | 2)
      .string('extra')
      .finish(),
    protobuf.Writer.create()
      .uint32((22 << 3) | 5)
      .fixed32(7)
      .finish(),
    protobuf.Writer.create()
      .uint32((23 << 3) | 1)
      .fixed64(9)
      .finish(),
  );
  // Appended to a record: a field it does not have, or a second DataType/Timestamp/Body (last wins).
  const recordExtra = fc.oneof(
    unknown,
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((v) =>
      protobuf.Writer.create()
        .uint32(1 << 3)
        .int32(v)
        .finish(),
    ),
    fc.integer({ min: 0, max: 2 ** 40 }).map((v) =>
      protobuf.Writer.create()
        .uint32(2 << 3)
        .int64(v)
        .finish(),
    ),
    fc.uint8Array({ maxLength: 50 }).map((v) =>
      protobuf.Writer.create()
        .uint32((3 << 3) | 2)
        .bytes(v)
        .finish(),
    ),
  );
  const record = fc.record({
    DataType: fc.integer({ min: -5, max: 6000 }),
    Timestamp: fc.integer({ min: 0, max: 2 ** 40 }),
    Body: fc.uint8Array({ maxLength: 300 }),
  });
  const header = fc.record({
    AgentID: fc.uuid(),
    IntranetIPv4: fc.array(fc.ipV4(), { maxLength: 3 }),
    IntranetIPv6: fc.array(fc.ipV6(), { maxLength: 2 }),
    Hostname: fc.string({ maxLength: 20 }),
    Version: fc.constantFrom('1.7.0.24', ''),
    Product: fc.constantFrom('elkeid-agent', ''),
  });
  fc.assert(
    fc.property(
      header,
      fc.array(fc.tuple(record, fc.option(recordExtra, { nil: undefined })), { maxLength: 8 }),
      fc.array(fc.tuple(fc.nat(), fc.option(unknown, { nil: undefined })), { minLength: 20, maxLength: 20 }),
      fc.option(fc.string({ maxLength: 10 }), { nil: undefined }),
      (h, records, order, secondHostname) => {
        // Records, each perhaps with an extra field inside it.
        const parts: { field: number; bytes: Uint8Array }[] = records.map(([rec, extra]) => {
          const body = Buffer.concat([grpc.Record.encode(rec).finish(), extra ?? new Uint8Array(0)]);
          return {
            field: 1,
            bytes: protobuf.Writer.create()
              .uint32((1 << 3) | 2)
              .bytes(body)
              .finish(),
          };
        });
        parts.push(...fieldsOf(grpc.RawData.encode({ ...h, Data: [] }).finish()));
        if (secondHostname !== undefined) {
          // A second Hostname, later than the first: protobufjs keeps the last.
          parts.push(...fieldsOf(grpc.RawData.encode({ Hostname: secondHostname }).finish()));
        }
        // Shuffle, keeping each field number's own order (repeated fields stay in order).
        const shuffled = parts.map((p, i) => ({ p, key: order[i % order.length]![0] + i / 1000 }));
        shuffled.sort((a, b) => a.key - b.key);
        const slots = new Map<number, Uint8Array[]>();
        for (const p of parts) slots.set(p.field, [...(slots.get(p.field) ?? []), p.bytes]);
        const wire: Uint8Array[] = [];
        for (const [i, { p }] of shuffled.entries()) {
          wire.push(slots.get(p.field)!.shift()!);
          const extra = order[i % order.length]![1];
          if (extra) wire.push(extra);
        }
        assertSetOfWire(Buffer.concat(wire), 1_765_000_000_123, 'tag', 'gw-1', 1);
      },
    ),
    { numRuns: 300 },
  );
});

test('readRawWire refuses a field that runs past the message instead of reading beyond it', () => {
  const bytes = grpc.RawData.encode({
    AgentID: 'a',
    Data: [{ DataType: 1, Body: Buffer.alloc(50) }],
  }).finish();
  assert.throws(() => readRawWire(bytes.subarray(0, 30)), /beyond the message|truncated/);
});
