/**
 * The snappy framing format built by hand from its specification, independently of the
 * gateway's encoder: https://github.com/google/snappy/blob/main/framing_format.txt and the
 * block format https://github.com/google/snappy/blob/main/format_description.txt.
 * Only @node-rs/crc32 is borrowed (for CRC-32C itself); the mask, chunk headers and blocks are
 * written out here.
 */
import { crc32c } from '@node-rs/crc32';

/** framing_format.txt §4.1: chunk type 0xff, length 6, "sNaPpY". */
export const SPEC_STREAM_ID = Buffer.from([0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59]);

/** framing_format.txt §3: rotate right by 15 bits and add 0xa282ead8 (mod 2^32). */
export function specMask(crc: number): number {
  const c = crc >>> 0;
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

export function specMaskedCrc(data: Uint8Array): number {
  return specMask(crc32c(Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
}

/** One chunk: 1 byte type, 3-byte little-endian length, then the body. */
export function specChunk(type: number, body: Uint8Array): Buffer {
  const header = Buffer.alloc(4);
  header[0] = type;
  header[1] = body.length & 0xff;
  header[2] = (body.length >>> 8) & 0xff;
  header[3] = (body.length >>> 16) & 0xff;
  return Buffer.concat([header, body]);
}

function le32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}

/** Uncompressed data chunk (0x01): masked CRC-32C of the data, then the data. */
export function specUncompressedChunk(data: Uint8Array, crc = specMaskedCrc(data)): Buffer {
  return specChunk(0x01, Buffer.concat([le32(crc), data]));
}

/** Compressed data chunk (0x00): masked CRC-32C of the *uncompressed* data, then the block. */
export function specCompressedChunk(block: Uint8Array, uncompressed: Uint8Array): Buffer {
  return specChunk(0x00, Buffer.concat([le32(specMaskedCrc(uncompressed)), block]));
}

/** Little-endian base-128 varint (format_description.txt §1: the preamble). */
export function specVarint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/**
 * Literal element (format_description.txt §2.1): tag type 00; length-1 in the upper 6 bits when
 * below 60, else 60..63 meaning 1..4 little-endian bytes of length-1 follow.
 */
export function specLiteral(data: Uint8Array): Buffer {
  const n = data.length - 1;
  if (n < 0) throw new Error('a literal holds at least one byte');
  let tag: Buffer;
  if (n < 60) tag = Buffer.from([n << 2]);
  else if (n < 0x100) tag = Buffer.from([60 << 2, n]);
  else if (n < 0x10000) tag = Buffer.from([61 << 2, n & 0xff, n >>> 8]);
  else tag = Buffer.from([62 << 2, n & 0xff, (n >>> 8) & 0xff, n >>> 16]);
  return Buffer.concat([tag, data]);
}

/**
 * Copy with a 1-byte offset (format_description.txt §2.2, tag type 01): length 4..11 in bits
 * 2..4, the top 3 bits of the 11-bit offset in bits 5..7, the low 8 bits in the next byte.
 */
export function specCopy1(length: number, offset: number): Buffer {
  if (length < 4 || length > 11 || offset < 1 || offset > 2047) throw new Error('copy-1 out of range');
  return Buffer.from([0x01 | ((length - 4) << 2) | ((offset >>> 8) << 5), offset & 0xff]);
}

/** A whole block made of one literal: varint(length) + literal. Valid for 1..65536 bytes. */
export function specLiteralBlock(data: Uint8Array): Buffer {
  return Buffer.concat([specVarint(data.length), specLiteral(data)]);
}

/** A framed stream of `data` as uncompressed chunks of at most 65536 bytes. */
export function specFrameUncompressed(data: Uint8Array): Buffer {
  const parts: Buffer[] = [SPEC_STREAM_ID];
  for (let off = 0; off < data.length; off += 65536)
    parts.push(specUncompressedChunk(data.subarray(off, off + 65536)));
  return Buffer.concat(parts);
}

/** gRPC Length-Prefixed-Message (PROTOCOL-HTTP2.md): flag byte, 4-byte big-endian length, payload. */
export function grpcFrame(payload: Uint8Array, compressed: boolean): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(payload.length, 1);
  return Buffer.concat([prefix, payload]);
}
