/**
 * Linger batching with one batch in flight (producer.ts explains why): the record sets of
 * concurrent sends are queued, go out together after `lingerMs` or at `maxBatchBytes`, and each
 * call settles when all its sets are acknowledged, or fails with everything pending when a batch
 * fails or a call passes its delivery deadline.
 */

import type { Message } from 'kafkajs';
import type { KafkaConnection, ProducerLogger } from './connection.js';
import { KafkaDeliveryTimeoutError } from './delivery.js';
import { expandMessages, RecordSetMessage } from './produce-hook.js';
import type { RecordSet } from './record-batch.js';

/** Record bytes in a v2 batch beyond a set's data: length, attributes, timestamp and offset deltas. */
const RECORD_PREFIX = 8;

export interface BatchQueueOptions {
  topic: string;
  /** kafkajs' CompressionTypes value. */
  compression: number;
  lingerMs: number;
  maxBatchBytes: number;
  requestTimeoutMs: number;
  deliveryTimeoutMs: number;
  syncCompression: boolean;
  /** Whether kafkajs encodes our record sets itself (as plain messages). */
  kafkajsEncodes: Promise<boolean>;
  logger?: ProducerLogger | undefined;
}

/** One `send`/`sendSets` call. */
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

function settle(call: Call, err?: Error): void {
  if (call.done) return;
  call.done = true;
  if (call.timer) clearTimeout(call.timer);
  if (err) call.reject(err);
  else call.resolve();
}

export class BatchQueue {
  private readonly queue: Entry[] = [];
  private queuedBytes = 0;
  private oldestQueuedAt = 0;
  private inFlight: Promise<void> | undefined;
  private inFlightCalls = new Set<Call>();
  private lingerTimer: NodeJS.Timeout | undefined;
  /** Set for the final flush: queued records go out without lingering. */
  private flushing = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly opts: BatchQueueOptions,
    private readonly connection: KafkaConnection,
  ) {}

  get busy(): boolean {
    return this.queue.length > 0 || this.inFlight !== undefined;
  }

  /** Queues the non-empty sets as one call; settles when all are acknowledged or on failure. */
  enqueue(sets: ReadonlyArray<RecordSet>): Promise<void> {
    let nonEmpty = 0;
    for (const set of sets) if (set.count > 0) nonEmpty++;
    if (nonEmpty === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const call: Call = { remaining: nonEmpty, done: false, resolve, reject, timer: undefined };
      call.timer = setTimeout(() => this.onDeadline(call), this.opts.deliveryTimeoutMs);
      if (this.queue.length === 0) this.oldestQueuedAt = Date.now();
      for (const set of sets) {
        if (set.count === 0) continue;
        const bytes = setBytes(set);
        this.queue.push({ message: new RecordSetMessage(set, this.opts.syncCompression), bytes, call });
        this.queuedBytes += bytes;
      }
      this.schedule();
    });
  }

  /** Sends what is queued without lingering; resolves when nothing is queued or in flight. */
  flush(): Promise<void> {
    this.flushing = true;
    const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.schedule();
    return idle;
  }

  private onDeadline(call: Call): void {
    if (call.done) return;
    if (this.inFlightCalls.has(call))
      this.connection.reset('a Produce request outlived the delivery timeout');
    this.failPending(
      new KafkaDeliveryTimeoutError(
        `Kafka did not acknowledge a send within ${this.opts.deliveryTimeoutMs} ms (all pending sends fail with it)`,
      ),
    );
    this.schedule();
  }

  /** Rejects every call in flight or queued; their queued records are skipped, never sent. */
  private failPending(err: Error): void {
    for (const call of this.inFlightCalls) settle(call, err);
    for (const entry of this.queue) settle(entry.call, err);
  }

  private schedule(): void {
    if (this.inFlight) return;
    const { queue } = this;
    // Drop the head entries of calls that already failed or timed out.
    while (queue.length > 0 && queue[0]!.call.done) this.queuedBytes -= queue.shift()!.bytes;
    if (queue.length === 0) {
      this.queuedBytes = 0;
      this.clearLinger();
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
      return;
    }
    const wait =
      this.flushing || this.queuedBytes >= this.opts.maxBatchBytes
        ? 0
        : this.oldestQueuedAt + this.opts.lingerMs - Date.now();
    if (wait <= 0) {
      this.clearLinger();
      this.dispatch();
    } else if (!this.lingerTimer) {
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = undefined;
        this.schedule();
      }, wait);
    }
  }

  private clearLinger(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
  }

  /** Takes the next batch off the queue (never splitting a set) and sends it. */
  private dispatch(): void {
    const { queue } = this;
    const batch: Entry[] = [];
    let bytes = 0;
    let taken = 0;
    for (; taken < queue.length; taken++) {
      const entry = queue[taken]!;
      if (entry.call.done) continue;
      if (batch.length > 0 && bytes + entry.bytes > this.opts.maxBatchBytes) break;
      batch.push(entry);
      bytes += entry.bytes;
    }
    for (const entry of queue.splice(0, taken)) this.queuedBytes -= entry.bytes;
    this.oldestQueuedAt = Date.now(); // what stays queued has waited while this batch went out
    this.inFlightCalls = new Set(batch.map((entry) => entry.call));
    this.inFlight = this.sendBatch(batch, bytes).finally(() => {
      this.inFlight = undefined;
      this.inFlightCalls = new Set();
      this.schedule();
    });
  }

  private async sendBatch(batch: Entry[], bytes: number): Promise<void> {
    const { opts, connection } = this;
    try {
      if (!connection.connected) await connection.ensureConnected();
      const sets = batch.map((entry) => entry.message);
      const messages = (await opts.kafkajsEncodes) ? (expandMessages(sets) as Message[]) : sets;
      await connection.producer.sendBatch({
        topicMessages: [{ topic: opts.topic, messages }],
        acks: -1,
        timeout: opts.requestTimeoutMs,
        compression: opts.compression,
      });
      for (const entry of batch) {
        entry.call.remaining--;
        if (entry.call.remaining === 0) settle(entry.call);
      }
    } catch (err) {
      connection.connected = false;
      const error = err instanceof Error ? err : new Error(String(err));
      const records = batch.reduce((n, entry) => n + entry.message.set.count, 0);
      opts.logger?.warn({ err: error, records, bytes }, 'Kafka send failed');
      this.failPending(error);
    }
  }
}
