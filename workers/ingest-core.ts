/**
 * The per-record work of the ingest pipeline, the same code whether it runs in a piscina worker
 * or inline (FLEETGATE_WORKERS=0): decode RawData, build one MQData per record (bodies spliced),
 * attach the acceptance identity, and produce to Kafka — or hand the records back packed so the
 * main thread can spool them when Kafka did not take them.
 *
 * A produce task carries several RawData (what the pipeline accepted while its task slots were taken,
 * see pipeline.ts) so a worker hand-off and a producer call serve them all; each RawData becomes
 * one record set (record-set.ts: its records encoded once, straight from the RawData) and each
 * gets its own result. The spool path (`build`, and a failed produce) packs the records with
 * `acceptRecords` + `packRecords`, byte for byte the spool entries of before.
 */

import { grpc } from '../proto/gen/elkeid.js';
import type { RecordProducer } from './kafka/producer.js';
import type { RecordSet } from './kafka/record-batch.js';
import { buildMqRecords } from './mqdata.js';
import { readRawWire } from './raw-wire.js';
import { buildRecordSet } from './record-set.js';
import {
  type AcceptedRecord,
  decodeEnvelope,
  HEADER_GW,
  HEADER_SEQ,
  packRecords,
  unpackSpoolEntries,
} from './spool-entry.js';

/** One accepted RawData. */
export interface AcceptItem {
  /** The decompressed RawData message (an ArrayBuffer when it crosses to a worker). */
  message: ArrayBuffer | Uint8Array;
  receivedAt: number;
  /** The sequence number of its first record. */
  seq0: number;
  tag: string;
}

export interface BuildTask extends AcceptItem {
  kind: 'build';
  /** Gateway instance identity. */
  gw: string;
}
export interface ProduceTask {
  kind: 'produce';
  gw: string;
  items: AcceptItem[];
}
export interface ShipTask {
  kind: 'ship';
  /** Spool entries packed by packSpoolEntries. */
  packed: ArrayBuffer;
}
export type IngestTask = BuildTask | ProduceTask | ShipTask;

/** The outcome for one RawData of a produce task. */
export type ItemResult =
  | { kind: 'built'; packed: ArrayBuffer; count: number }
  | { kind: 'produced'; count: number }
  | { kind: 'failed'; error: string; packed: ArrayBuffer; count: number }
  | { kind: 'error'; error: string };

export type IngestResult =
  | { kind: 'built'; packed: ArrayBuffer; count: number }
  | { kind: 'items'; results: ItemResult[] }
  | { kind: 'failed'; error: string; count: number }
  | { kind: 'shipped'; count: number };

function bytesOf(message: ArrayBuffer | Uint8Array): Uint8Array {
  return message instanceof Uint8Array ? message : new Uint8Array(message);
}

export function acceptRecords(item: AcceptItem, gw: string): AcceptedRecord[] {
  return buildMqRecords(grpc.RawData.decode(bytesOf(item.message)), item.receivedAt, item.tag).map(
    (r, i) => ({
      key: r.key,
      gw,
      seq: item.seq0 + i,
      value: r.value,
    }),
  );
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
  const connected = async () => {
    if (!producer!.connected) await producer!.connect();
  };

  const produce = async (task: ProduceTask): Promise<IngestResult> => {
    const { gw, items } = task;
    const results: ItemResult[] = new Array(items.length);
    const sets: RecordSet[] = [];
    const built: number[] = [];
    for (let i = 0; i < items.length; i++) {
      try {
        const item = items[i]!;
        if (!producer) {
          const records = acceptRecords(item, gw);
          results[i] = { kind: 'built', packed: packRecords(records), count: records.length };
          continue;
        }
        sets.push(
          buildRecordSet(readRawWire(bytesOf(item.message)), item.receivedAt, item.tag, gw, item.seq0),
        );
        built.push(i);
      } catch (err) {
        results[i] = { kind: 'error', error: (err as Error).message };
      }
    }
    if (sets.length === 0) return { kind: 'items', results };
    try {
      await connected();
      await producer!.sendSets(sets);
      for (const [j, i] of built.entries()) results[i] = { kind: 'produced', count: sets[j]!.count };
    } catch (err) {
      // Kafka did not take them: the caller spools them, in order, before the agent sends more.
      const error = (err as Error).message;
      for (const i of built) {
        const records = acceptRecords(items[i]!, gw);
        results[i] = { kind: 'failed', error, packed: packRecords(records), count: records.length };
      }
    }
    return { kind: 'items', results };
  };

  return {
    async run(task: IngestTask): Promise<IngestResult> {
      if (task.kind === 'ship') {
        const records = unpackSpoolEntries(task.packed).map((e) => decodeEnvelope(e.key, e.value));
        if (!producer)
          return { kind: 'failed', error: 'no Kafka producer configured', count: records.length };
        try {
          await connected();
          await producer.send(toKafka(records));
          return { kind: 'shipped', count: records.length };
        } catch (err) {
          return { kind: 'failed', error: (err as Error).message, count: records.length };
        }
      }
      if (task.kind === 'produce') return produce(task);
      const records = acceptRecords(task, task.gw);
      return { kind: 'built', packed: packRecords(records), count: records.length };
    },
    async close(): Promise<void> {
      await producer?.disconnect();
    },
  };
}
