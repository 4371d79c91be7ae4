/**
 * The snappy framing (stream) format, as golang/snappy's NewBufferedWriter/NewReader speak it,
 * which is what Elkeid agents put in every gRPC message under `grpc-encoding: snappy`
 * (docs/elkeid-protocol.md §1.6). Not the raw block format.
 * https://github.com/google/snappy/blob/main/framing_format.txt
 *
 * The framing (chunk walk, masked CRC-32C, size bounds) is here; the block codec is the native
 * `snappy` package and CRC-32C is @node-rs/crc32 (SIMD).
 */
import { crc32c } from '@node-rs/crc32';
import snappy from 'snappy';
import { GrpcError, Status } from './status.js';

const CHUNK_COMPRESSED = 0x00;
const CHUNK_UNCOMPRESSED = 0x01;
const CHUNK_PADDING = 0xfe;
const CHUNK_STREAM_ID = 0xff;
const STREAM_ID_BODY = Buffer.from('sNaPpY', 'latin1');
export const STREAM_IDENTIFIER = Buffer.from([CHUNK_STREAM_ID, 0x06, 0x00, 0x00, ...STREAM_ID_BODY]);
/** The spec bounds the uncompressed data of one chunk to 65536 bytes. */
const MAX_BLOCK = 65536;

/** The spec's CRC mask, so that CRCs of data containing CRCs stay well distributed. */
export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data as Buffer) >>> 0;
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

function corrupt(detail: string): GrpcError {
  return new GrpcError(Status.INTERNAL, `grpc: failed to decompress the received message: snappy: ${detail}`);
}

/** Reads the uncompressed length varint at the start of a snappy block, without decompressing it. */
function blockDecodedLength(block: Buffer): number {
  let result = 0;
  for (let i = 0, shift = 0; i < 5 && i < block.length; i++, shift += 7) {
    const b = block[i]!;
    result += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return result;
  }
  throw corrupt('corrupt input (bad block length)');
}

/**
 * Decodes one framed snappy stream (one gRPC message). The decoded size is bounded by
 * `maxBytes` before each block is inflated, so a small hostile message cannot expand past it.
 */
export function decodeSnappyFrames(input: Buffer, maxBytes: number): Buffer {
  const out: Buffer[] = [];
  let total = 0;
  let offset = 0;
  let sawStreamId = false;
  while (offset < input.length) {
    if (input.length - offset < 4) throw corrupt('corrupt input (truncated chunk header)');
    const type = input[offset]!;
    const length = input.readUIntLE(offset + 1, 3);
    const bodyStart = offset + 4;
    const bodyEnd = bodyStart + length;
    if (bodyEnd > input.length) throw corrupt('corrupt input (truncated chunk)');
    const body = input.subarray(bodyStart, bodyEnd);
    offset = bodyEnd;

    if (type === CHUNK_STREAM_ID) {
      if (!body.equals(STREAM_ID_BODY)) throw corrupt('corrupt input (bad stream identifier)');
      sawStreamId = true;
      continue;
    }
    if (!sawStreamId) throw corrupt('corrupt input (missing stream identifier)');
    if (type === CHUNK_COMPRESSED || type === CHUNK_UNCOMPRESSED) {
      if (length < 4) throw corrupt('corrupt input (chunk too short)');
      const expectedCrc = body.readUInt32LE(0);
      const data = body.subarray(4);
      let decoded: Buffer;
      if (type === CHUNK_COMPRESSED) {
        const n = blockDecodedLength(data);
        if (n > MAX_BLOCK) throw corrupt('corrupt input (block larger than 65536)');
        if (total + n > maxBytes) {
          throw new GrpcError(
            Status.RESOURCE_EXHAUSTED,
            `received message after decompression larger than max (${maxBytes})`,
          );
        }
        try {
          // copyOutputData: a plain Node Buffer (one memcpy) instead of an external one, which
          // napi-rs reports to V8 as external memory with a finalizer that a GC must run. At
          // 12 KB messages the external kind cost ~12 % more CPU per message in a loop that lets
          // the buffers die (3,218 vs 2,802 and 3,500 vs 3,117 ms per 280k decodes, Node 20).
          decoded = snappy.uncompressSync(data, { asBuffer: true, copyOutputData: true }) as Buffer;
        } catch (err) {
          throw corrupt(`corrupt input (${(err as Error).message})`);
        }
        if (decoded.length !== n) throw corrupt('corrupt input (length mismatch)');
      } else {
        if (data.length > MAX_BLOCK) throw corrupt('corrupt input (block larger than 65536)');
        if (total + data.length > maxBytes) {
          throw new GrpcError(
            Status.RESOURCE_EXHAUSTED,
            `received message after decompression larger than max (${maxBytes})`,
          );
        }
        decoded = data;
      }
      if (maskedCrc32c(decoded) !== expectedCrc) throw corrupt('corrupt input (checksum mismatch)');
      out.push(decoded);
      total += decoded.length;
      continue;
    }
    if (type === CHUNK_PADDING || type >= 0x80) continue; // skippable chunks
    throw corrupt(`unsupported input (reserved unskippable chunk 0x${type.toString(16)})`);
  }
  if (!sawStreamId && input.length > 0) throw corrupt('corrupt input (missing stream identifier)');
  return out.length === 1 ? out[0]! : Buffer.concat(out, total);
}

function chunkHeader(type: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(4);
  h[0] = type;
  h.writeUIntLE(length, 1, 3);
  return h;
}

/**
 * Encodes data the way golang/snappy's writer does: the stream identifier, then one chunk per
 * 64 KiB block, compressed unless compression saves less than 1/8 (then stored uncompressed).
 */
export function encodeSnappyFrames(data: Uint8Array): Buffer {
  const parts: Buffer[] = [STREAM_IDENTIFIER];
  for (let off = 0; off < data.length; off += MAX_BLOCK) {
    const block = Buffer.from(data.buffer, data.byteOffset + off, Math.min(MAX_BLOCK, data.length - off));
    const crc = Buffer.allocUnsafe(4);
    crc.writeUInt32LE(maskedCrc32c(block), 0);
    const compressed = snappy.compressSync(block) as Buffer;
    if (compressed.length < block.length - (block.length >> 3)) {
      parts.push(chunkHeader(CHUNK_COMPRESSED, 4 + compressed.length), crc, compressed);
    } else {
      parts.push(chunkHeader(CHUNK_UNCOMPRESSED, 4 + block.length), crc, block);
    }
  }
  return Buffer.concat(parts);
}
