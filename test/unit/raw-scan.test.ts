/**
 * The main thread's RawData scan (gateway/agent/raw-scan.ts) against protobufjs' decode, which
 * the ingest workers run on the same bytes: for any RawData the scan finds the same records,
 * data types, special records and header; for any bytes it accepts, protobufjs decodes too (a
 * message the gateway accepted never fails in a worker).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeHeader, scanRawData } from '../../gateway/agent/raw-scan.js';
import { isSpecialRecord } from '../../gateway/agent/special-records.js';
import { grpc } from '../../proto/gen/elkeid.js';
import { WireFormatError } from '../../workers/protobuf-wire.js';

const dataType = fc.oneof(
  fc.constantFrom(59, 1000, 1001, 1010, 2001, 5100, 8010),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
);
const record = fc.record({
  DataType: dataType,
  Timestamp: fc.integer({ min: 0, max: 2 ** 40 }),
  Body: fc.uint8Array({ maxLength: 64 }),
});
const rawData = fc.record({
  Data: fc.array(record, { maxLength: 12 }),
  AgentID: fc.string({ maxLength: 40 }),
  IntranetIPv4: fc.array(fc.string({ maxLength: 15 }), { maxLength: 3 }),
  ExtranetIPv6: fc.array(fc.string({ maxLength: 15 }), { maxLength: 2 }),
  Hostname: fc.string({ maxLength: 30 }),
  Version: fc.string({ maxLength: 10 }),
  Product: fc.string({ maxLength: 12 }),
});

test('scanRawData finds what protobufjs decodes: records, data types, special records, header', () => {
  fc.assert(
    fc.property(rawData, (props) => {
      const bytes = Buffer.from(grpc.RawData.encode(props).finish());
      const full = grpc.RawData.decode(bytes);
      const scan = scanRawData(bytes, isSpecialRecord);
      assert.equal(scan.count, full.Data.length);
      assert.deepEqual(
        scan.dataTypes,
        full.Data.map((r) => r.DataType),
      );
      const special = full.Data.filter((r) => isSpecialRecord(r.DataType ?? 0));
      assert.deepEqual(
        scan.special.map((r) => [r.DataType, Number(r.Timestamp), Buffer.from(r.Body ?? [])]),
        special.map((r) => [r.DataType, Number(r.Timestamp), Buffer.from(r.Body ?? [])]),
      );
      const header = decodeHeader(scan.header);
      assert.equal(header.Data.length, 0);
      for (const k of ['AgentID', 'Hostname', 'Version', 'Product'] as const)
        assert.equal(header[k], full[k]);
      assert.deepEqual(header.IntranetIPv4, full.IntranetIPv4);
      assert.deepEqual(header.ExtranetIPv6, full.ExtranetIPv6);
    }),
    { numRuns: 2000 },
  );
});

test('scanRawData: what it accepts protobufjs decodes; what it refuses is a WireFormatError', () => {
  const mutated = rawData.chain((props) => {
    const bytes = grpc.RawData.encode(props).finish();
    return fc.oneof(
      // truncated
      fc.integer({ min: 0, max: bytes.length }).map((n) => bytes.slice(0, n)),
      // one byte changed
      fc
        .tuple(fc.nat({ max: Math.max(0, bytes.length - 1) }), fc.integer({ min: 0, max: 255 }))
        .map(([at, v]) => {
          const b = Uint8Array.from(bytes);
          if (b.length > 0) b[at] = v;
          return b;
        }),
      fc.uint8Array({ maxLength: 64 }),
    );
  });
  fc.assert(
    fc.property(mutated, (bytes) => {
      const buf = Buffer.from(bytes);
      let scanned = false;
      try {
        const scan = scanRawData(buf, isSpecialRecord);
        decodeHeader(scan.header);
        scanned = true;
      } catch (err) {
        assert.ok(err instanceof Error, String(err));
      }
      if (scanned) assert.doesNotThrow(() => grpc.RawData.decode(buf));
    }),
    { numRuns: 5000 },
  );
});

test('scanRawData refuses a length past the end, a 0 field number and a wrong wire type', () => {
  const ok = Buffer.from(
    grpc.RawData.encode({ AgentID: 'a', Data: [{ DataType: 1000, Body: Uint8Array.of(1) }] }).finish(),
  );
  assert.throws(() => scanRawData(ok.subarray(0, ok.length - 1), isSpecialRecord), WireFormatError);
  assert.throws(() => scanRawData(Buffer.from([0x00, 0x00]), isSpecialRecord), WireFormatError);
  // field 2 (AgentID) as a varint
  assert.throws(() => scanRawData(Buffer.from([0x10, 0x01]), isSpecialRecord), WireFormatError);
  // a 5-byte tag inside a record whose last byte overflows 32 bits (protobufjs: invalid tag encoding)
  const longTag = Uint8Array.from([
    10, 20, 253, 128, 128, 128, 16, 16, 128, 128, 128, 193, 189, 17, 26, 6, 0, 0, 0, 0, 0, 0,
  ]);
  assert.throws(() => grpc.RawData.decode(longTag));
  assert.throws(() => scanRawData(Buffer.from(longTag), isSpecialRecord), WireFormatError);
  // a record whose DataType is length-delimited
  assert.throws(
    () => scanRawData(Buffer.from([0x0a, 0x03, 0x0a, 0x01, 0x00]), isSpecialRecord),
    WireFormatError,
  );
});
