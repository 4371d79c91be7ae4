/**
 * Kafka Produce requests (v3–v7) and their magic v2 RecordBatches, encoded in one pass: byte for
 * byte what kafkajs 2.2.4 writes (protocol/requests/produce/v3/request.js, recordBatch/v0,
 * recordBatch/record/v0, recordBatch/header/v0, protocol/encoder.js) for records that carry no
 * timestamp of their own, which is every record of ours (test/unit/record-batch.test.ts compares
 * both encoders on random records, keys and headers, with every compression).
 *
 * kafkajs builds an Encoder (a zero-filled 512-byte buffer, grown by doubling) per record and per
 * header, and copies each record about five times on its way into the request. Here a record is
 * encoded once, when it is accepted, into a `RecordSet`: records that share one key (so one
 * partition), each stored as what follows OffsetDelta in a v2 record — Key, Value, Headers —
 * because OffsetDelta and the record's length prefix depend on the record's place in its
 * partition's batch, known only when the request is built. Building a request then sizes it
 * exactly, allocates it once, writes the per-record prefix (length, attributes, TimestampDelta 0,
 * OffsetDelta) and copies each record's bytes once, and checksums each batch with native CRC32C.
 *
 * What kafkajs does and this mirrors, including its quirks:
 * - A batch's FirstTimestamp = MaxTimestamp = one `Date.now()` per partition (records have no
 *   timestamps), each record's TimestampDelta 0.
 * - Headers in `Object.keys` order, an array value as that many headers with the same key.
 * - Strings as UTF-8 (`Buffer.byteLength` / `buf.write`), a null key or value as length −1.
 * - Compression through kafkajs' codec table (`lookupCodec(compression)` with the raw type):
 *   `codec.compress({ buffer })` of the records, prefixed by the record count.
 */
import { crc32c } from '@node-rs/crc32';

export type HeaderValue = string | Buffer;
export type RecordHeaders = Record<string, HeaderValue | ReadonlyArray<HeaderValue>>;

/** One record as kafkajs takes it (`Message` without timestamp and partition). */
export interface PlainRecord {
  key: string | Buffer | null;
  value: string | Buffer | null;
  headers?: RecordHeaders | undefined;
}

/** Records that share one key, encoded once (see the module comment). */
export interface RecordSet {
  /** The key of every record in the set; the partitioner sees it once for the whole set. */
  readonly key: string | Buffer | null;
  readonly count: number;
  /** Per record, back to back: its Key, Value and Headers as a v2 record encodes them. */
  readonly data: Buffer;
  /** `ends[i]`: where record i's bytes end in `data` (they start where record i − 1's end, or at 0). */
  readonly ends: Uint32Array;
}

/** kafkajs' `CompressionTypes`. */
export const Compression = { None: 0, GZIP: 1, Snappy: 2, LZ4: 3, ZSTD: 4 } as const;
const COMPRESSION_CODEC_MASK = 0x07;
const TRANSACTIONAL_MASK = 0x10;
const MAGIC_BYTE = 2;

/** A codec of kafkajs' `CompressionCodecs` table, optionally with a synchronous compress. */
export interface BatchCodec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  /** Same bytes as `compress`, on the calling thread (used when the caller allows it). */
  compressSync?: ((input: Buffer) => Buffer) | undefined;
}

// --- varints (kafkajs Encoder: zigzag, then LEB128 of the 32-bit result) ---------------------

function zigzag(v: number): number {
  return ((v << 1) ^ (v >> 31)) >>> 0;
}

function uvarintSize(u: number): number {
  return u < 0x80 ? 1 : u < 0x4000 ? 2 : u < 0x200000 ? 3 : u < 0x10000000 ? 4 : 5;
}

/** Size of a zigzag varint of a non-negative length or count below 2^30 (and of −1: 1). */
export function varintSize(v: number): number {
  return uvarintSize(zigzag(v));
}

/** Writes a zigzag varint, returns the position after it. */
export function writeVarint(buf: Buffer, pos: number, v: number): number {
  let u = zigzag(v);
  while (u > 0x7f) {
    buf[pos++] = (u & 0x7f) | 0x80;
    u >>>= 7;
  }
  buf[pos++] = u;
  return pos;
}

function readVarint(buf: Buffer, pos: number): [value: number, next: number] {
  let u = 0;
  let shift = 0;
  for (;;) {
    const b = buf[pos++];
    if (b === undefined) throw new RangeError('record set truncated');
    u |= (b & 0x7f) << shift;
    if (b < 0x80) break;
    shift += 7;
    if (shift > 28) throw new RangeError('varint too long in record set');
  }
  u >>>= 0;
  return [(u >>> 1) ^ -(u & 1), pos];
}

// --- record sets -------------------------------------------------------------------------------

function byteLength(v: string | Buffer): number {
  return typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length;
}

function bytesSize(v: string | Buffer | null): number {
  if (v === null) return 1; // varint(-1)
  const n = byteLength(v);
  return varintSize(n) + n;
}

/** Writes a varint-length-prefixed string or buffer (null: length −1). */
export function writeBytes(buf: Buffer, pos: number, v: string | Buffer | null): number {
  if (v === null) return writeVarint(buf, pos, -1);
  if (typeof v === 'string') {
    const n = Buffer.byteLength(v, 'utf8');
    pos = writeVarint(buf, pos, n);
    return pos + buf.write(v, pos, n, 'utf8');
  }
  pos = writeVarint(buf, pos, v.length);
  return pos + v.copy(buf, pos);
}

/** The headers of a record as kafkajs flattens them: `Object.keys` order, arrays expanded. */
function flatHeaders(headers: RecordHeaders | undefined): Array<[string, HeaderValue]> {
  const out: Array<[string, HeaderValue]> = [];
  if (!headers) return out;
  for (const k of Object.keys(headers)) {
    const v = headers[k]!;
    if (Array.isArray(v)) for (const x of v as ReadonlyArray<HeaderValue>) out.push([k, x]);
    else out.push([k, v as HeaderValue]);
  }
  return out;
}

/** What follows OffsetDelta in a v2 record, for a kafkajs-style record. */
function tailSize(r: PlainRecord, headers: Array<[string, HeaderValue]>): number {
  let n = bytesSize(r.key) + bytesSize(r.value) + varintSize(headers.length);
  for (const [k, v] of headers) n += bytesSize(k) + bytesSize(v);
  return n;
}

/**
 * Encodes `records[from..to)` — which should share `key`, the partitioner's input for the set —
 * as one record set. Keys, values and header values may be strings (UTF-8) or buffers.
 */
export function encodeRecordSet(
  key: string | Buffer | null,
  records: ReadonlyArray<PlainRecord>,
  from = 0,
  to = records.length,
): RecordSet {
  const count = to - from;
  const flat: Array<Array<[string, HeaderValue]>> = new Array(count);
  let size = 0;
  for (let i = 0; i < count; i++) {
    const r = records[from + i]!;
    const h = flatHeaders(r.headers);
    flat[i] = h;
    size += tailSize(r, h);
  }
  const data = Buffer.allocUnsafe(size);
  const ends = new Uint32Array(count);
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const r = records[from + i]!;
    const h = flat[i]!;
    pos = writeBytes(data, pos, r.key);
    pos = writeBytes(data, pos, r.value);
    pos = writeVarint(data, pos, h.length);
    for (const [k, v] of h) {
      pos = writeBytes(data, pos, k);
      pos = writeBytes(data, pos, v);
    }
    ends[i] = pos;
  }
  return { key, count, data, ends };
}

/** The records of a set, back as kafkajs messages (for kafkajs' own encoder and the spool). */
export function decodeRecordSet(set: RecordSet): Array<{
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | Buffer[]>;
}> {
  const { data } = set;
  const out = [];
  let pos = 0;
  const bytes = (): Buffer | null => {
    const [n, p] = readVarint(data, pos);
    pos = p;
    if (n < 0) return null;
    if (pos + n > data.length) throw new RangeError('record set truncated');
    pos += n;
    return data.subarray(pos - n, pos);
  };
  for (let i = 0; i < set.count; i++) {
    const key = bytes();
    const value = bytes();
    const [nh, p] = readVarint(data, pos);
    pos = p;
    // No prototype: header keys such as `toString` or `__proto__` are plain keys here.
    const headers: Record<string, Buffer | Buffer[]> = Object.create(null);
    for (let j = 0; j < nh; j++) {
      const k = bytes()?.toString('utf8') ?? '';
      const v = bytes() ?? Buffer.alloc(0);
      const had = Object.hasOwn(headers, k) ? headers[k] : undefined;
      if (had === undefined) headers[k] = v;
      else if (Array.isArray(had)) had.push(v);
      else headers[k] = [had, v];
    }
    if (pos !== set.ends[i]) throw new RangeError(`record ${i} of a set does not end where it should`);
    out.push({ key, value, headers });
  }
  return out;
}

// --- record batches ----------------------------------------------------------------------------

/** Bytes of a RecordBatch before its records: FirstOffset … FirstSequence and the record count. */
const BATCH_HEADER = 61;
/** Offset of Length, of CRC and of Attributes (where the CRC starts) within a batch. */
const AT_LENGTH = 8;
const AT_CRC = 17;
const AT_ATTRIBUTES = 21;

/** Size of the records of `sets` back to back, OffsetDelta counting on across sets. */
export function recordsSize(sets: ReadonlyArray<RecordSet>): { count: number; size: number } {
  let delta = 0;
  let size = 0;
  for (const set of sets) {
    let start = 0;
    const { ends } = set;
    for (let i = 0; i < set.count; i++) {
      const end = ends[i]!;
      // Attributes (1) and TimestampDelta (varlong 0: 1) + OffsetDelta + Key, Value, Headers.
      const body = 2 + uvarintSize(zigzag(delta)) + end - start;
      size += uvarintSize(zigzag(body)) + body;
      start = end;
      delta++;
    }
  }
  return { count: delta, size };
}

/** Writes the records of `sets` at `pos` (exactly `recordsSize(sets).size` bytes). */
export function writeRecords(sets: ReadonlyArray<RecordSet>, out: Buffer, pos: number): number {
  let delta = 0;
  for (const set of sets) {
    let start = 0;
    const { ends, data } = set;
    for (let i = 0; i < set.count; i++) {
      const end = ends[i]!;
      const zd = zigzag(delta);
      const body = 2 + uvarintSize(zd) + end - start;
      pos = writeVarint(out, pos, body);
      out[pos++] = 0; // attributes
      out[pos++] = 0; // TimestampDelta: varlong 0
      let u = zd;
      while (u > 0x7f) {
        out[pos++] = (u & 0x7f) | 0x80;
        u >>>= 7;
      }
      out[pos++] = u;
      pos += data.copy(out, pos, start, end);
      start = end;
      delta++;
    }
  }
  return pos;
}

/** An int64 as kafkajs writes one from a number, string, bigint or kafkajs `Long`. */
export function writeInt64(out: Buffer, pos: number, v: unknown): void {
  let big: bigint;
  if (typeof v === 'number') big = BigInt(Number.isNaN(v) ? 0 : v);
  else if (typeof v === 'bigint') big = v;
  else if (typeof v === 'string') big = v === 'NaN' || /^[+-]?Infinity$/.test(v) ? 0n : BigInt(v);
  else if (v !== null && typeof v === 'object' && typeof (v as { value?: unknown }).value === 'bigint')
    big = (v as { value: bigint }).value;
  else big = BigInt(v as never);
  out.writeBigInt64BE(BigInt.asIntN(64, big), pos);
}

export interface BatchFields {
  /** kafkajs' compression type (`CompressionTypes`). */
  compression: number;
  /** FirstTimestamp and MaxTimestamp (ms). */
  timestamp: number;
  transactional?: boolean | undefined;
  producerId?: unknown;
  producerEpoch?: number | undefined;
  firstSequence?: number | undefined;
}

let scratch = Buffer.allocUnsafeSlow(0);
/** A buffer of `size` bytes reused by synchronous compression (which is done with it on return). */
function scratchOf(size: number): Buffer {
  if (scratch.length < size) scratch = Buffer.allocUnsafeSlow(Math.max(size, 2 * scratch.length, 64 * 1024));
  return scratch.subarray(0, size);
}

/** The compressed records of a batch, or the sets to write as they are (no compression). */
type Payload = { sets: ReadonlyArray<RecordSet>; count: number; size: number; compressed?: Buffer };

async function payloadOf(
  sets: ReadonlyArray<RecordSet>,
  compression: number,
  lookupCodec: (type: number) => BatchCodec | null,
  sync: boolean,
  encoderOf: (buffer: Buffer) => { buffer: Buffer },
): Promise<Payload> {
  const { count, size } = recordsSize(sets);
  if (compression === Compression.None) return { sets, count, size };
  const codec = lookupCodec(compression);
  if (!codec) throw new TypeError(`no codec for compression type ${compression}`);
  if (sync && codec.compressSync) {
    // The input is done with when compressSync returns: one scratch buffer per thread serves.
    const records = scratchOf(size);
    writeRecords(sets, records, 0);
    const compressed = codec.compressSync(records);
    if (!Buffer.isBuffer(compressed)) throw new Error('value should be an instance of Buffer');
    return { sets, count, size: compressed.length, compressed };
  }
  const records = Buffer.allocUnsafe(size);
  writeRecords(sets, records, 0);
  const compressed = await codec.compress(encoderOf(records));
  if (!Buffer.isBuffer(compressed)) throw new Error('value should be an instance of Buffer');
  return { sets, count, size: compressed.length, compressed };
}

/** Writes a whole RecordBatch (FirstOffset 0 … records) at `pos`; returns the end. */
function writeBatch(out: Buffer, pos: number, f: BatchFields, p: Payload): number {
  const start = pos;
  out.writeInt32BE(0, pos); // FirstOffset (int64 0)
  out.writeInt32BE(0, pos + 4);
  out.writeInt32BE(BATCH_HEADER - 12 + p.size, pos + AT_LENGTH); // Length: what follows it
  out.writeInt32BE(0, pos + 12); // PartitionLeaderEpoch
  out[pos + 16] = MAGIC_BYTE;
  const attributes = (f.compression & COMPRESSION_CODEC_MASK) | (f.transactional ? TRANSACTIONAL_MASK : 0);
  out.writeInt16BE(attributes, pos + AT_ATTRIBUTES);
  out.writeInt32BE(p.count - 1, pos + 23); // LastOffsetDelta
  writeInt64(out, pos + 27, f.timestamp); // FirstTimestamp
  writeInt64(out, pos + 35, f.timestamp); // MaxTimestamp
  writeInt64(out, pos + 43, f.producerId === undefined ? -1 : f.producerId);
  out.writeInt16BE(f.producerEpoch ?? 0, pos + 51);
  out.writeInt32BE(f.firstSequence ?? 0, pos + 53);
  out.writeInt32BE(p.count, pos + 57);
  pos += BATCH_HEADER;
  if (p.compressed) pos += p.compressed.copy(out, pos);
  else pos = writeRecords(p.sets, out, pos);
  out.writeUInt32BE(crc32c(out.subarray(start + AT_ATTRIBUTES, pos)), start + AT_CRC);
  return pos;
}

export interface EncodeContext {
  /** kafkajs' `lookupCodec` (its `CompressionCodecs` table). */
  lookupCodec: (type: number) => BatchCodec | null;
  /** Use `codec.compressSync` where the codec has one. */
  sync?: boolean | undefined;
  /** Wraps the records buffer for `codec.compress` (kafkajs passes an Encoder). */
  encoderOf?: ((buffer: Buffer) => { buffer: Buffer }) | undefined;
  /** The clock of the batch timestamps (tests); default `Date.now`. */
  now?: (() => number) | undefined;
}

const plainEncoder = (buffer: Buffer) => ({ buffer });

/**
 * One RecordBatch, as kafkajs' `RecordBatch({...}).buffer` (FirstOffset included), for tests and
 * tools; `encodeProduceRequest` writes the batches of a request in place.
 */
export async function encodeRecordBatch(
  sets: ReadonlyArray<RecordSet>,
  fields: BatchFields,
  ctx: EncodeContext,
): Promise<Buffer> {
  const p = await payloadOf(
    sets,
    fields.compression,
    ctx.lookupCodec,
    ctx.sync ?? false,
    ctx.encoderOf ?? plainEncoder,
  );
  const out = Buffer.allocUnsafe(BATCH_HEADER + p.size);
  writeBatch(out, 0, fields, p);
  return out;
}

/** The arguments kafkajs passes to a Produce request (`broker.produce` → `requests.Produce`). */
export interface ProduceArgs<M = unknown> {
  acks: number;
  timeout: number;
  compression?: number | undefined;
  transactionalId?: string | null | undefined;
  producerId?: unknown;
  producerEpoch?: number | undefined;
  topicData: ReadonlyArray<{
    topic: string;
    partitions: ReadonlyArray<{
      partition: number;
      firstSequence?: number | undefined;
      messages: ReadonlyArray<M>;
    }>;
  }>;
}

/**
 * The body of a Produce request v3–v7 (what kafkajs' `request.encode()` returns, without the
 * request header), for topic data whose messages are record sets (`setOf` maps a message to its set).
 */
export async function encodeProduceRequest<M>(
  args: ProduceArgs<M>,
  setOf: (message: M) => RecordSet,
  ctx: EncodeContext,
): Promise<Buffer> {
  const compression = args.compression ?? Compression.None;
  const transactionalId = args.transactionalId ?? null;
  const now = ctx.now ?? Date.now;
  const sync = ctx.sync ?? false;
  const encoderOf = ctx.encoderOf ?? plainEncoder;
  let size = 2 + (transactionalId === null ? 0 : Buffer.byteLength(transactionalId, 'utf8')) + 2 + 4 + 4;
  const topics: Array<{
    topic: string;
    partitions: Array<{ partition: number; fields: BatchFields; p: Payload }>;
  }> = [];
  for (const t of args.topicData) {
    size += 2 + Buffer.byteLength(t.topic, 'utf8') + 4;
    const partitions = [];
    for (const part of t.partitions) {
      const fields: BatchFields = {
        compression,
        timestamp: now(),
        transactional: !!transactionalId,
        producerId: args.producerId,
        producerEpoch: args.producerEpoch,
        firstSequence: part.firstSequence,
      };
      const p = await payloadOf(part.messages.map(setOf), compression, ctx.lookupCodec, sync, encoderOf);
      size += 4 + 4 + BATCH_HEADER + p.size;
      partitions.push({ partition: part.partition, fields, p });
    }
    topics.push({ topic: t.topic, partitions });
  }

  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  if (transactionalId === null) pos = out.writeInt16BE(-1, pos);
  else {
    const n = Buffer.byteLength(transactionalId, 'utf8');
    pos = out.writeInt16BE(n, pos);
    pos += out.write(transactionalId, pos, n, 'utf8');
  }
  pos = out.writeInt16BE(args.acks, pos);
  pos = out.writeInt32BE(args.timeout, pos);
  pos = out.writeInt32BE(topics.length, pos);
  for (const t of topics) {
    const n = Buffer.byteLength(t.topic, 'utf8');
    pos = out.writeInt16BE(n, pos);
    pos += out.write(t.topic, pos, n, 'utf8');
    pos = out.writeInt32BE(t.partitions.length, pos);
    for (const { partition, fields, p } of t.partitions) {
      pos = out.writeInt32BE(Number(partition), pos);
      pos = out.writeInt32BE(BATCH_HEADER + p.size, pos);
      pos = writeBatch(out, pos, fields, p);
    }
  }
  if (pos !== size) throw new Error(`Produce request encoded to ${pos} bytes, sized ${size}`);
  return out;
}
