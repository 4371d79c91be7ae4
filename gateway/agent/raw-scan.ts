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
import {
  lenStart,
  readTag,
  tagEnd,
  valueEnd,
  varint32,
  WIRE_LEN,
  WIRE_VARINT,
  WireFormatError,
} from '../../workers/protobuf-wire.js';

const RECORD_DATA_TYPE = 1;
const RECORD_TIMESTAMP = 2;
const RECORD_BODY = 3;

/** The DataType of an encoded Record in [start, end), its structure checked. */
function recordDataType(buf: Uint8Array, start: number, end: number): number {
  let pos = start;
  let dt = 0;
  while (pos < end) {
    const tag = readTag(buf, pos, end);
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 0) throw new WireFormatError('illegal tag: field number 0');
    if ((field === RECORD_DATA_TYPE || field === RECORD_TIMESTAMP) && wire !== WIRE_VARINT)
      throw new WireFormatError(`Record field ${field}: wire type ${wire}`);
    if (field === RECORD_BODY && wire !== WIRE_LEN)
      throw new WireFormatError(`Record field 3: wire type ${wire}`);
    const valueAt = tagEnd;
    pos = valueEnd(buf, valueAt, end, wire, true);
    if (field === RECORD_DATA_TYPE) dt = varint32(buf, valueAt) | 0;
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
 * Scans an encoded RawData. `wanted(dt)` selects the records to decode. Throws WireFormatError
 * (workers/protobuf-wire.ts, its strict walk) on a malformed message.
 */
export function scanRawData(message: Buffer, wanted: (dt: number) => boolean): RawScan {
  const end = message.length;
  const dataTypes: number[] = [];
  const special: grpc.Record[] = [];
  const headerParts: Buffer[] = [];
  let pos = 0;
  while (pos < end) {
    const fieldStart = pos;
    const tag = readTag(message, pos, end);
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 0) throw new WireFormatError('illegal tag: field number 0');
    if (field >= 1 && field <= 9 && wire !== WIRE_LEN)
      throw new WireFormatError(`RawData field ${field}: wire type ${wire}`);
    pos = valueEnd(message, tagEnd, end, wire, true);
    if (field === 1) {
      const start = lenStart;
      const dt = recordDataType(message, start, pos);
      dataTypes.push(dt);
      if (wanted(dt)) special.push(grpc.Record.decode(message.subarray(start, pos)));
    } else {
      headerParts.push(message.subarray(fieldStart, pos));
    }
  }
  const header = headerParts.length === 1 ? headerParts[0]! : Buffer.concat(headerParts);
  return { count: dataTypes.length, dataTypes, special, header };
}

/** The header fields of a RawData from its header bytes (RawScan.header); throws on bad UTF-8. */
export function decodeHeader(header: Buffer): grpc.RawData {
  return grpc.RawData.decode(header);
}
