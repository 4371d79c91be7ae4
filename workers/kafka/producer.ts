/**
 * The Kafka producer of agent records (topic `hids_svr`, protobuf MQData, key = AgentID), on
 * kafkajs, with the guarantees the ingest pipeline builds on:
 *
 * - acks = all (-1) for every record. Elkeid's sarama producer uses acks=1; we are stricter.
 * - Records are encoded once, into record sets (record-batch.ts): `send` makes one per run of
 *   records with the same key, `sendSets` takes them ready-made (the ingest worker builds one
 *   per RawData). kafkajs gets one message per set, so its partitioner runs once per set with
 *   the set's key (the same function, hence the same partition, as per record), and our
 *   single-pass Produce encoder (produce-hook.ts) writes the sets' records into the request,
 *   byte for byte what kafkajs' own encoder writes. If the hook cannot be installed (another
 *   kafkajs version), the sets are handed to kafkajs as plain messages, with a warning.
 * - Linger batching: kafkajs turns every `producer.send` into its own Produce request, so
 *   records of concurrent `send` calls are collected here for up to `lingerMs` (or until
 *   `maxBatchBytes`) and go out as one `sendBatch` (one Produce request per leader broker);
 *   every caller of that batch is resolved or rejected with it. A set is never split across
 *   batches. With `lingerMs` 0 (the ingest pipeline's) a batch goes out at once, and what
 *   arrives while it is in flight goes out together when it is acknowledged.
 * - Order per key. One batch is in flight at a time, and kafkajs gets `maxInFlightRequests: 1`
 *   too: without idempotence (kafkajs' idempotent mode is "experimental", with known
 *   OUT_OF_ORDER_SEQUENCE_NUMBER bugs, kafkajs #598), a retried request can only overtake a
 *   later one if both are in flight, so one in flight keeps every partition, hence every agent,
 *   in order. And a failure fails everything pending: when a batch fails or a call passes its
 *   deadline, every call in flight or queued at that moment is rejected and its queued records
 *   are never sent, so no record queued behind a failed one can reach Kafka ahead of the failed
 *   one's re-send by the caller. One request per round trip is plenty: a 1 MiB batch per ~5 ms
 *   round trip on a LAN is ~200 MB/s.
 * - At-least-once: kafkajs re-sends a whole Produce request when any of its partitions fails
 *   (e.g. NOT_LEADER_OR_FOLLOWER during a leader change), which duplicates the partitions that
 *   had succeeded. And a request whose outcome is unknown (timed out, connection lost) may
 *   still be appended later, by a broker that wakes up or drains its socket, even after records
 *   sent since; no client can prevent that without broker-side idempotence. Records are never
 *   lost silently (a send resolves only on acks=all); duplicates, and after a timeout a late
 *   copy, are possible, which is why the pipeline puts (gateway, sequence) headers on them.
 * - A bounded time to fail. Every `send` settles within `deliveryTimeoutMs` of its call (like
 *   the Java client's `delivery.timeout.ms`), so the caller can spool instead of hanging:
 *
 *       deliveryTimeoutMs = lingerMs + requestTimeoutMs + 2000      (defaults: 12,005 ms)
 *
 *   i.e. the linger, one full request timeout and 2 s for connecting (1 s connection timeout)
 *   and the retry back-offs. kafkajs retries twice (`retry.retries: 2`, back-off ≈250 ms then
 *   ≈500 ms), so a broker that refuses connections (process dead, host up) is reported by
 *   kafkajs itself after about 1 s; a broker that accepts and then says nothing, or a lost
 *   network, hits the deadline (`KafkaDeliveryTimeoutError`). When a batch in flight hits it,
 *   the kafkajs connections are dropped and the next send connects afresh (test:
 *   test/integration/kafka-producer.test.ts, with a broker frozen by SIGSTOP).
 *
 * Parts: connection.ts (the kafkajs client, connect and reset), batch-queue.ts (linger batching,
 * one batch in flight, deadlines), delivery.ts (errors, deadline helper); this file checks the
 * options and assembles them.
 */

import type { Producer } from 'kafkajs';
import kafkajs from 'kafkajs';
import { BatchQueue } from './batch-queue.js';
import { registerCodecs } from './codecs.js';
import { KafkaConnection, type ProducerLogger } from './connection.js';
import { ProducerClosedError, withDeadline } from './delivery.js';
import type { PartitionerKind } from './partitioners.js';
import { installProduceEncoder } from './produce-hook.js';
import { encodeRecordSet, type RecordSet } from './record-batch.js';

export type { ProducerLogger } from './connection.js';
export { KafkaDeliveryTimeoutError, ProducerClosedError } from './delivery.js';

const { CompressionTypes } = kafkajs;

export type CompressionName = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

export interface ProducerOptions {
  brokers: string[];
  clientId: string;
  topic: string;
  compression: CompressionName;
  partitioner: PartitionerKind;
  /**
   * TLS to the brokers (kafkajs' `ssl`): true verifies them against Node's default CAs (enough
   * for Amazon MSK, whose broker certificates chain to Amazon Trust Services); `{ ca }` against
   * the given PEM certificates; `cert` and `key` are presented to brokers that authenticate
   * clients (mutual TLS). Plain data, so it crosses to the ingest workers as it is.
   */
  ssl?: boolean | { ca?: string[]; cert?: string; key?: string } | undefined;
  /** How long a batch collects records before it is sent; default 5 ms. */
  lingerMs?: number | undefined;
  /** A batch is sent as soon as it holds this many (estimated, uncompressed) bytes; default 1 MiB. */
  maxBatchBytes?: number | undefined;
  /** Per request, and the broker's ack timeout of a Produce request; default 10,000 ms. */
  requestTimeoutMs?: number | undefined;
  /**
   * Compress batches on the calling thread with the codec's synchronous function (lz4, snappy)
   * instead of the thread pool: cheaper per batch, and right on a worker thread, whose event
   * loop has nothing else to do meanwhile; default false (zstd and gzip are always async).
   */
  syncCompression?: boolean | undefined;
  /**
   * Who encodes Produce requests: our single-pass encoder inside kafkajs (produce-hook.ts; the
   * default), or kafkajs' own — what the producer falls back to, with a warning, when the hook
   * cannot be installed (another kafkajs version). For comparison and tests.
   */
  produceEncoder?: 'fleetgate' | 'kafkajs' | undefined;
  logger?: ProducerLogger | undefined;
}

export interface ProducerRecord {
  /** The AgentID; it chooses the partition. */
  key: string;
  value: Uint8Array;
  headers?: Record<string, string | Buffer>;
}

export interface RecordProducer {
  /** Connects to the cluster (fetches metadata); shared by concurrent callers. `send` connects by itself too. */
  connect(): Promise<void>;
  /**
   * Resolves when the broker acknowledged every record with acks=all, rejects if any was not
   * (then none, some or all of them may have been written), within `deliveryTimeoutMs`.
   */
  send(records: ReadonlyArray<ProducerRecord>): Promise<void>;
  /**
   * `send` for records encoded already (record-batch.ts: one set per key run, e.g. one agent's
   * RawData). Same guarantees; the sets are queued in order and each set's records stay together.
   */
  sendSets(sets: ReadonlyArray<RecordSet>): Promise<void>;
  /** Sends what is queued (without lingering), waits for it (bounded), then disconnects. */
  disconnect(): Promise<void>;
  /** True after a successful connect, false again after a failed send or a disconnect. */
  readonly connected: boolean;
  /** The bound on the time from `send` to its settling (see the module comment). */
  readonly deliveryTimeoutMs: number;
  /** The kafkajs producer, for instrumentation events (`producer.events.REQUEST`); do not send with it. */
  readonly kafkajsProducer: Producer;
}

export const DEFAULT_LINGER_MS = 5;
export const DEFAULT_MAX_BATCH_BYTES = 1024 * 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Slack of the delivery deadline for connecting and the retry back-offs. */
const DEADLINE_SLACK_MS = 2000;

const COMPRESSION: Record<CompressionName, number> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

function toBuffer(v: Uint8Array): Buffer {
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** Records → record sets, one per run of records with the same key (order kept). */
export function recordSetsOf(records: ReadonlyArray<ProducerRecord>): RecordSet[] {
  const plain = records.map((r) => ({ key: r.key, value: toBuffer(r.value), headers: r.headers }));
  const sets: RecordSet[] = [];
  for (let i = 0; i < plain.length; ) {
    const key = plain[i]!.key;
    let j = i + 1;
    while (j < plain.length && plain[j]!.key === key) j++;
    sets.push(encodeRecordSet(key, plain, i, j));
    i = j;
  }
  return sets;
}

function numberOption(name: string, v: number | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v < min) throw new RangeError(`${name} must be a number >= ${min}, got ${v}`);
  return v;
}

/** The options, checked, with their defaults and the delivery timeout derived from them. */
function resolveTimings(opts: ProducerOptions) {
  if (!opts.brokers.length) throw new RangeError('brokers must not be empty');
  if (!(opts.compression in COMPRESSION)) throw new RangeError(`unknown compression ${opts.compression}`);
  const lingerMs = numberOption('lingerMs', opts.lingerMs, DEFAULT_LINGER_MS, 0);
  const maxBatchBytes = numberOption('maxBatchBytes', opts.maxBatchBytes, DEFAULT_MAX_BATCH_BYTES, 1);
  const requestTimeoutMs = numberOption(
    'requestTimeoutMs',
    opts.requestTimeoutMs,
    DEFAULT_REQUEST_TIMEOUT_MS,
    100,
  );
  return {
    lingerMs,
    maxBatchBytes,
    requestTimeoutMs,
    deliveryTimeoutMs: lingerMs + requestTimeoutMs + DEADLINE_SLACK_MS,
  };
}

/** Whether kafkajs encodes our record sets itself (as plain messages): asked for, or our hook failed. */
function kafkajsEncodesFor(opts: ProducerOptions): Promise<boolean> {
  if (opts.produceEncoder === 'kafkajs') return Promise.resolve(true);
  return installProduceEncoder().then((hook) => {
    if (hook.installed) return false;
    opts.logger?.warn(
      { reason: hook.reason },
      "Produce requests are encoded by kafkajs' own encoder (slower): our encoder is not installed",
    );
    return true;
  });
}

export function createRecordProducer(opts: ProducerOptions): RecordProducer {
  const timings = resolveTimings(opts);
  const { deliveryTimeoutMs, requestTimeoutMs } = timings;
  const { logger } = opts;
  if (opts.compression === 'snappy' || opts.compression === 'lz4' || opts.compression === 'zstd')
    registerCodecs();
  const kafkajsEncodes = kafkajsEncodesFor(opts);
  const connection = new KafkaConnection({
    brokers: opts.brokers,
    clientId: opts.clientId,
    partitioner: opts.partitioner,
    ssl: opts.ssl,
    requestTimeoutMs,
    deliveryTimeoutMs,
    logger,
  });
  const batches = new BatchQueue(
    {
      ...timings,
      topic: opts.topic,
      compression: COMPRESSION[opts.compression],
      syncCompression: opts.syncCompression ?? false,
      kafkajsEncodes,
      logger,
    },
    connection,
  );
  const closedError = () => new ProducerClosedError('the Kafka producer is closed');

  const sendSets = (sets: ReadonlyArray<RecordSet>): Promise<void> => {
    if (connection.closing) return Promise.reject(closedError());
    return batches.enqueue(sets);
  };

  const send = (records: ReadonlyArray<ProducerRecord>): Promise<void> => {
    if (connection.closing) return Promise.reject(closedError());
    if (records.length === 0) return Promise.resolve();
    let sets: RecordSet[];
    try {
      sets = recordSetsOf(records);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return batches.enqueue(sets);
  };

  const disconnect = async (): Promise<void> => {
    connection.closing = true;
    if (batches.busy) {
      // Every queued call settles within deliveryTimeoutMs; the race is for a stuck kafkajs.
      await withDeadline(batches.flush(), deliveryTimeoutMs + 1000, 'flushing before disconnect').catch(
        (err: unknown) => logger?.warn({ err }, 'Kafka producer disconnects with records in flight'),
      );
    }
    await connection.close();
  };

  return {
    connect: async () => {
      if (connection.closing) throw closedError();
      await connection.ensureConnected();
    },
    send,
    sendSets,
    disconnect,
    get connected() {
      return connection.connected;
    },
    deliveryTimeoutMs,
    kafkajsProducer: connection.producer,
  };
}
