/**
 * The snappy framing reader against fixtures written by hand from framing_format.txt (see
 * test/helpers/snappy-spec.ts), not produced by our own encoder; and the encoder against the
 * same spec-level walk.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import snappy from 'snappy';
import {
  decodeSnappyFrames,
  encodeSnappyFrames,
  maskedCrc32c,
  STREAM_IDENTIFIER,
} from '../../gateway/grpc/snappy-framing.js';
import { GrpcError, Status } from '../../gateway/grpc/status.js';
import {
  SPEC_STREAM_ID,
  specChunk,
  specCompressedChunk,
  specCopy1,
  specLiteral,
  specLiteralBlock,
  specMask,
  specMaskedCrc,
  specUncompressedChunk,
  specVarint,
} from '../helpers/snappy-spec.js';

const MAX = 10 * 1024 * 1024;

function expectStatus(fn: () => unknown, code: number, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof GrpcError, `expected a GrpcError, got ${String(err)}`);
    assert.equal(err.code, code, `status ${err.code} (${err.message})`);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

describe('masked CRC-32C', () => {
  test('known vector: crc32c("123456789") = 0xe3069283, masked per the spec', () => {
    const c = crc32c(Buffer.from('123456789')) >>> 0;
    assert.equal(c, 0xe3069283);
    // Written out: rotr15(0xe3069283) = 0x2507c60d; + 0xa282ead8 = 0xc78ab0e5 (mod 2^32).
    assert.equal(specMask(c), 0xc78ab0e5);
    assert.equal(maskedCrc32c(Buffer.from('123456789')), 0xc78ab0e5);
  });

  test('the gateway mask equals the spec formula on random data', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        assert.equal(maskedCrc32c(data), specMaskedCrc(data));
      }),
      { numRuns: 200 },
    );
  });
});

describe('decodeSnappyFrames on hand-built streams', () => {
  test('the stream identifier constant is ff 06 00 00 "sNaPpY"', () => {
    assert.deepEqual(STREAM_IDENTIFIER, SPEC_STREAM_ID);
  });

  test('uncompressed chunk (0x01)', () => {
    const data = Buffer.from('hello, agent');
    const input = Buffer.concat([SPEC_STREAM_ID, specUncompressedChunk(data)]);
    assert.deepEqual(decodeSnappyFrames(input, MAX), data);
  });

  test('compressed chunk (0x00) with a literal-only block', () => {
    const data = Buffer.from('a literal block of some bytes');
    const block = specLiteralBlock(data);
    assert.equal(block[0], data.length, 'varint preamble');
    assert.equal(block[1], (data.length - 1) << 2, 'literal tag');
    const input = Buffer.concat([SPEC_STREAM_ID, specCompressedChunk(block, data)]);
    assert.deepEqual(decodeSnappyFrames(input, MAX), data);
  });

  test('compressed chunk with a literal and a back-reference copy', () => {
    const expected = Buffer.from('abcabcabcabc');
    // varint 12, literal "abc", copy length 9 from offset 3 (overlapping copy).
    const block = Buffer.concat([specVarint(12), specLiteral(Buffer.from('abc')), specCopy1(9, 3)]);
    assert.deepEqual(block, Buffer.from([12, 0x08, 0x61, 0x62, 0x63, 0x15, 0x03]));
    const input = Buffer.concat([SPEC_STREAM_ID, specCompressedChunk(block, expected)]);
    assert.deepEqual(decodeSnappyFrames(input, MAX), expected);
  });

  test('long literal tags (1- and 2-byte lengths) decode', () => {
    for (const n of [60, 61, 255, 256, 257, 4096, 65536]) {
      const data = randomBytes(n);
      const input = Buffer.concat([SPEC_STREAM_ID, specCompressedChunk(specLiteralBlock(data), data)]);
      assert.deepEqual(decodeSnappyFrames(input, MAX), data, `literal of ${n} bytes`);
    }
  });

  test('padding (0xfe) and skippable chunks (0x80..0xfd) are ignored', () => {
    const a = Buffer.from('first ');
    const b = Buffer.from('second');
    const input = Buffer.concat([
      SPEC_STREAM_ID,
      specChunk(0xfe, Buffer.alloc(7)),
      specUncompressedChunk(a),
      specChunk(0x80, Buffer.from('skip me')),
      specChunk(0xfd, Buffer.alloc(0)),
      specChunk(0xfe, Buffer.alloc(0)),
      specCompressedChunk(specLiteralBlock(b), b),
      specChunk(0x9a, randomBytes(100)),
    ]);
    assert.deepEqual(decodeSnappyFrames(input, MAX), Buffer.concat([a, b]));
  });

  test('a repeated stream identifier mid-stream is allowed (concatenated streams)', () => {
    const a = Buffer.from('one');
    const b = Buffer.from('two');
    const input = Buffer.concat([
      SPEC_STREAM_ID,
      specUncompressedChunk(a),
      SPEC_STREAM_ID,
      specUncompressedChunk(b),
    ]);
    assert.deepEqual(decodeSnappyFrames(input, MAX), Buffer.from('onetwo'));
  });

  test('reserved unskippable chunks (0x02..0x7f) are refused', () => {
    for (const type of [0x02, 0x03, 0x40, 0x7f]) {
      const input = Buffer.concat([SPEC_STREAM_ID, specChunk(type, Buffer.from('x'))]);
      expectStatus(() => decodeSnappyFrames(input, MAX), Status.INTERNAL, /unskippable/);
    }
  });

  test('a stream without the stream identifier is refused', () => {
    const data = Buffer.from('no identifier');
    expectStatus(() => decodeSnappyFrames(specUncompressedChunk(data), MAX), Status.INTERNAL, /identifier/);
    expectStatus(
      () => decodeSnappyFrames(specCompressedChunk(specLiteralBlock(data), data), MAX),
      Status.INTERNAL,
      /identifier/,
    );
    // Padding first and then data still lacks an identifier.
    expectStatus(
      () =>
        decodeSnappyFrames(
          Buffer.concat([specChunk(0xfe, Buffer.alloc(2)), specUncompressedChunk(data)]),
          MAX,
        ),
      Status.INTERNAL,
    );
  });

  test('a wrong stream identifier body is refused', () => {
    const input = Buffer.concat([
      specChunk(0xff, Buffer.from('sNaPpX')),
      specUncompressedChunk(Buffer.from('x')),
    ]);
    expectStatus(() => decodeSnappyFrames(input, MAX), Status.INTERNAL, /identifier/);
  });

  test('a bad CRC is refused with INTERNAL (uncompressed and compressed chunks)', () => {
    const data = Buffer.from('checksummed');
    const good = specMaskedCrc(data);
    const bad = Buffer.concat([SPEC_STREAM_ID, specUncompressedChunk(data, good ^ 1)]);
    expectStatus(() => decodeSnappyFrames(bad, MAX), Status.INTERNAL, /checksum/);
    // The unmasked CRC is also wrong: the mask is mandatory.
    const unmasked = Buffer.concat([SPEC_STREAM_ID, specUncompressedChunk(data, crc32c(data))]);
    expectStatus(() => decodeSnappyFrames(unmasked, MAX), Status.INTERNAL, /checksum/);
    // Compressed chunk whose CRC was computed over the compressed bytes instead of the data.
    const block = specLiteralBlock(data);
    const wrong = Buffer.concat([SPEC_STREAM_ID, specCompressedChunk(block, block)]);
    expectStatus(() => decodeSnappyFrames(wrong, MAX), Status.INTERNAL, /checksum/);
  });

  test('truncated chunks are refused', () => {
    const data = Buffer.from('truncate me please');
    const whole = Buffer.concat([SPEC_STREAM_ID, specUncompressedChunk(data)]);
    for (let cut = SPEC_STREAM_ID.length + 1; cut < whole.length; cut++) {
      expectStatus(() => decodeSnappyFrames(whole.subarray(0, cut), MAX), Status.INTERNAL);
    }
    // A stream identifier cut short.
    for (let cut = 1; cut < SPEC_STREAM_ID.length; cut++) {
      expectStatus(() => decodeSnappyFrames(SPEC_STREAM_ID.subarray(0, cut), MAX), Status.INTERNAL);
    }
    // A data chunk too short to hold its CRC.
    const short = Buffer.concat([SPEC_STREAM_ID, specChunk(0x01, Buffer.from([1, 2, 3]))]);
    expectStatus(() => decodeSnappyFrames(short, MAX), Status.INTERNAL);
  });

  test('a corrupt block is refused with INTERNAL', () => {
    const data = Buffer.from('0123456789');
    // The preamble claims 10 bytes but the literal only brings 5.
    const block = Buffer.concat([specVarint(10), specLiteral(data.subarray(0, 5))]);
    const input = Buffer.concat([SPEC_STREAM_ID, specCompressedChunk(block, data)]);
    expectStatus(() => decodeSnappyFrames(input, MAX), Status.INTERNAL);
    // A copy reaching before the start of the output.
    const badCopy = Buffer.concat([specVarint(12), specLiteral(Buffer.from('ab')), specCopy1(10, 5)]);
    expectStatus(
      () => decodeSnappyFrames(Buffer.concat([SPEC_STREAM_ID, specCompressedChunk(badCopy, data)]), MAX),
      Status.INTERNAL,
    );
    // A preamble varint that never ends.
    const endless = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expectStatus(
      () => decodeSnappyFrames(Buffer.concat([SPEC_STREAM_ID, specCompressedChunk(endless, data)]), MAX),
      Status.INTERNAL,
    );
  });

  test('an uncompressed chunk over 65536 bytes of data is refused', () => {
    const data = randomBytes(65537);
    const input = Buffer.concat([SPEC_STREAM_ID, specUncompressedChunk(data)]);
    expectStatus(() => decodeSnappyFrames(input, MAX), Status.INTERNAL, /65536/);
  });

  test('multiple 64 KiB chunks, compressed and uncompressed, concatenate in order', () => {
    const a = randomBytes(65536);
    const b = randomBytes(65536);
    const c = randomBytes(65536);
    const d = randomBytes(1234);
    const input = Buffer.concat([
      SPEC_STREAM_ID,
      specUncompressedChunk(a),
      specCompressedChunk(specLiteralBlock(b), b),
      specUncompressedChunk(c),
      specCompressedChunk(specLiteralBlock(d), d),
    ]);
    const out = decodeSnappyFrames(input, MAX);
    assert.equal(out.length, 3 * 65536 + 1234);
    assert.deepEqual(out, Buffer.concat([a, b, c, d]));
  });

  test('decoded size over the limit is RESOURCE_EXHAUSTED before inflating', () => {
    // The block's preamble claims 60000 bytes; its body is garbage. If the reader inflated first
    // it would fail with INTERNAL (corrupt); refusing on the preamble gives RESOURCE_EXHAUSTED.
    const block = Buffer.concat([specVarint(60000), Buffer.from([0x00, 0x41])]);
    const input = Buffer.concat([SPEC_STREAM_ID, specCompressedChunk(block, Buffer.alloc(0))]);
    expectStatus(() => decodeSnappyFrames(input, 1000), Status.RESOURCE_EXHAUSTED);
    // The same stream under a large limit is just corrupt.
    expectStatus(() => decodeSnappyFrames(input, MAX), Status.INTERNAL);
  });

  test('the limit is on the total of all chunks, and on uncompressed chunks too', () => {
    const part = randomBytes(800);
    const two = Buffer.concat([SPEC_STREAM_ID, specUncompressedChunk(part), specUncompressedChunk(part)]);
    expectStatus(() => decodeSnappyFrames(two, 1000), Status.RESOURCE_EXHAUSTED);
    assert.equal(decodeSnappyFrames(two, 1600).length, 1600, 'exactly at the limit is fine');
    const mixed = Buffer.concat([
      SPEC_STREAM_ID,
      specUncompressedChunk(part),
      specCompressedChunk(specLiteralBlock(part), part),
    ]);
    expectStatus(() => decodeSnappyFrames(mixed, 1599), Status.RESOURCE_EXHAUSTED);
  });

  test('random bytes only ever fail with a GrpcError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 512 }),
          // Start with a valid identifier so the chunk walk is reached.
          fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.concat([SPEC_STREAM_ID, b])),
        ),
        (bytes) => {
          try {
            decodeSnappyFrames(Buffer.from(bytes), 4096);
          } catch (err) {
            assert.ok(err instanceof GrpcError, `untyped error: ${String(err)}`);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

/** Walks an encoded stream by the spec alone and returns the data (CRCs checked by hand). */
function specWalk(stream: Buffer): Buffer {
  assert.deepEqual(stream.subarray(0, 10), SPEC_STREAM_ID, 'starts with the stream identifier');
  const out: Buffer[] = [];
  let off = 10;
  while (off < stream.length) {
    const type = stream[off]!;
    const len = stream[off + 1]! | (stream[off + 2]! << 8) | (stream[off + 3]! << 16);
    const body = stream.subarray(off + 4, off + 4 + len);
    assert.equal(body.length, len, 'chunk within the stream');
    off += 4 + len;
    const crc = body.readUInt32LE(0);
    let data: Buffer;
    if (type === 0x01) data = body.subarray(4);
    else if (type === 0x00) data = snappy.uncompressSync(body.subarray(4), { asBuffer: true }) as Buffer;
    else assert.fail(`encoder wrote chunk type 0x${type.toString(16)}`);
    assert.ok(data.length <= 65536, 'at most 64 KiB of data per chunk');
    assert.equal(crc, specMaskedCrc(data), 'masked CRC-32C of the uncompressed data');
    out.push(data);
  }
  return Buffer.concat(out);
}

describe('encodeSnappyFrames', () => {
  const data = fc.oneof(
    fc.uint8Array({ maxLength: 2048 }),
    fc.uint8Array({ minLength: 60000, maxLength: 200_000 }),
    // Compressible input, so compressed chunks are produced as well.
    fc
      .tuple(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.integer({ min: 1, max: 5000 }))
      .map(([unit, times]) => Buffer.concat(Array.from({ length: times }, () => unit))),
  );

  test('round trip through decodeSnappyFrames and the spec walk', () => {
    fc.assert(
      fc.property(data, (bytes) => {
        const encoded = encodeSnappyFrames(bytes);
        assert.deepEqual(decodeSnappyFrames(encoded, MAX), Buffer.from(bytes));
        assert.deepEqual(specWalk(encoded), Buffer.from(bytes));
      }),
      { numRuns: 250 },
    );
  });

  test('compressible data is written as compressed chunks (0x00)', () => {
    const encoded = encodeSnappyFrames(Buffer.alloc(100_000, 0x61));
    assert.equal(encoded[10], 0x00, 'first data chunk compressed');
    assert.ok(encoded.length < 10_000);
    assert.equal(specWalk(encoded).length, 100_000);
  });
});
