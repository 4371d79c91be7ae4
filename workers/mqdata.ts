/**
 * RawData → one MQData per record (docs/elkeid-protocol.md §1.1), byte-identical to what Elkeid's
 * Go AgentCenter produces: proto3 (zero values omitted), fields in number order, IP lists
 * comma-joined, SvrTime in server seconds, PSMName/PSMPath empty, Tag = the agent's tags.
 *
 * The fields shared by every record of a batch (4–15) are encoded once; per record only
 * DataType, AgentTime and the Body are written, and the Body is copied as the agent's bytes —
 * spliced, never decoded and re-encoded.
 */
import protobuf from 'protobufjs/minimal.js';
import type { grpc } from '../proto/gen/elkeid.js';

export interface MqRecord {
  /** Kafka key: the AgentID of the RawData (Elkeid keys by each message's own AgentID). */
  key: string;
  /** The encoded MQData. */
  value: Uint8Array;
  dataType: number;
}

/** Fields 4–15 of an MQData, the same for every record of `raw` (record-set.ts writes them too). */
export function sharedFields(raw: grpc.RawData, svrTime: number, tag: string): Uint8Array {
  const w = protobuf.Writer.create();
  const str = (field: number, v: string) => {
    if (v) w.uint32((field << 3) | 2).string(v);
  };
  str(4, raw.AgentID);
  str(5, raw.IntranetIPv4.join(','));
  str(6, raw.ExtranetIPv4.join(','));
  str(7, raw.IntranetIPv6.join(','));
  str(8, raw.ExtranetIPv6.join(','));
  str(9, raw.Hostname);
  str(10, raw.Version);
  str(11, raw.Product);
  if (svrTime !== 0) w.uint32(12 << 3).int64(svrTime);
  str(15, tag);
  return w.finish();
}

export function toNumber(v: number | { toNumber(): number } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

export function buildMqRecords(raw: grpc.RawData, receivedAtMs: number, tag = ''): MqRecord[] {
  const shared = sharedFields(raw, Math.floor(receivedAtMs / 1000), tag);
  const out: MqRecord[] = new Array(raw.Data.length);
  for (let i = 0; i < raw.Data.length; i++) {
    const r = raw.Data[i]!;
    const dataType = r.DataType ?? 0;
    const w = protobuf.Writer.create();
    if (dataType !== 0) w.uint32(1 << 3).int32(dataType);
    const agentTime = toNumber(r.Timestamp as number | { toNumber(): number } | null | undefined);
    if (agentTime !== 0) w.uint32(2 << 3).int64(agentTime);
    const body = r.Body;
    if (body && body.length > 0) w.uint32((3 << 3) | 2).bytes(body);
    const head = w.finish();
    const value = new Uint8Array(head.length + shared.length);
    value.set(head, 0);
    value.set(shared, head.length);
    out[i] = { key: raw.AgentID, value, dataType };
  }
  return out;
}
