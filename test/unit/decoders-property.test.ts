/**
 * Property tests over the decoders that see bytes from (possibly compromised) agents:
 * Item bodies, RawData and the snappy-framed message path. They return a value or throw a typed
 * error; they never poison prototypes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeItem, encodeItem } from '../../gateway/agent/item.js';
import { decompress } from '../../gateway/grpc/codecs.js';
import { encodeSnappyFrames } from '../../gateway/grpc/snappy-framing.js';
import { GrpcError } from '../../gateway/grpc/status.js';
import { grpc } from '../../proto/gen/elkeid.js';
import { buildMqRecords } from '../../workers/mqdata.js';

test('decodeItem: any bytes decode to a null-prototype map or throw an Error', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      try {
        const out = decodeItem(bytes);
        assert.equal(Object.getPrototypeOf(out), null);
      } catch (err) {
        assert.ok(err instanceof Error);
      }
    }),
    { numRuns: 5000 },
  );
});

test('decodeItem round-trips any string map, including __proto__ and constructor keys', () => {
  fc.assert(
    fc.property(
      fc.dictionary(
        fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', 'prototype')),
        fc.string(),
      ),
      (fields) => {
        const decoded = decodeItem(encodeItem(fields));
        assert.deepEqual({ ...decoded }, { ...fields });
        assert.equal(({} as Record<string, unknown>).polluted, undefined);
      },
    ),
    { numRuns: 2000 },
  );
});

test('RawData decode + MQData build: any bytes give records or an Error, never a crash', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1024 }), (bytes) => {
      let raw: grpc.RawData;
      try {
        raw = grpc.RawData.decode(bytes);
      } catch (err) {
        assert.ok(err instanceof Error);
        return;
      }
      const recs = buildMqRecords(raw, Date.now());
      assert.equal(recs.length, raw.Data.length);
      for (const r of recs) grpc.MQData.decode(r.value);
    }),
    { numRuns: 5000 },
  );
});

test('snappy decompress: mutated frames decode or fail with a GrpcError status', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 2048 }),
      fc.nat(),
      fc.integer({ min: 0, max: 255 }),
      (data, at, byte) => {
        const framed = Buffer.from(encodeSnappyFrames(data));
        framed[at % framed.length] = byte;
        try {
          decompress('snappy', framed, 1 << 20);
        } catch (err) {
          assert.ok(err instanceof GrpcError, String(err));
        }
      },
    ),
    { numRuns: 3000 },
  );
});
