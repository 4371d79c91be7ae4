/**
 * RawData → the record set our Kafka producer sends (workers/kafka/record-batch.ts), in one
 * pass and one buffer, read from the RawData's wire bytes (raw-wire.ts), with no object per
 * record: for each record its Kafka key (the AgentID), its MQData value and its acceptance
 * headers (`fleetgate-gw`, `fleetgate-seq`), as a v2 record encodes them.
 *
 * The MQData bytes are exactly those of `buildMqRecords` (mqdata.ts, byte-identical to Elkeid's):
 * DataType (int32, a negative one as 10 bytes), AgentTime (int64 through a JS number, as
 * protobufjs writes it), the Body spliced as the agent sent it, then fields 4–15 encoded once per
 * RawData. The key and the `fleetgate-gw` header are encoded once per RawData; per record only
 * the three leading MQData fields, the body copy and the sequence number are written.
 * test/unit/mqdata.test.ts checks the result against buildMqRecords + the producer's generic
 * record encoding.
 */

import { type RecordSet, varintSize, writeBytes, writeVarint } from './kafka/record-batch.js';
import { sharedFields } from './mqdata.js';
import { type RawWire, type RecordFields, readRecord } from './raw-wire.js';
import { HEADER_GW, HEADER_SEQ } from './spool-entry.js';

/** Protobuf (not zigzag) varint size of a uint32. */
function pbVarintSize(u: number): number {
  return u < 0x80 ? 1 : u < 0x4000 ? 2 : u < 0x200000 ? 3 : u < 0x10000000 ? 4 : 5;
}

function writePbVarint(buf: Buffer, pos: number, u: number): number {
  while (u > 0x7f) {
    buf[pos++] = (u & 0x7f) | 0x80;
    u >>>= 7;
  }
  buf[pos++] = u;
  return pos;
}

/** protobufjs' `LongBits.fromNumber(n)` then `writeVarint64`, without the object. */
function writePbInt64(buf: Buffer, pos: number, n: number): number {
  const neg = n < 0;
  if (neg) n = -n;
  let lo = n >>> 0;
  let hi = ((n - lo) / 4294967296) >>> 0;
  if (neg) {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
    if (++lo > 4294967295) {
      lo = 0;
      if (++hi > 4294967295) hi = 0;
    }
  }
  while (hi) {
    buf[pos++] = (lo & 127) | 128;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 127) {
    buf[pos++] = (lo & 127) | 128;
    lo >>>= 7;
  }
  buf[pos++] = lo;
  return pos;
}

/** At most: tag + 10-byte int32, tag + 10-byte int64, tag + 5-byte length (before the body). */
const MAX_MQ_HEAD = 1 + 10 + 1 + 10 + 1 + 5;
/** At most: value length (5), header count (1), `fleetgate-seq` key (1 + 13), seq (1 + 17). */
const MAX_RECORD_FIXED = 5 + 1 + 14 + 18;

/**
 * Set data is carved out of 1 MiB slabs (a bump allocator like Buffer's 8 KiB pool, sized for
 * ~15 KB sets): one ArrayBuffer per ~70 RawData instead of one each, which is what drives GC
 * here (V8 counts every ArrayBuffer as external memory). A slab is freed once no set in it lives,
 * i.e. once Kafka acknowledged its last batch.
 */
const SLAB_BYTES = 1024 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabAt = 0;

/** Room for at most `max` bytes; `commitSlab` then keeps what was used. */
function slabRoom(max: number): Buffer {
  if (max > SLAB_BYTES / 4) return Buffer.allocUnsafe(max);
  if (slabAt + max > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabAt = 0;
  }
  return slab.subarray(slabAt, slabAt + max);
}

function commitSlab(room: Buffer, used: number): Buffer {
  if (room.buffer === slab.buffer) slabAt += (used + 7) & ~7;
  return room.subarray(0, used);
}

const gwHeaders = new Map<string, Buffer>();
/** The `fleetgate-gw` header as a v2 record encodes it (key and value), once per gateway id. */
function gwHeader(gw: string): Buffer {
  let h = gwHeaders.get(gw);
  if (!h) {
    h = Buffer.allocUnsafe(varintSize(HEADER_GW.length) + HEADER_GW.length + 5 + Buffer.byteLength(gw));
    let pos = writeBytes(h, 0, HEADER_GW);
    pos = writeBytes(h, pos, gw);
    h = h.subarray(0, pos);
    gwHeaders.set(gw, h);
  }
  return h;
}
const SEQ_KEY = (() => {
  const b = Buffer.allocUnsafe(1 + HEADER_SEQ.length);
  return b.subarray(0, writeBytes(b, 0, HEADER_SEQ));
})();

/** Writes `String(n)` of a non-negative safe integer (ASCII digits), returns the end. */
function writeDecimal(buf: Buffer, pos: number, n: number): number {
  if (n >= 0x80000000) return pos + buf.write(String(n), pos, 'latin1');
  let digits = 1;
  for (let p = 10; p <= n; p *= 10) digits++;
  const end = pos + digits;
  for (let at = end - 1; at >= pos; at--) {
    const q = (n / 10) | 0;
    buf[at] = 48 + n - q * 10;
    n = q;
  }
  return end;
}

/** Copies `src` into `buf` at `pos`; returns the end. A byte loop below 32 bytes, where it beats a set() call. */
function put(buf: Buffer, pos: number, src: Uint8Array): number {
  const n = src.length;
  if (n < 32) for (let i = 0; i < n; i++) buf[pos + i] = src[i]!;
  else buf.set(src, pos);
  return pos + n;
}

const fields: RecordFields = { dataType: 0, timestamp: 0, bodyStart: 0, bodyEnd: 0 };

/**
 * The records of `wire` as one record set keyed by its AgentID, with sequence numbers `seq0`,
 * `seq0 + 1`, … (the same records, values and headers the ingest pipeline produced before, see
 * acceptRecords in ingest-core.ts).
 */
export function buildRecordSet(
  wire: RawWire,
  receivedAtMs: number,
  tag: string,
  gw: string,
  seq0: number,
): RecordSet {
  const count = wire.count;
  if (!Number.isSafeInteger(seq0) || seq0 < 0 || !Number.isSafeInteger(seq0 + count))
    throw new RangeError(`sequence numbers out of range: ${seq0}`);
  const agentId = wire.header.AgentID ?? '';
  const shared = sharedFields(wire.header, Math.floor(receivedAtMs / 1000), tag);
  const key = Buffer.from(agentId, 'utf8');
  const gwh = gwHeader(gw);
  const bytes = wire.bytes;
  const keyBytes = varintSize(key.length) + key.length;
  const perRecord = keyBytes + MAX_RECORD_FIXED + gwh.length + MAX_MQ_HEAD + shared.length;
  // A record's body is at most its encoded length.
  let max = count * perRecord;
  for (let i = 0; i < count; i++) max += wire.bounds[2 * i + 1]! - wire.bounds[2 * i]!;
  const buf = slabRoom(max);
  const ends = new Uint32Array(count);
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const { dataType, timestamp: agentTime, bodyStart, bodyEnd } = readRecord(wire, i, fields);
    const bodyLen = bodyEnd - bodyStart;
    // MQData length: the three leading fields, then the shared ones.
    let head = 0;
    if (dataType !== 0) head += 1 + (dataType < 0 ? 10 : pbVarintSize(dataType));
    if (agentTime !== 0) head += 1 + int64Size(agentTime);
    if (bodyLen > 0) head += 1 + pbVarintSize(bodyLen) + bodyLen;
    const valueLen = head + shared.length;
    // Key, then Value.
    pos = writeVarint(buf, pos, key.length);
    pos = put(buf, pos, key);
    pos = writeVarint(buf, pos, valueLen);
    if (dataType !== 0) {
      buf[pos++] = 1 << 3;
      pos = dataType < 0 ? writePbInt64(buf, pos, dataType) : writePbVarint(buf, pos, dataType);
    }
    if (agentTime !== 0) {
      buf[pos++] = 2 << 3;
      pos = writePbInt64(buf, pos, agentTime);
    }
    if (bodyLen > 0) {
      buf[pos++] = (3 << 3) | 2;
      pos = writePbVarint(buf, pos, bodyLen);
      buf.set(bytes.subarray(bodyStart, bodyEnd), pos);
      pos += bodyLen;
    }
    pos = put(buf, pos, shared);
    // Headers: fleetgate-gw, fleetgate-seq.
    buf[pos++] = 4; // varint 2
    pos = put(buf, pos, gwh);
    pos = put(buf, pos, SEQ_KEY);
    const seqAt = pos++;
    pos = writeDecimal(buf, pos, seq0 + i);
    buf[seqAt] = (pos - seqAt - 1) << 1; // zigzag length, at most 16 digits: one byte
    ends[i] = pos;
  }
  return { key: agentId, count, data: commitSlab(buf, pos), ends };
}

/** Size of protobufjs' varint64 of a number. */
function int64Size(n: number): number {
  if (n < 0) return 10;
  if (n < 4294967296) return pbVarintSize(n >>> 0);
  let size = 5;
  let hi = ((n - (n >>> 0)) / 4294967296) >>> 0;
  // bits above 35 (5 bytes hold 35 bits: 32 of lo + 3 of hi)
  hi >>>= 3;
  while (hi) {
    size++;
    hi >>>= 7;
  }
  return size;
}
