/**
 * Protobuf wire format read in place: the field walk shared by the gateway's RawData gate
 * (gateway/agent/raw-scan.ts, on the main thread) and the worker's record reader
 * (workers/raw-wire.ts). No objects are made per field; where a reader has a second result (the
 * position after a tag, where a LEN value's bytes start), it is left in `tagEnd` or `lenStart`.
 *
 * Two strictnesses:
 * - strict (the gate): tags and lengths as protobufjs reads them (`tag()`, `uint32()`): at most
 *   5 bytes, the fifth bounded (15 for a tag: 32 bits; 7 for a length: 31 bits). Accepting no
 *   more than protobufjs keeps every message accepted by the gate decodable by protobufjs (the
 *   spool path, test sinks).
 * - lenient (the worker, on bytes the gate has passed): a tag or a length is the low 32 bits of a
 *   varint of up to 10 bytes. Every length is still bounds-checked: a malformed message throws
 *   instead of being read past its end.
 */

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

export class WireFormatError extends Error {
  override name = 'WireFormatError';
}

/*
 * Second results of the readers below, set on each call (they run for every field of every
 * record); importers read them as live bindings.
 */
/** The position after the tag `readTag` read (the strict walk). */
export let tagEnd = 0;
/** Where the bytes of the LEN value `valueEnd` passed start. */
export let lenStart = 0;

/** The position after the varint at `pos`; throws past `end` or after 10 bytes. */
export function skipVarint(buf: Uint8Array, pos: number, end: number): number {
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new WireFormatError('truncated varint');
    if (buf[pos++]! < 0x80) return pos;
  }
  throw new WireFormatError('varint longer than 10 bytes');
}

/** The low 32 bits, unsigned, of the varint at `pos` (bounds already checked by skipVarint). */
export function varint32(buf: Uint8Array, pos: number): number {
  let v = 0;
  for (let shift = 0; shift < 32; shift += 7) {
    const b = buf[pos++]!;
    v |= (b & 0x7f) << shift;
    if (b < 0x80) break;
  }
  return v >>> 0;
}

/** A tag or length as protobufjs reads it (see the strict rules above); sets tagEnd. */
function protobufjsVarint32(
  buf: Uint8Array,
  pos: number,
  end: number,
  fifthMax: number,
  what: string,
): number {
  let v = 0;
  for (let i = 0; i < 5; i++) {
    if (pos >= end) throw new WireFormatError(`truncated ${what}`);
    const b = buf[pos++]!;
    if (i === 4) {
      if (b > fifthMax) throw new WireFormatError(`invalid ${what} encoding`);
      tagEnd = pos;
      return (v | (b << 28)) >>> 0;
    }
    v |= (b & 0x7f) << (7 * i);
    if (b < 0x80) {
      tagEnd = pos;
      return v >>> 0;
    }
  }
  throw new WireFormatError(`invalid ${what} encoding`);
}

/**
 * The tag at `pos`, read strictly; tagEnd is the position after it. (The lenient walk reads a tag
 * as any varint: skipVarint, then varint32 of its low 32 bits.)
 */
export function readTag(buf: Uint8Array, pos: number, end: number): number {
  return protobufjsVarint32(buf, pos, end, 15, 'tag');
}

/**
 * Where the value at `pos` of wire type `wire` ends; for a LEN value, lenStart is where its
 * bytes start. Groups (wire types 3, 4) never occur in Elkeid's messages; 6 and 7 are invalid.
 */
export function valueEnd(buf: Uint8Array, pos: number, end: number, wire: number, strict: boolean): number {
  let next: number;
  switch (wire) {
    case WIRE_VARINT:
      return skipVarint(buf, pos, end);
    case WIRE_FIXED64:
      next = pos + 8;
      break;
    case WIRE_FIXED32:
      next = pos + 4;
      break;
    case WIRE_LEN:
      if (strict) {
        const n = protobufjsVarint32(buf, pos, end, 7, 'length');
        lenStart = tagEnd;
        next = lenStart + n;
      } else {
        lenStart = skipVarint(buf, pos, end);
        next = lenStart + varint32(buf, pos);
      }
      break;
    default:
      throw new WireFormatError(`unsupported wire type ${wire}`);
  }
  if (next > end) throw new WireFormatError('field beyond the message');
  return next;
}
