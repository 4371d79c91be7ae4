/**
 * A RawData as the worker reads it: straight from its wire bytes, with no object per record.
 * The header (AgentID, addresses, Hostname, Version, Product) is decoded by protobufjs from its
 * own bytes; each record is a [start, end) range, whose DataType, Timestamp and Body
 * record-set.ts reads in place (`readRecord`). Decoding the whole message instead made 20 Record
 * objects and 20 Long timestamps per RawData, about half of the worker's cost per message before
 * any byte was written (bench:ingest --profile, paced).
 *
 * Values are what protobufjs' decode gives, so a record set is byte for byte what it was built
 * from the decoded message (test/unit/mqdata.test.ts): DataType is the low 32 bits of its varint
 * as a signed int32, Timestamp the int64 as a JS number (Long's toNumber), the last occurrence of
 * a field wins, unknown fields are skipped. The field walk is workers/protobuf-wire.ts's lenient
 * one: the main thread has checked the structure already (gateway/agent/raw-scan.ts, the strict
 * walk); every length is still bounds-checked here, so a malformed message throws instead of
 * being read past its end.
 */
import { grpc } from '../proto/gen/elkeid.js';
import { lenStart, skipVarint, valueEnd, varint32, WIRE_LEN } from './protobuf-wire.js';

export interface RawWire {
  bytes: Uint8Array;
  /** The header fields; its Data is empty (the records are `bounds`). */
  header: grpc.RawData;
  count: number;
  /** Record i is bytes[bounds[2i], bounds[2i + 1]). */
  bounds: Uint32Array;
}

/** One record's fields, as `readRecord` leaves them (one object, reused). */
export interface RecordFields {
  dataType: number;
  timestamp: number;
  bodyStart: number;
  bodyEnd: number;
}

/** The int64 varint at `pos` as Long's toNumber() gives it: signed high word × 2^32 + low word. */
function int64Number(buf: Uint8Array, pos: number, end: number): number {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < 10 && pos < end; i++) {
    const b = buf[pos++]! & 0x7f;
    if (i < 4) lo |= b << (7 * i);
    else if (i === 4) {
      lo |= b << 28;
      hi |= b >>> 4;
    } else hi |= b << (7 * i - 32);
    if (buf[pos - 1]! < 0x80) break;
  }
  return (hi | 0) * 4294967296 + (lo >>> 0);
}

let scratchBounds = new Uint32Array(64);

/** Walks a RawData: record ranges, header bytes (decoded). */
export function readRawWire(bytes: Uint8Array): RawWire {
  const end = bytes.length;
  let count = 0;
  let headerStart = -1;
  let headerEnd = -1;
  const headerParts: Uint8Array[] = [];
  let pos = 0;
  while (pos < end) {
    const fieldStart = pos;
    pos = skipVarint(bytes, pos, end);
    const tag = varint32(bytes, fieldStart);
    const next = valueEnd(bytes, pos, end, tag & 7, false);
    if (tag >>> 3 === 1 && (tag & 7) === WIRE_LEN) {
      if (2 * count + 2 > scratchBounds.length) {
        const grown = new Uint32Array(scratchBounds.length * 2);
        grown.set(scratchBounds);
        scratchBounds = grown;
      }
      scratchBounds[2 * count] = lenStart;
      scratchBounds[2 * count + 1] = next;
      count++;
    } else if (headerEnd === fieldStart) {
      headerEnd = next; // contiguous with the header so far (Go writes fields 2–9 together)
    } else {
      if (headerStart >= 0) headerParts.push(bytes.subarray(headerStart, headerEnd));
      headerStart = fieldStart;
      headerEnd = next;
    }
    pos = next;
  }
  let headerBytes = headerStart >= 0 ? bytes.subarray(headerStart, headerEnd) : new Uint8Array(0);
  if (headerParts.length > 0) headerBytes = Buffer.concat([...headerParts, headerBytes]);
  return {
    bytes,
    header: grpc.RawData.decode(headerBytes),
    count,
    bounds: scratchBounds.slice(0, 2 * count),
  };
}

/** Reads record `i` of `wire` into `out` (reused by the caller: no allocation per record). */
export function readRecord(wire: RawWire, i: number, out: RecordFields): RecordFields {
  const buf = wire.bytes;
  let pos = wire.bounds[2 * i]!;
  const end = wire.bounds[2 * i + 1]!;
  out.dataType = 0;
  out.timestamp = 0;
  out.bodyStart = 0;
  out.bodyEnd = 0;
  while (pos < end) {
    const tagAt = pos;
    pos = skipVarint(buf, pos, end);
    const tag = varint32(buf, tagAt);
    const next = valueEnd(buf, pos, end, tag & 7, false);
    const field = tag >>> 3;
    if (field === 1) out.dataType = varint32(buf, pos) | 0;
    else if (field === 2) out.timestamp = int64Number(buf, pos, next);
    else if (field === 3 && (tag & 7) === WIRE_LEN) {
      out.bodyStart = lenStart;
      out.bodyEnd = next;
    }
    pos = next;
  }
  return out;
}
