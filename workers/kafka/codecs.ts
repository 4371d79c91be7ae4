/**
 * snappy, lz4 and zstd for kafkajs, which ships only gzip (the others throw
 * KafkaJSNotImplemented until a codec is put into `CompressionCodecs`).
 *
 * Each codec writes what Kafka's own Java client writes for a magic v2 record batch, so the
 * broker (which decompresses to validate every produced batch) and Java consumers accept it;
 * test/integration/kafka-producer.test.ts proves this both ways against a real broker and the
 * Java client.
 *
 * - snappy: the xerial snappy-java stream (`SnappyOutputStream`, what
 *   `org.apache.kafka.common.compress.SnappyCompression` uses): the 16-byte header
 *   (`82 'SNAPPY' 00`, int32 BE version 1, int32 BE compatible version 1), then for each 32 KiB
 *   of input an int32 BE length and one raw snappy block (the native `snappy` package).
 *   Decompression also accepts concatenated streams, and a bare snappy block (what sarama and
 *   kafkajs-snappy write; xerial's `SnappyInputStream` accepts that too).
 * - lz4: the standard LZ4 frame format (`KafkaLZ4BlockOutputStream` with the correct header
 *   checksum, as for all v1+ messages) with independent blocks, the only kind Kafka's reader
 *   decodes: FLG 0x60 (version 1, independent blocks, no checksums, no content size). A batch
 *   of up to 4 MiB is one block (`lz4OneBlockFrame`, the smallest block size that holds it);
 *   a larger one is lz4-napi's (lz4_flex) frame of several. Kafka reads 64 KiB–4 MiB blocks.
 * - zstd: standard zstd frames, level 3 (Kafka's default `compression.zstd.level`), via
 *   @mongodb-js/zstd (libzstd).
 */
import { compress as zstdCompress, decompress as zstdDecompress } from '@mongodb-js/zstd';
import kafkajs from 'kafkajs';
import { compress, compressFrame, compressFrameSync, compressSync, decompressFrame } from 'lz4-napi';
import snappy from 'snappy';

const { CompressionCodecs, CompressionTypes } = kafkajs;

/** The shape kafkajs expects from `CompressionCodecs[type]()`. */
export interface KafkaCodec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
  /**
   * The same bytes as `compress`, on the calling thread: no thread-pool hop, which costs more
   * than compressing a small batch. kafkajs never calls it; our Produce encoder does when the
   * producer allows it (worker threads, see producer.ts `syncCompression`).
   */
  compressSync?: (input: Buffer) => Buffer;
}

// --- snappy (xerial framing) ---------------------------------------------------------------

/** `SnappyCodec.MAGIC_HEADER` of snappy-java. */
export const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_SIZE = 16;
const XERIAL_VERSION = 1;
const XERIAL_MIN_COMPATIBLE_VERSION = 1;
/** snappy-java's default `SnappyOutputStream` block size, the one Kafka uses. */
const XERIAL_BLOCK_SIZE = 32 * 1024;

function xerialHeader(): Buffer {
  const header = Buffer.alloc(XERIAL_HEADER_SIZE);
  XERIAL_MAGIC.copy(header, 0);
  header.writeInt32BE(XERIAL_VERSION, 8);
  header.writeInt32BE(XERIAL_MIN_COMPATIBLE_VERSION, 12);
  return header;
}

function hasXerialMagic(buf: Buffer, at: number): boolean {
  return buf.length - at >= XERIAL_MAGIC.length && XERIAL_MAGIC.equals(buf.subarray(at, at + 8));
}

async function snappyBlock(block: Buffer): Promise<Buffer> {
  return (await snappy.compress(block)) as Buffer;
}

async function snappyUnblock(block: Buffer): Promise<Buffer> {
  return (await snappy.uncompress(block, { asBuffer: true })) as Buffer;
}

/** Compresses like snappy-java's `SnappyOutputStream` (Kafka's snappy for record batches). */
export async function xerialSnappyCompress(input: Buffer): Promise<Buffer> {
  const blocks: Promise<Buffer>[] = [];
  for (let at = 0; at < input.length; at += XERIAL_BLOCK_SIZE) {
    blocks.push(snappyBlock(input.subarray(at, at + XERIAL_BLOCK_SIZE)));
  }
  const parts: Buffer[] = [xerialHeader()];
  for (const block of await Promise.all(blocks)) {
    const len = Buffer.allocUnsafe(4);
    len.writeInt32BE(block.length, 0);
    parts.push(len, block);
  }
  return Buffer.concat(parts);
}

/** `xerialSnappyCompress` on the calling thread (the same bytes). */
export function xerialSnappyCompressSync(input: Buffer): Buffer {
  const parts: Buffer[] = [xerialHeader()];
  for (let at = 0; at < input.length; at += XERIAL_BLOCK_SIZE) {
    const block = snappy.compressSync(input.subarray(at, at + XERIAL_BLOCK_SIZE)) as Buffer;
    const len = Buffer.allocUnsafe(4);
    len.writeInt32BE(block.length, 0);
    parts.push(len, block);
  }
  return Buffer.concat(parts);
}

/** Decompresses a xerial snappy stream (or several back to back), or a bare snappy block. */
export async function xerialSnappyDecompress(input: Buffer): Promise<Buffer> {
  if (!hasXerialMagic(input, 0)) return snappyUnblock(input);
  const blocks: Buffer[] = [];
  let at = 0;
  while (at < input.length) {
    if (hasXerialMagic(input, at)) {
      if (input.length - at < XERIAL_HEADER_SIZE) throw new Error('snappy: truncated xerial header');
      const compatible = input.readInt32BE(at + 12);
      if (compatible > XERIAL_VERSION) {
        throw new Error(`snappy: unsupported xerial stream version (compatible version ${compatible})`);
      }
      at += XERIAL_HEADER_SIZE;
      continue;
    }
    if (input.length - at < 4) throw new Error('snappy: truncated xerial block length');
    const size = input.readInt32BE(at);
    at += 4;
    if (size < 0 || size > input.length - at) throw new Error(`snappy: bad xerial block length ${size}`);
    blocks.push(input.subarray(at, at + size));
    at += size;
  }
  return Buffer.concat(await Promise.all(blocks.map(snappyUnblock)));
}

const snappyCodec: KafkaCodec = {
  compress: (encoder) => xerialSnappyCompress(encoder.buffer),
  decompress: (buffer) => xerialSnappyDecompress(buffer),
  compressSync: xerialSnappyCompressSync,
};

// --- lz4 (frame format) --------------------------------------------------------------------

/**
 * The LZ4 frame descriptors of one block: the largest block size (BD) that holds the input, and
 * its header checksum HC = (xxh32(FLG, BD) >> 8) & 0xff with FLG 0x60 (version 1, independent
 * blocks, no block or content checksum, no content size). test/unit/kafka-lz4-frame.test.ts
 * checks the checksums against lz4-napi's own frame headers.
 */
const LZ4_ONE_BLOCK_DESCRIPTORS: ReadonlyArray<readonly [maxBytes: number, bd: number, hc: number]> = [
  [64 * 1024, 0x40, 0x82],
  [256 * 1024, 0x50, 0xfb],
  [1024 * 1024, 0x60, 0x51],
  [4 * 1024 * 1024, 0x70, 0x73],
];
const LZ4_MAGIC = 0x184d2204;
const LZ4_FLG = 0x60;
/** The high bit of a block's size: the block is stored uncompressed. */
const LZ4_UNCOMPRESSED_BLOCK = 0x80000000;

/**
 * A record batch (at most 4 MiB) as an LZ4 frame of one block, from lz4-napi's size-prefixed
 * block. Why not lz4-napi's frame encoder: the same bytes but more CPU for a paced produce task's
 * 240 KB batch, 736 against 605 µs (medians of 6 alternating runs of 300 on Node 20; it stages the
 * input in its own block buffer), and lz4 is 8 % of a paced gateway's CPU samples on Node 24.
 * Kafka reads blocks up to 4 MiB.
 */
export function lz4OneBlockFrame(input: Buffer, sizedBlock: Buffer): Buffer {
  const d = LZ4_ONE_BLOCK_DESCRIPTORS.find(([max]) => input.length <= max);
  if (!d) throw new Error(`lz4: ${input.length} bytes do not fit one 4 MiB block`);
  const packed = sizedBlock.length - 4;
  const stored = input.length > 0 && packed >= input.length; // incompressible: kept as it is
  const body = input.length === 0 ? 0 : stored ? input.length : packed;
  const out = Buffer.allocUnsafe(7 + (body > 0 ? 4 + body : 0) + 4);
  out.writeUInt32LE(LZ4_MAGIC, 0);
  out[4] = LZ4_FLG;
  out[5] = d[1];
  out[6] = d[2];
  let at = 7;
  if (body > 0) {
    out.writeUInt32LE(stored ? (body | LZ4_UNCOMPRESSED_BLOCK) >>> 0 : body, at);
    at += 4;
    at += stored ? input.copy(out, at) : sizedBlock.copy(out, at, 4);
  }
  out.writeUInt32LE(0, at); // end mark
  return out;
}

const LZ4_ONE_BLOCK_MAX = 4 * 1024 * 1024;

const lz4Codec: KafkaCodec = {
  compress: async (encoder) =>
    encoder.buffer.length > LZ4_ONE_BLOCK_MAX
      ? compressFrame(encoder.buffer)
      : lz4OneBlockFrame(encoder.buffer, await compress(encoder.buffer)),
  decompress: (buffer) => decompressFrame(buffer),
  compressSync: (input) =>
    input.length > LZ4_ONE_BLOCK_MAX
      ? compressFrameSync(input)
      : lz4OneBlockFrame(input, compressSync(input)),
};

// --- zstd ----------------------------------------------------------------------------------
// @mongodb-js/zstd has no synchronous compress (and Node 20's zlib no zstd): always async.

/** Kafka's default `compression.zstd.level` (ZSTD_CLEVEL_DEFAULT). */
const ZSTD_LEVEL = 3;

const zstdCodec: KafkaCodec = {
  compress: (encoder) => zstdCompress(encoder.buffer, ZSTD_LEVEL),
  decompress: (buffer) => zstdDecompress(buffer),
};

// --- registration --------------------------------------------------------------------------

/** The codec objects by kafkajs compression type (for tests and direct use). */
export const codecs = {
  [CompressionTypes.Snappy]: snappyCodec,
  [CompressionTypes.LZ4]: lz4Codec,
  [CompressionTypes.ZSTD]: zstdCodec,
} as const;

/**
 * Puts snappy, lz4 and zstd into kafkajs' `CompressionCodecs`. Idempotent. kafkajs resolves its
 * codec table once per process (it is one module instance for the whole process), so this
 * affects every kafkajs client in it, producers and consumers alike.
 */
export function registerCodecs(): void {
  // kafkajs' typings declare the table with `() => any` entries; the runtime looks it up per
  // batch by calling the factory, so the factories return the shared codec objects.
  CompressionCodecs[CompressionTypes.Snappy] = () => snappyCodec;
  CompressionCodecs[CompressionTypes.LZ4] = () => lz4Codec;
  CompressionCodecs[CompressionTypes.ZSTD] = () => zstdCodec;
}
