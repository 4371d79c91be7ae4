/** The one-block LZ4 frame of a record batch (codecs.ts `lz4OneBlockFrame`). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { compressFrameSync, compressSync, decompressFrameSync } from 'lz4-napi';
import { lz4OneBlockFrame } from '../../workers/kafka/codecs.js';

const compressible = (n: number) =>
  Buffer.from('agent 4f1c host web-12 exe /usr/bin/bash '.repeat(Math.ceil(n / 42))).subarray(0, n);

test('header checksums equal lz4-napi’s own frame headers (FLG 0x60; BD 256 KiB and 4 MiB)', () => {
  for (const [n, bd] of [
    [100_000, 0x50],
    [5 * 1024 * 1024, 0x70],
  ] as const) {
    const theirs = compressFrameSync(compressible(n));
    assert.equal(theirs[5], bd, `lz4-napi's BD for ${n} bytes`);
    // Ours for an input of the same block size class.
    const input = compressible(bd === 0x70 ? 3 * 1024 * 1024 : n);
    const ours = lz4OneBlockFrame(input, compressSync(input));
    assert.deepEqual(ours.subarray(0, 7), theirs.subarray(0, 7));
  }
});

test('every size class, compressible or not, decodes with lz4_flex’s frame reader to the input', () => {
  for (const n of [
    0,
    1,
    1000,
    64 * 1024,
    64 * 1024 + 1,
    240_000,
    1024 * 1024,
    1024 * 1024 + 7,
    4 * 1024 * 1024,
  ]) {
    for (const input of [compressible(n), randomBytes(n)]) {
      const frame = lz4OneBlockFrame(input, compressSync(input));
      assert.ok(decompressFrameSync(frame).equals(input), `${n} bytes`);
      const bd = frame[5]!;
      const max = 1 << (8 + 2 * ((bd >> 4) & 7));
      assert.ok(input.length <= max, `BD ${bd.toString(16)} holds ${n} bytes`);
      assert.ok(n <= 64 * 1024 || input.length > max / 4, `the smallest block size for ${n} bytes`);
    }
  }
  // Incompressible input is stored as it is: the block size's high bit set.
  const noise = randomBytes(5000);
  const stored = lz4OneBlockFrame(noise, compressSync(noise));
  assert.equal(stored.readUInt32LE(7), (0x80000000 | 5000) >>> 0);
  assert.throws(() => lz4OneBlockFrame(Buffer.alloc(4 * 1024 * 1024 + 1), Buffer.alloc(8)), /4 MiB/);
});
