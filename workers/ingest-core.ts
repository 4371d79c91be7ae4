/**
 * The per-record work of the ingest pipeline, the same code whether it runs in a piscina worker
 * or inline (FLEETGATE_WORKERS=0): decode RawData, build one MQData per record (bodies spliced),
 * attach the acceptance identity, and produce to Kafka — or hand the records back packed so the
 * main thread can spool them when Kafka did not take them.
 */

import type { RecordProducer } from '../gateway/ingest/kafka/producer.js';
import { grpc } from '../proto/gen/elkeid.js';
import { buildMqRecords } from './mqdata.js';
import {
  type AcceptedRecord,
  decodeEnvelope,
  HEADER_GW,
  HEADER_SEQ,
  packRecords,
  unpackSpoolEntries,
} from './spool-entry.js';

export interface BuildTask {
  kind: 'build' | 'produce';
  /** The decompressed RawData message. */
  message: ArrayBuffer;
  receivedAt: number;
  /** Gateway instance identity and the sequence number of the first record. */
  gw: string;
  seq0: number;
  tag: string;
}
export interface ShipTask {
  kind: 'ship';
  /** Spool entries packed by packSpoolEntries. */
  packed: ArrayBuffer;
}
export type IngestTask = BuildTask | ShipTask;

export type IngestResult =
  | { kind: 'built'; packed: ArrayBuffer; count: number }
  | { kind: 'produced'; count: number }
  | { kind: 'failed'; error: string; packed?: ArrayBuffer; count: number }
  | { kind: 'shipped'; count: number };

export function acceptRecords(task: BuildTask): AcceptedRecord[] {
  const raw = grpc.RawData.decode(new Uint8Array(task.message));
  return buildMqRecords(raw, task.receivedAt, task.tag).map((r, i) => ({
    key: r.key,
    gw: task.gw,
    seq: task.seq0 + i,
    value: r.value,
  }));
}

function toKafka(records: ReadonlyArray<AcceptedRecord>) {
  return records.map((r) => ({
    key: r.key,
    value: r.value,
    headers: { [HEADER_GW]: r.gw, [HEADER_SEQ]: String(r.seq) },
  }));
}

export function createIngestCore(producer: RecordProducer | undefined) {
  // A broker that is down at start must not fail anything: connect on the first send, and
  // again after a failure; a send that cannot connect fails and its records are spooled.
  const send = async (records: ReadonlyArray<AcceptedRecord>) => {
    if (!producer!.connected) await producer!.connect();
    await producer!.send(toKafka(records));
  };
  return {
    async run(task: IngestTask): Promise<IngestResult> {
      if (task.kind === 'ship') {
        const records = unpackSpoolEntries(task.packed).map((e) => decodeEnvelope(e.key, e.value));
        if (!producer)
          return { kind: 'failed', error: 'no Kafka producer configured', count: records.length };
        try {
          await send(records);
          return { kind: 'shipped', count: records.length };
        } catch (err) {
          return { kind: 'failed', error: (err as Error).message, count: records.length };
        }
      }
      const records = acceptRecords(task);
      if (task.kind === 'build' || !producer) {
        return { kind: 'built', packed: packRecords(records), count: records.length };
      }
      try {
        if (records.length > 0) await send(records);
        return { kind: 'produced', count: records.length };
      } catch (err) {
        // Kafka did not take them: the caller spools them, in order, before the agent sends more.
        return {
          kind: 'failed',
          error: (err as Error).message,
          packed: packRecords(records),
          count: records.length,
        };
      }
    },
    async close(): Promise<void> {
      await producer?.disconnect();
    },
  };
}
