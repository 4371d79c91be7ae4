/**
 * Our LZ4 frame writer (gateway/ingest/kafka/codecs.ts) around lz4-napi's block compressor: the
 * header checksum is XXH32's as the frame format defines it (checked against lz4-napi's own
 * frame header and a published XXH32 vector), and lz4-napi's frame decoder reads back every
 * input: empty, compressible, incompressible (stored blocks) and larger than one 4 MiB block.
 * The real broker and the Java client read these frames in test/integration/kafka-producer.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { compressFrameSync, decompressFrameSync } from 'lz4-napi';
import {
  codecs,
  LZ4_FRAME_HEADER,
  lz4Frame,
  lz4FrameSync,
  xxh32Small,
} from '../../gateway/ingest/kafka/codecs.js';

test('xxh32Small: published vectors and the header byte lz4-napi writes for 64 KiB blocks', () => {
  assert.equal(xxh32Small(Buffer.alloc(0)), 0x02cc5d05);
  assert.equal(xxh32Small(Buffer.from('abc')), 0x32d153ff);
  const theirs = compressFrameSync(Buffer.from('x'.repeat(100)));
  assert.deepEqual([...theirs.subarray(0, 5)], [0x04, 0x22, 0x4d, 0x18, 0x60]);
  assert.equal((xxh32Small(theirs.subarray(4, 6)) >>> 8) & 0xff, theirs[6]);
  assert.deepEqual([...LZ4_FRAME_HEADER], [0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, LZ4_FRAME_HEADER[6]]);
});

test('lz4 frames round-trip through lz4-napi: empty, compressible, incompressible, several blocks', async () => {
  const text = Buffer.from('exe=/usr/bin/bash argv=-c ls pid=1234 '.repeat(4000));
  const inputs = [
    Buffer.alloc(0),
    Buffer.from('a'),
    text,
    randomBytes(70_000),
    Buffer.concat([randomBytes(3 << 20), text, text]),
  ];
  for (const input of inputs) {
    const frame = lz4FrameSync(input);
    assert.deepEqual(decompressFrameSync(frame), input, `${input.length} bytes`);
    assert.deepEqual(await lz4Frame(input), frame, 'async and sync write the same bytes');
  }
  assert.ok(lz4FrameSync(text).length < text.length / 4, 'text compresses');
  const random = randomBytes(10_000);
  // A stored block: header + size word (high bit set) + the bytes + end mark.
  assert.equal(lz4FrameSync(random).length, 7 + 4 + random.length + 4);
  const codec = codecs[3 as keyof typeof codecs];
  assert.deepEqual(await codec.decompress(await codec.compress({ buffer: text })), text);
});
