/**
 * Send-time stamps of the ingest benchmark. An agent cannot see Kafka acks, so the load client
 * writes, into every record body, an Item field `sent_us` whose value is
 *
 *   <16 digits: CLOCK_MONOTONIC µs at the write> ":" <10 digits: message seq of the agent> ":" <4 digits: record index>
 *
 * and the driver's Kafka consumer finds it in the MQData value (the body is carried verbatim by
 * every gateway under test) and subtracts it from its own monotonic clock. process.hrtime() is
 * CLOCK_MONOTONIC, one clock for every process of the machine, so no wall-clock skew enters.
 * The (AgentID, seq, index) triple identifies each record, so loss and duplication are exact.
 *
 * The value has a fixed width, so the encoded RawData of a template is patched in place before
 * each send (no re-encoding); the field comes first in the body, so the consumer finds it fast.
 */

export const STAMP_FIELD = 'sent_us';
const US_DIGITS = 16;
const SEQ_DIGITS = 10;
const INDEX_DIGITS = 4;
const VALUE_LENGTH = US_DIGITS + 1 + SEQ_DIGITS + 1 + INDEX_DIGITS;
export const MAX_RECORDS_PER_MESSAGE = 10 ** INDEX_DIGITS;

/** The Item map entry bytes before the value: key field, then value tag and length. */
const MARKER = Buffer.from([
  0x0a,
  STAMP_FIELD.length,
  ...Buffer.from(STAMP_FIELD, 'latin1'),
  0x12,
  VALUE_LENGTH,
]);

/** CLOCK_MONOTONIC in µs (the same clock in every process of the machine). */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** The placeholder value of record `index` (its index is fixed; time and seq are patched per send). */
export function stampPlaceholder(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_RECORDS_PER_MESSAGE)
    throw new RangeError(`record index ${index} out of range`);
  return `${'0'.repeat(US_DIGITS)}:${'0'.repeat(SEQ_DIGITS)}:${String(index).padStart(INDEX_DIGITS, '0')}`;
}

/** Offsets of the stamp values in an encoded message (one per stamped record). */
export function findStamps(buf: Uint8Array): number[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: number[] = [];
  for (let at = b.indexOf(MARKER); at >= 0; at = b.indexOf(MARKER, at + MARKER.length)) {
    out.push(at + MARKER.length);
  }
  return out;
}

function writeDigits(buf: Uint8Array, at: number, value: number, width: number): void {
  let v = value;
  for (let i = at + width - 1; i >= at; i--) {
    buf[i] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
}

/** Writes the send time and message seq into the stamp at `at` (from findStamps). */
export function writeStamp(buf: Uint8Array, at: number, us: number, seq: number): void {
  writeDigits(buf, at, us, US_DIGITS);
  writeDigits(buf, at + US_DIGITS + 1, seq, SEQ_DIGITS);
}

function readDigits(buf: Uint8Array, at: number, width: number): number {
  let v = 0;
  for (let i = at; i < at + width; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

export interface Stamp {
  us: number;
  seq: number;
  index: number;
}

/** The stamp in a record (a RawData, an Item or an MQData value), or undefined (e.g. heartbeats). */
export function readStamp(buf: Buffer): Stamp | undefined {
  const at = buf.indexOf(MARKER);
  if (at < 0 || buf.length < at + MARKER.length + VALUE_LENGTH) return undefined;
  const v = at + MARKER.length;
  const us = readDigits(buf, v, US_DIGITS);
  const seq = readDigits(buf, v + US_DIGITS + 1, SEQ_DIGITS);
  const index = readDigits(buf, v + US_DIGITS + 1 + SEQ_DIGITS + 1, INDEX_DIGITS);
  if (us < 0 || seq < 0 || index < 0) return undefined;
  return { us, seq, index };
}
