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
 */

import type { LogEntry, logLevel as LogLevel, Message, Producer } from 'kafkajs';
import kafkajs from 'kafkajs';
import { registerCodecs } from './codecs.js';
import { createPartitioner, type PartitionerKind } from './partitioners.js';
import { expandMessages, installProduceEncoder, RecordSetMessage } from './produce-hook.js';
import { encodeRecordSet, type RecordSet } from './record-batch.js';

const { CompressionTypes, Kafka, logLevel } = kafkajs;

export type CompressionName = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

type LogFn = (obj: Record<string, unknown>, msg?: string) => void;

/** The part of a pino logger used here. */
export interface ProducerLogger {
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  debug: LogFn;
  /** pino's; when present and true for 'debug', kafkajs' debug logs are produced too. */
  isLevelEnabled?: (level: string) => boolean;
}

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

/** `send` did not settle within `deliveryTimeoutMs`. */
export class KafkaDeliveryTimeoutError extends Error {
  override name = 'KafkaDeliveryTimeoutError';
}

/** `send` after `disconnect`. */
export class ProducerClosedError extends Error {
  override name = 'ProducerClosedError';
}

export const DEFAULT_LINGER_MS = 5;
export const DEFAULT_MAX_BATCH_BYTES = 1024 * 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** TCP connect + ApiVersions per attempt (kafkajs' default; brokers are on the LAN). */
const CONNECTION_TIMEOUT_MS = 1000;
/** Slack of the delivery deadline for connecting and the retry back-offs. */
const DEADLINE_SLACK_MS = 2000;
const RETRY = { retries: 2, initialRetryTime: 250, maxRetryTime: 1000, factor: 0.2, multiplier: 2 };
/** Record bytes in a v2 batch beyond a set's data: length, attributes, timestamp and offset deltas. */
const RECORD_PREFIX = 8;

const COMPRESSION: Record<CompressionName, number> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

interface Call {
  /** Entries (record sets) of the call not yet acknowledged. */
  remaining: number;
  done: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/** One record set of a call: the unit of queueing, batching and partitioning. */
interface Entry {
  message: RecordSetMessage;
  bytes: number;
  call: Call;
}

function setBytes(set: RecordSet): number {
  return set.data.length + set.count * RECORD_PREFIX;
}

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

/** kafkajs log entries → the pino-style logger (namespace and kafkajs fields as bindings). */
function logCreatorFor(logger: ProducerLogger) {
  return (_level: LogLevel) =>
    ({ namespace, level, log }: LogEntry): void => {
      const { message, timestamp: _t, logger: _l, ...fields } = log;
      const obj = { kafkajs: namespace, ...fields };
      const msg = `kafkajs: ${message}`;
      if (level === logLevel.ERROR) logger.error(obj, msg);
      else if (level === logLevel.WARN) logger.warn(obj, msg);
      else if (level === logLevel.INFO) logger.info(obj, msg);
      else logger.debug(obj, msg);
    };
}

export function createRecordProducer(opts: ProducerOptions): RecordProducer {
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
  const deliveryTimeoutMs = lingerMs + requestTimeoutMs + DEADLINE_SLACK_MS;
  const compression = COMPRESSION[opts.compression];
  const { topic, logger } = opts;
  const syncCompression = opts.syncCompression ?? false;
  if (opts.compression === 'snappy' || opts.compression === 'lz4' || opts.compression === 'zstd')
    registerCodecs();
  /** Whether kafkajs encodes our record sets itself (as plain messages). */
  const kafkajsEncodes: Promise<boolean> =
    opts.produceEncoder === 'kafkajs'
      ? Promise.resolve(true)
      : installProduceEncoder().then((hook) => {
          if (hook.installed) return false;
          logger?.warn(
            { reason: hook.reason },
            "Produce requests are encoded by kafkajs' own encoder (slower): our encoder is not installed",
          );
          return true;
        });

  const kafka = new Kafka({
    clientId: opts.clientId,
    brokers: opts.brokers,
    ...(opts.ssl ? { ssl: opts.ssl } : {}),
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    requestTimeout: requestTimeoutMs,
    enforceRequestTimeout: true,
    retry: RETRY,
    logLevel: !logger ? logLevel.NOTHING : logger.isLevelEnabled?.('debug') ? logLevel.DEBUG : logLevel.INFO,
    ...(logger ? { logCreator: logCreatorFor(logger) } : {}),
  });
  const producer = kafka.producer({
    createPartitioner: createPartitioner(opts.partitioner),
    idempotent: false,
    maxInFlightRequests: 1,
    retry: RETRY,
  });

  let connected = false;
  let closing = false;
  /** The pending kafkajs connect, shared (it outlives a connect() that gave up waiting). */
  let kConnect: Promise<void> | undefined;
  /** A kafkajs disconnect after a reset; a new connect waits for it. */
  let kDisconnect: Promise<void> | undefined;
  const queue: Entry[] = [];
  let queuedBytes = 0;
  let oldestQueuedAt = 0;
  let inFlight: Promise<void> | undefined;
  let inFlightCalls = new Set<Call>();
  let lingerTimer: NodeJS.Timeout | undefined;
  let flushing = false;
  let idleWaiters: Array<() => void> = [];

  const settle = (call: Call, err?: Error): void => {
    if (call.done) return;
    call.done = true;
    if (call.timer) clearTimeout(call.timer);
    if (err) call.reject(err);
    else call.resolve();
  };

  /** Rejects every call in flight or queued; their queued records are skipped, never sent. */
  const failPending = (err: Error): void => {
    for (const c of inFlightCalls) settle(c, err);
    for (const e of queue) settle(e.call, err);
  };

  const withDeadline = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new KafkaDeliveryTimeoutError(`${what} took longer than ${ms} ms`)),
        ms,
      );
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  };

  const connect = async (): Promise<void> => {
    if (closing) throw new ProducerClosedError('the Kafka producer is closed');
    await ensureConnected();
  };

  /** connect() without the closed check: disconnect() still flushes what was queued. */
  const ensureConnected = async (): Promise<void> => {
    if (connected) return;
    if (!kConnect) {
      const after = kDisconnect ?? Promise.resolve();
      kConnect = after
        .then(() => producer.connect())
        .then(
          () => {
            kConnect = undefined;
            if (!closing) connected = true;
          },
          (err: unknown) => {
            kConnect = undefined;
            throw err;
          },
        );
    }
    await withDeadline(kConnect, deliveryTimeoutMs, 'connecting to Kafka');
  };

  /** Drops the connections after an indefinite failure, so the next send connects afresh. */
  const resetConnection = (why: string): void => {
    if (kDisconnect) return;
    connected = false;
    logger?.warn({ brokers: opts.brokers, why }, 'resetting the Kafka connection');
    kDisconnect = withDeadline(producer.disconnect(), requestTimeoutMs, 'disconnecting from Kafka')
      .catch((err: unknown) => logger?.warn({ err }, 'kafkajs disconnect failed'))
      .finally(() => {
        kDisconnect = undefined;
      });
  };

  const schedule = (): void => {
    if (inFlight) return;
    // Drop the head entries of calls that already failed or timed out.
    while (queue.length > 0 && queue[0]!.call.done) queuedBytes -= queue.shift()!.bytes;
    if (queue.length === 0) {
      queuedBytes = 0;
      if (lingerTimer) clearTimeout(lingerTimer);
      lingerTimer = undefined;
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
      return;
    }
    const wait = flushing || queuedBytes >= maxBatchBytes ? 0 : oldestQueuedAt + lingerMs - Date.now();
    if (wait <= 0) {
      if (lingerTimer) clearTimeout(lingerTimer);
      lingerTimer = undefined;
      dispatch();
    } else if (!lingerTimer) {
      lingerTimer = setTimeout(() => {
        lingerTimer = undefined;
        schedule();
      }, wait);
    }
  };

  const dispatch = (): void => {
    const batch: Entry[] = [];
    let bytes = 0;
    let taken = 0;
    for (; taken < queue.length; taken++) {
      const e = queue[taken]!;
      if (e.call.done) continue;
      if (batch.length > 0 && bytes + e.bytes > maxBatchBytes) break;
      batch.push(e);
      bytes += e.bytes;
    }
    for (const e of queue.splice(0, taken)) queuedBytes -= e.bytes;
    oldestQueuedAt = Date.now(); // what stays queued has waited while this batch went out
    const calls = new Set(batch.map((e) => e.call));
    inFlightCalls = calls;
    inFlight = (async () => {
      try {
        if (!connected) await ensureConnected();
        const sets = batch.map((e) => e.message);
        const messages = (await kafkajsEncodes) ? (expandMessages(sets) as Message[]) : sets;
        await producer.sendBatch({
          topicMessages: [{ topic, messages }],
          acks: -1,
          timeout: requestTimeoutMs,
          compression,
        });
        for (const e of batch) {
          e.call.remaining--;
          if (e.call.remaining === 0) settle(e.call);
        }
      } catch (err) {
        connected = false;
        const error = err instanceof Error ? err : new Error(String(err));
        const records = batch.reduce((n, e) => n + e.message.set.count, 0);
        logger?.warn({ err: error, records, bytes }, 'Kafka send failed');
        failPending(error);
      }
    })().finally(() => {
      inFlight = undefined;
      inFlightCalls = new Set();
      schedule();
    });
  };

  const sendSets = (sets: ReadonlyArray<RecordSet>): Promise<void> => {
    if (closing) return Promise.reject(new ProducerClosedError('the Kafka producer is closed'));
    let nonEmpty = 0;
    for (const set of sets) if (set.count > 0) nonEmpty++;
    if (nonEmpty === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const call: Call = {
        remaining: nonEmpty,
        done: false,
        resolve,
        reject,
        timer: undefined,
      };
      call.timer = setTimeout(() => {
        if (call.done) return;
        if (inFlightCalls.has(call)) resetConnection('a Produce request outlived the delivery timeout');
        failPending(
          new KafkaDeliveryTimeoutError(
            `Kafka did not acknowledge a send within ${deliveryTimeoutMs} ms (all pending sends fail with it)`,
          ),
        );
        schedule();
      }, deliveryTimeoutMs);
      if (queue.length === 0) oldestQueuedAt = Date.now();
      for (const set of sets) {
        if (set.count === 0) continue;
        const bytes = setBytes(set);
        queue.push({ message: new RecordSetMessage(set, syncCompression), bytes, call });
        queuedBytes += bytes;
      }
      schedule();
    });
  };

  const send = (records: ReadonlyArray<ProducerRecord>): Promise<void> => {
    if (closing) return Promise.reject(new ProducerClosedError('the Kafka producer is closed'));
    if (records.length === 0) return Promise.resolve();
    let sets: RecordSet[];
    try {
      sets = recordSetsOf(records);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return sendSets(sets);
  };

  const disconnect = async (): Promise<void> => {
    closing = true;
    flushing = true;
    if (queue.length > 0 || inFlight) {
      // Every queued call settles within deliveryTimeoutMs; the race is for a stuck kafkajs.
      const idle = new Promise<void>((resolve) => idleWaiters.push(resolve));
      schedule();
      await withDeadline(idle, deliveryTimeoutMs + 1000, 'flushing before disconnect').catch((err: unknown) =>
        logger?.warn({ err }, 'Kafka producer disconnects with records in flight'),
      );
    }
    connected = false;
    await withDeadline(producer.disconnect(), requestTimeoutMs, 'disconnecting from Kafka').catch(
      (err: unknown) => logger?.warn({ err }, 'kafkajs disconnect failed'),
    );
  };

  return {
    connect,
    send,
    sendSets,
    disconnect,
    get connected() {
      return connected;
    },
    deliveryTimeoutMs,
    kafkajsProducer: producer,
  };
}
