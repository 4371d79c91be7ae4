/**
 * What the main thread needs of a RawData, without decoding it into objects: the wire structure
 * checked (as strictly as protobufjs' decode, so a malformed message is refused here with the
 * same status), each record's DataType, the records the gateway itself reads (special-records.ts)
 * decoded, and the header bytes (AgentID, addresses, Hostname, Version, Product), which the
 * caller decodes (decodeHeader: strict UTF-8 as before) only when they differ from the previous
 * message's — an agent repeats the same header on every batch. The ingest workers decode the whole message anyway;
 * decoding it here too, every 20 records into 20 objects, was a main-thread cost at agent rates
 * (bench:ingest --profile, paced).
 */
import { grpc } from '../../proto/gen/elkeid.js';
import { WIRE_FIXED32, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT } from '../../workers/raw-wire.js';

/** One field walk step: set by next(). */
interface Cursor {
  buf: Uint8Array;
  pos: number;
  end: number;
}

export class RawScanError extends Error {
  override name = 'RawScanError';
}

/** A varint at the cursor; returns its low 32 bits as a uint32 (what int32 fields keep). */
function varint(c: Cursor): number {
  let lo = 0;
  for (let shift = 0; shift < 70; shift += 7) {
    if (c.pos >= c.end) throw new RawScanError('truncated varint');
    const b = c.buf[c.pos++]!;
    if (shift < 32) lo |= (b & 0x7f) << shift;
    if (b < 0x80) return lo >>> 0;
  }
  throw new RawScanError('varint longer than 10 bytes');
}

/**
 * A tag or a length as protobufjs reads them (its `tag()` and `size()`): at most 5 bytes, the
 * fifth at most `fifthMax` (15 for a tag: 32 bits; 7 for a length: 31 bits), and at most 4 bytes
 * when fewer than 5 are left in the buffer. Accepting no more than it does keeps every message
 * accepted here decodable in the workers.
 */
function varint32(c: Cursor, fifthMax: number, what: string): number {
  const nearEnd = c.buf.length - c.pos < 5;
  let v = 0;
  for (let i = 0; i < 5; i++) {
    if (c.pos >= c.end || (nearEnd && i === 4)) throw new RawScanError(`truncated ${what}`);
    const b = c.buf[c.pos++]!;
    if (i === 4) {
      if (b > fifthMax) throw new RawScanError(`invalid ${what} encoding`);
      return (v | (b << 28)) >>> 0;
    }
    v |= (b & 0x7f) << (7 * i);
    if (b < 0x80) return v >>> 0;
  }
  throw new RawScanError(`invalid ${what} encoding`);
}

const tagOf = (c: Cursor) => varint32(c, 15, 'tag');
const sizeOf = (c: Cursor) => varint32(c, 7, 'length');

/** Skips a field's value of `wire` type; returns [start, end) of a LEN value. */
function skipValue(c: Cursor, wire: number): number {
  switch (wire) {
    case WIRE_VARINT:
      varint(c);
      return c.pos;
    case WIRE_FIXED64:
      c.pos += 8;
      break;
    case WIRE_FIXED32:
      c.pos += 4;
      break;
    case WIRE_LEN: {
      const n = sizeOf(c);
      const start = c.pos;
      c.pos += n;
      if (c.pos > c.end) throw new RawScanError('length beyond the message');
      return start;
    }
    default:
      // Groups (3, 4) never occur in Elkeid's messages; 6 and 7 are invalid.
      throw new RawScanError(`unsupported wire type ${wire}`);
  }
  if (c.pos > c.end) throw new RawScanError('truncated fixed-size field');
  return c.pos;
}

const RECORD_DATA_TYPE = 1;
const RECORD_TIMESTAMP = 2;
const RECORD_BODY = 3;

/** The DataType of an encoded Record in [start, end), its structure checked. */
function recordDataType(buf: Uint8Array, start: number, end: number): number {
  const c: Cursor = { buf, pos: start, end };
  let dt = 0;
  while (c.pos < c.end) {
    const tag = tagOf(c);
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 0) throw new RawScanError('illegal tag: field number 0');
    if (field === RECORD_DATA_TYPE || field === RECORD_TIMESTAMP) {
      if (wire !== WIRE_VARINT) throw new RawScanError(`Record field ${field}: wire type ${wire}`);
      const v = varint(c);
      if (field === RECORD_DATA_TYPE) dt = v | 0;
    } else if (field === RECORD_BODY && wire !== WIRE_LEN) {
      throw new RawScanError(`Record field 3: wire type ${wire}`);
    } else {
      skipValue(c, wire);
    }
  }
  return dt;
}

export interface RawScan {
  /** Records in the message. */
  count: number;
  /** Each record's DataType, in order. */
  dataTypes: number[];
  /** The records `wanted` selected, decoded, in order. */
  special: grpc.Record[];
  /** The header bytes (every field but the records), for comparison with the previous message. */
  header: Buffer;
}

/**
 * Scans an encoded RawData. `wanted(dt)` selects the records to decode. Throws RawScanError on a
 * malformed message.
 */
export function scanRawData(message: Buffer, wanted: (dt: number) => boolean): RawScan {
  const c: Cursor = { buf: message, pos: 0, end: message.length };
  const dataTypes: number[] = [];
  const special: grpc.Record[] = [];
  const headerParts: Buffer[] = [];
  while (c.pos < c.end) {
    const fieldStart = c.pos;
    const tag = tagOf(c);
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 0) throw new RawScanError('illegal tag: field number 0');
    if (field >= 1 && field <= 9 && wire !== WIRE_LEN)
      throw new RawScanError(`RawData field ${field}: wire type ${wire}`);
    const start = skipValue(c, wire);
    if (field === 1) {
      const dt = recordDataType(message, start, c.pos);
      dataTypes.push(dt);
      if (wanted(dt)) special.push(grpc.Record.decode(message.subarray(start, c.pos)));
    } else {
      headerParts.push(message.subarray(fieldStart, c.pos));
    }
  }
  const header = headerParts.length === 1 ? headerParts[0]! : Buffer.concat(headerParts);
  return { count: dataTypes.length, dataTypes, special, header };
}

/** The header fields of a RawData from its header bytes (RawScan.header); throws on bad UTF-8. */
export function decodeHeader(header: Buffer): grpc.RawData {
  return grpc.RawData.decode(header);
}
