/**
 * What one accepted record is, between the agent and Kafka: the Kafka key (AgentID), the MQData
 * value, and the identity that lets loss and duplication be counted exactly downstream — the
 * gateway instance that accepted it and its per-instance sequence number (Kafka headers
 * `fleetgate-gw` and `fleetgate-seq`). The same envelope is what the spool stores, so a record
 * shipped later from the spool carries the headers it got at acceptance.
 *
 * Envelope (the spool entry value): u16 LE gw length | gw (UTF-8) | f64 LE seq | MQData bytes.
 */
export interface AcceptedRecord {
  key: string;
  gw: string;
  seq: number;
  value: Uint8Array;
}

export const HEADER_GW = 'fleetgate-gw';
export const HEADER_SEQ = 'fleetgate-seq';

export function encodeEnvelope(r: Omit<AcceptedRecord, 'key'>): Uint8Array {
  const gw = Buffer.from(r.gw, 'utf8');
  const out = Buffer.allocUnsafe(2 + gw.length + 8 + r.value.length);
  out.writeUInt16LE(gw.length, 0);
  gw.copy(out, 2);
  out.writeDoubleLE(r.seq, 2 + gw.length);
  out.set(r.value, 2 + gw.length + 8);
  return out;
}

export function decodeEnvelope(key: string, envelope: Uint8Array): AcceptedRecord {
  const b = Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength);
  if (b.length < 10) throw new RangeError('spool entry too short for its envelope');
  const gwLen = b.readUInt16LE(0);
  if (b.length < 2 + gwLen + 8) throw new RangeError('spool entry envelope truncated');
  return {
    key,
    gw: b.toString('utf8', 2, 2 + gwLen),
    seq: b.readDoubleLE(2 + gwLen),
    value: b.subarray(2 + gwLen + 8),
  };
}

/** Spool entries (key + envelope) packed in one ArrayBuffer: per entry u16 key length | key | u32 length | envelope. */
export interface SpoolEntryLike {
  key: string;
  value: Uint8Array;
}

/** Packs entries so a batch crosses between threads as one transfer. */
export function packSpoolEntries(entries: ReadonlyArray<SpoolEntryLike>): ArrayBuffer {
  const keys = entries.map((e) => Buffer.from(e.key, 'utf8'));
  const size = entries.reduce((n, e, i) => n + 2 + keys[i]!.length + 4 + e.value.length, 0);
  const ab = new ArrayBuffer(size);
  const out = Buffer.from(ab);
  let o = 0;
  entries.forEach((e, i) => {
    const k = keys[i]!;
    out.writeUInt16LE(k.length, o);
    k.copy(out, o + 2);
    o += 2 + k.length;
    out.writeUInt32LE(e.value.length, o);
    out.set(e.value, o + 4);
    o += 4 + e.value.length;
  });
  return ab;
}

export function unpackSpoolEntries(ab: ArrayBuffer): SpoolEntryLike[] {
  const b = Buffer.from(ab);
  const out: SpoolEntryLike[] = [];
  let o = 0;
  while (o < b.length) {
    const kLen = b.readUInt16LE(o);
    const key = b.toString('utf8', o + 2, o + 2 + kLen);
    o += 2 + kLen;
    const eLen = b.readUInt32LE(o);
    out.push({ key, value: b.subarray(o + 4, o + 4 + eLen) });
    o += 4 + eLen;
  }
  return out;
}

export function packRecords(records: ReadonlyArray<AcceptedRecord>): ArrayBuffer {
  return packSpoolEntries(records.map((r) => ({ key: r.key, value: encodeEnvelope(r) })));
}

export function unpackRecords(ab: ArrayBuffer): AcceptedRecord[] {
  return unpackSpoolEntries(ab).map((e) => decodeEnvelope(e.key, e.value));
}
