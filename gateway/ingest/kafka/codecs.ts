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
 *   decodes: FLG 0x60 (version 1, independent blocks, no checksums, no content size), BD 0x70
 *   (4 MiB blocks; Kafka reads 64 KiB–4 MiB). The frame is written here around lz4-napi's
 *   (lz4_flex) block compressor, one block per 4 MiB of input: its own frame encoder costs about
 *   twice as much per call, which at agent rates (many small batches) was a third of a worker's
 *   CPU (bench:ingest --profile, paced).
 * - zstd: standard zstd frames, level 3 (Kafka's default `compression.zstd.level`), via
 *   @mongodb-js/zstd (libzstd).
 */
import { compress as zstdCompress, decompress as zstdDecompress } from '@mongodb-js/zstd';
import kafkajs from 'kafkajs';
import { decompressFrame, compress as lz4Block, compressSync as lz4BlockSync } from 'lz4-napi';
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

/** The LZ4 frame magic number (little-endian on the wire). */
const LZ4_MAGIC = 0x184d2204;
const LZ4_FLG = 0x60;
const LZ4_BD = 0x70;
const LZ4_BLOCK_MAX = 4 * 1024 * 1024;
const LZ4_UNCOMPRESSED_BIT = 0x80000000;

/** XXH32 (seed 0) of a few bytes: the frame header checksum is its second byte. */
export function xxh32Small(bytes: Uint8Array): number {
  const P1 = 2654435761;
  const P3 = 3266489917;
  const P5 = 374761393;
  let h = (P5 + bytes.length) >>> 0;
  for (const b of bytes) {
    h = (h + Math.imul(b, P5)) >>> 0;
    h = Math.imul((h << 11) | (h >>> 21), P1) >>> 0;
  }
  h = Math.imul(h ^ (h >>> 15), 2246822519) >>> 0;
  h = Math.imul(h ^ (h >>> 13), P3) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** The 7-byte frame header: magic, FLG, BD, HC = (xxh32(FLG, BD) >> 8) & 0xff. */
export const LZ4_FRAME_HEADER = (() => {
  const h = Buffer.alloc(7);
  h.writeUInt32LE(LZ4_MAGIC, 0);
  h[4] = LZ4_FLG;
  h[5] = LZ4_BD;
  h[6] = (xxh32Small(h.subarray(4, 6)) >>> 8) & 0xff;
  return h;
})();
const LZ4_END_MARK = Buffer.alloc(4);

/** One frame data block: its size word, then the compressed bytes, or the input as it is when that is not smaller. */
function lz4FrameBlock(input: Buffer, prefixed: Buffer): Buffer[] {
  // lz4-napi's block output starts with the uncompressed size (u32 LE); the frame does not want it.
  const block = prefixed.subarray(4);
  const size = Buffer.allocUnsafe(4);
  if (block.length >= input.length) {
    size.writeUInt32LE((input.length | LZ4_UNCOMPRESSED_BIT) >>> 0, 0);
    return [size, input];
  }
  size.writeUInt32LE(block.length, 0);
  return [size, block];
}

function lz4Chunks(input: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < input.length; at += LZ4_BLOCK_MAX) out.push(input.subarray(at, at + LZ4_BLOCK_MAX));
  return out;
}

/** An LZ4 frame of `input` (the header above, blocks of up to 4 MiB, end mark). */
export function lz4FrameSync(input: Buffer): Buffer {
  const parts: Buffer[] = [LZ4_FRAME_HEADER];
  for (const chunk of lz4Chunks(input)) parts.push(...lz4FrameBlock(chunk, lz4BlockSync(chunk)));
  parts.push(LZ4_END_MARK);
  return Buffer.concat(parts);
}

/** `lz4FrameSync` on the thread pool. */
export async function lz4Frame(input: Buffer): Promise<Buffer> {
  const chunks = lz4Chunks(input);
  const blocks = await Promise.all(chunks.map((c) => lz4Block(c)));
  const parts: Buffer[] = [LZ4_FRAME_HEADER];
  for (const [i, chunk] of chunks.entries()) parts.push(...lz4FrameBlock(chunk, blocks[i]!));
  parts.push(LZ4_END_MARK);
  return Buffer.concat(parts);
}

const lz4Codec: KafkaCodec = {
  compress: (encoder) => lz4Frame(encoder.buffer),
  decompress: (buffer) => decompressFrame(buffer),
  compressSync: (input) => lz4FrameSync(input),
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
