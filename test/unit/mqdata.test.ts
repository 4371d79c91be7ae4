import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import protobuf from 'protobufjs/minimal.js';
import { encodeItem } from '../../gateway/agent/item.js';
import { grpc } from '../../proto/gen/elkeid.js';
import { encodeRecordSet } from '../../workers/kafka/record-batch.js';
import { buildMqRecords } from '../../workers/mqdata.js';
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
      (r, receivedAt, tag, seq0, gw) => {
        const raw = grpc.RawData.decode(grpc.RawData.encode(r).finish());
        const set = buildRecordSet(raw, receivedAt, tag, gw, seq0);
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
      },
    ),
    { numRuns: 400 },
  );
});
