/**
 * The ingest pipeline: accepted agent batches go to Kafka through worker threads, and to the
 * durable spool whenever Kafka does not take them (down, slow, not configured). While the
 * spool holds records, new records are appended behind them and a shipper sends the spool to
 * Kafka in order; when it has caught up, records go straight to Kafka again. An agent has one
 * batch in flight at a time (its stream waits for `write`), so its records stay in order across
 * every switch.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { backoffDelay } from '../../platform/backoff.js';
import { DEFAULT_INGEST_BATCH_WINDOW_MS } from '../../platform/config/env.js';
import type { Logger } from '../../platform/obs/logger.js';
import type { Metrics } from '../../platform/obs/metrics.js';
import {
  type AcceptItem,
  createIngestCore,
  type IngestResult,
  type IngestTask,
  type ItemResult,
  type ProduceTask,
} from '../../workers/ingest-core.js';
import type { IngestWorkerData } from '../../workers/ingest-worker.js';
import { installProduceEncoder } from '../../workers/kafka/produce-hook.js';
import { createRecordProducer, type ProducerOptions } from '../../workers/kafka/producer.js';
import { packSpoolEntries, unpackSpoolEntries } from '../../workers/spool-entry.js';
import type { IngestBatch, IngestSink, SinkHealth } from './sink.js';
import type { Spool, SpoolDiskError } from './spool.js';

export interface PipelineOptions {
  spool: Spool;
  /** Undefined: spool-only (records wait in the spool for `fleetgate spool replay`). */
  kafka: Omit<ProducerOptions, 'logger'> | undefined;
  /** Worker threads; 0 runs the same code inline on the main thread. */
  workers: number;
  /** This gateway instance's identity in the `fleetgate-gw` header. */
  gatewayId: string;
  metrics: Metrics;
  logger: Logger;
  /** Comma-joined tags of an agent for MQData.Tag (the manager fills it); '' when unknown. */
  tagsOf?: (agentId: string) => string;
  /** Entries per ship request and the retry back-off bounds. */
  shipBatch?: number;
  /**
   * How long a batch may wait on the main thread for others to join its produce task (default
   * BATCH_WINDOW_MS; 0: until the end of the event-loop turn). A task is sent earlier when full.
   */
  batchWindowMs?: number;
  retryMinMs?: number;
  /** Cap of the ship retry back-off: after a long outage Kafka is still probed this often (default 5 s). */
  retryMaxMs?: number;
  /** At most one error log per this interval about spool disk errors (default 10 s). */
  diskErrorLogMs?: number;
}

interface Runner {
  run(task: IngestTask, transfer: ArrayBuffer[]): Promise<IngestResult>;
  close(): Promise<void>;
}

function workerFile(): string {
  // Under tsx (tests) this module is .ts and so is the worker; compiled, both are .js.
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return fileURLToPath(new URL(`../../workers/ingest-worker${ext}`, import.meta.url));
}

/**
 * The pipeline's producer linger when none is configured: none. A produce task already holds
 * every RawData accepted while the task slots were taken (TASKS_PER_WORKER), and while a
 * request is in flight (one at a time) the next records queue behind it and go out together
 * when it is acknowledged; a linger on top only delays them.
 */
export const PIPELINE_LINGER_MS = 0;

function createRunner(workers: number, configured: PipelineOptions['kafka']): Runner {
  const kafka = configured && { ...configured, lingerMs: configured.lingerMs ?? PIPELINE_LINGER_MS };
  if (workers === 0) {
    // Compressing a batch in place (lz4, snappy) costs less CPU than the thread-pool hop, and
    // holds this event loop for about a millisecond per MiB of records.
    const core = createIngestCore(
      kafka ? createRecordProducer({ syncCompression: true, ...kafka }) : undefined,
    );
    return { run: (task) => core.run(task), close: () => core.close() };
  }
  const workerData: IngestWorkerData = { kafka };
  const pool = new Piscina({
    filename: workerFile(),
    workerData,
    minThreads: workers,
    maxThreads: workers,
    idleTimeout: Number.POSITIVE_INFINITY,
    // Tasks wait on Kafka acks most of the time; many in flight per worker let the producer
    // batch records of many agents into one request.
    concurrentTasksPerWorker: 256,
    // piscina's default ('sync') parks an idle worker in Atomics.wait, which also stops its event
    // loop: kafkajs' sockets and timers wait for the next task. Plain messages cost less CPU here
    // (bench:ingest, w=1) and keep the worker's event loop running.
    atomics: 'disabled',
  });
  return {
    run: (task, transfer) => pool.run(task, { transferList: transfer }) as Promise<IngestResult>,
    close: () => pool.destroy(),
  };
}

/**
 * The message in a fresh ArrayBuffer, for transfer to a worker. Always a copy: a single-chunk
 * snappy message (any RawData under 64 KiB) is the native codec's own buffer, and handing such
 * an ArrayBuffer to another thread costs several times this 12 KB copy (measured: 32 messages
 * per post, ~190 µs of CPU transferred as they are, ~45 µs copied first).
 */
function transferableCopy(buf: Uint8Array): ArrayBuffer {
  const ab = uninitializedArrayBuffer(buf.byteLength);
  new Uint8Array(ab).set(buf);
  return ab;
}

/**
 * An ArrayBuffer of its own (transferable), not zero-filled: it is overwritten at once, and
 * `new ArrayBuffer` zeroes it first — a memset and, for large ones, fresh pages faulted in
 * (perf, paced bench:ingest: ~3 % of the gateway's CPU).
 */
function uninitializedArrayBuffer(bytes: number): ArrayBuffer {
  return Buffer.allocUnsafeSlow(bytes).buffer as ArrayBuffer;
}

/**
 * The messages of a produce task copied into one ArrayBuffer, each item's message replaced by a
 * view of it: one allocation and one transfer per task instead of one per RawData (structured
 * clone rebuilds the views on the worker's side over the transferred buffer).
 */
function packMessages(items: AcceptItem[]): ArrayBuffer {
  let total = 0;
  for (const i of items) total += i.message.byteLength;
  const ab = uninitializedArrayBuffer(total);
  const all = new Uint8Array(ab);
  let at = 0;
  for (const i of items) {
    const m = i.message instanceof Uint8Array ? i.message : new Uint8Array(i.message);
    all.set(m, at);
    i.message = new Uint8Array(ab, at, m.byteLength);
    at += m.byteLength;
  }
  return ab;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/**
 * At most this many RawData, and about this many bytes, per produce task. Those accepted while
 * earlier tasks are in flight go to the worker together (one hand-off, one producer call); the
 * bounds keep a task's latency short and leave work for other workers when there are several.
 */
const MAX_TASK_ITEMS = 256;
const MAX_TASK_BYTES = 1024 * 1024;

/**
 * Produce tasks in flight per worker (inline: in all). The producer sends one request at a time
 * and queues what comes meanwhile, so a worker with one task waiting on Kafka and one queued
 * behind it is never idle; what arrives beyond that waits here and goes out as one task when
 * one of them completes. At agent rates (one small RawData per agent every 100 ms) this turns
 * one hand-off per RawData into about one per Kafka round trip (bench:ingest, paced).
 */
const TASKS_PER_WORKER = 2;

/**
 * The default batch window. A RawData waits on the main thread until the oldest pending one has
 * waited this long (or a task is full, or every task slot is taken: then it joins the next task
 * when one settles), so that the batches of agents sending at agent rates (one small RawData
 * every 100 ms each) share a worker hand-off and a Kafka request. bench:ingest paced (100 agents,
 * 1,000 RawData/s, against the pipeline without a window in the same invocation): 20 ms cut the
 * gateway's CPU per record by a third (1.48× the records per CPU-s; 10 ms: 1.19×) and the broker's
 * by half, and send → Kafka p99 was 46 ms (70.8 ms without: less work queues less). An agent that
 * has sent more behind its waiting RawData (ServerCall onBacklog → `hurry`) ends the window at
 * once: it writes faster than one RawData per window, and its next one is read only when this
 * one is accepted, so waiting would cap it at one per window.
 */
export const BATCH_WINDOW_MS = DEFAULT_INGEST_BATCH_WINDOW_MS;

interface Pending {
  item: AcceptItem;
  resolve: (r: ItemResult) => void;
  reject: (err: Error) => void;
}

export class IngestPipeline implements IngestSink {
  readonly name: string;
  readonly #o: PipelineOptions;
  readonly #runner: Runner;
  readonly #log: Logger;
  #seq = 1;
  #spooling: boolean;
  /** Writes that decided to go to the spool and have not finished appending. */
  #spoolBound = 0;
  #inFlight = 0;
  #idle: Array<() => void> = [];
  #shipping: Promise<void> | undefined;
  /** Shipping of adopted spools (shipAdopted) in progress. */
  readonly #adopted = new Set<Promise<boolean>>();
  #closed = false;
  /** RawData waiting for the batch window (or a free task slot) to go out as one produce task. */
  #pending: Pending[] = [];
  #pendingBytes = 0;
  /** performance.now() when the oldest pending RawData arrived. */
  #pendingSince = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  #flushImmediate: NodeJS.Immediate | undefined;
  /** An agent has more behind its pending write (hurry): flush without waiting the window. */
  #hurried = false;
  readonly #windowMs: number;
  /** Produce tasks handed to the runner and not settled (bounded by #maxTasks). */
  #tasksInFlight = 0;
  readonly #maxTasks: number;
  /** Disk errors since the last error log, and when that was (logged once per interval). */
  #diskErrorsUnlogged = 0;
  #diskErrorLoggedAt = 0;
  #wasBlocked = false;

  constructor(o: PipelineOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'ingest' });
    this.#runner = createRunner(o.workers, o.kafka);
    this.#maxTasks = TASKS_PER_WORKER * Math.max(1, o.workers);
    this.#windowMs = o.batchWindowMs ?? BATCH_WINDOW_MS;
    this.name = o.kafka
      ? `kafka ${o.kafka.brokers.join(',')} topic ${o.kafka.topic} (spool ${o.spool.dir})`
      : `spool ${o.spool.dir}`;
    if (o.kafka) {
      // The producers (in the workers, or inline) have no logger: say it here when our Produce
      // encoder does not fit the installed kafkajs (every thread finds the same) and kafkajs'
      // own, slower one is used.
      void installProduceEncoder().then((hook) => {
        if (!hook.installed)
          this.#log.warn(
            { reason: hook.reason },
            "Kafka Produce requests are encoded by kafkajs' own encoder (slower): ours does not fit",
          );
      });
    }
    // Records left in the spool by an earlier run go first.
    this.#spooling = !o.kafka || o.spool.pendingFrom() < o.spool.nextSeq();
    this.#updateGauges();
    if (o.kafka && this.#spooling) this.#startShipper();
  }

  get spooling(): boolean {
    return this.#spooling;
  }

  /**
   * Not ready while the spool cannot take records (full, or its disk failing): the agents here
   * are paused by HTTP/2 flow control, and new ones should go elsewhere.
   */
  health(): SinkHealth {
    const spool = this.#o.spool;
    if (!spool.isFull()) return { ready: true, reasons: [] };
    const err = spool.blockedBy;
    return {
      ready: false,
      reasons: [err ? `spool write failing: ${err.message}` : 'spool full (at its size bound)'],
    };
  }

  /**
   * The spool's disk error listener (SpoolOptions.onDiskError): counted in a metric for each
   * failure, logged at error level at most once per interval with how many happened.
   */
  onDiskError(e: SpoolDiskError): void {
    this.#o.metrics.spoolDiskErrors.inc({ op: e.op, code: e.code });
    if (e.op === 'write') {
      this.#o.metrics.spoolBlocked.set(1);
      this.#wasBlocked = true;
    }
    this.#diskErrorsUnlogged++;
    const now = Date.now();
    if (now - this.#diskErrorLoggedAt < (this.#o.diskErrorLogMs ?? 10_000)) return;
    this.#log.error(
      { op: e.op, code: e.code, err: e.err, failures: this.#diskErrorsUnlogged, spool: this.#o.spool.dir },
      e.op === 'write'
        ? 'spool write failed: agents are paused and records held in memory until it succeeds (retrying)'
        : 'spool ack write failed: shipping continues, the ack is retried',
    );
    this.#diskErrorsUnlogged = 0;
    this.#diskErrorLoggedAt = now;
  }

  async write(batch: IngestBatch): Promise<void> {
    const count = batch.records ?? batch.raw.Data.length;
    if (count === 0) return;
    const seq0 = this.#seq;
    this.#seq += count;
    // Inline, the message stays on this thread: nothing to copy.
    // To a worker, a produce task's messages are copied together when it goes (packMessages).
    const inline = this.#o.workers === 0;
    const direct = !this.#spooling;
    const item: AcceptItem = {
      message: inline || direct ? batch.message : transferableCopy(batch.message),
      receivedAt: batch.receivedAt,
      seq0,
      tag: this.#o.tagsOf?.(batch.agentId) ?? '',
    };
    if (!direct) this.#spoolBound++;
    this.#inFlight++;
    try {
      const result: ItemResult | IngestResult = direct
        ? await this.#produce(item)
        : await this.#runner.run(
            { kind: 'build', gw: this.#o.gatewayId, ...item },
            item.message instanceof ArrayBuffer ? [item.message] : [],
          );
      if (result.kind === 'produced') {
        this.#o.metrics.ingestRecords.inc({ path: 'kafka' }, count);
        return;
      }
      if (result.kind === 'failed') {
        const packed: ArrayBuffer | undefined =
          'packed' in result ? (result.packed as ArrayBuffer) : undefined;
        if (!packed) throw new Error(`ingest task failed without records: ${result.error}`);
        this.#o.metrics.kafkaFailures.inc({ path: 'direct' });
        if (!this.#spooling) {
          this.#log.warn({ err: result.error }, 'Kafka send failed: spooling until it recovers');
          this.#spooling = true;
        }
        this.#spoolBound++;
        await this.#append(packed).finally(() => this.#spoolBound--);
        return;
      }
      if (result.kind === 'built') {
        await this.#append(result.packed);
        return;
      }
      if (result.kind === 'error') throw new Error(`ingest task failed: ${result.error}`);
      throw new Error(`unexpected ingest result ${result.kind}`);
    } finally {
      if (!direct) this.#spoolBound--;
      this.#inFlight--;
      if (this.#inFlight === 0) for (const w of this.#idle.splice(0)) w();
    }
  }

  /**
   * Produces one RawData as part of the next produce task (see MAX_TASK_ITEMS and
   * TASKS_PER_WORKER). Each RawData keeps its own result: produced, or failed with its records
   * packed for the spool. An agent has one write in flight, so its order is unaffected.
   */
  #produce(item: AcceptItem): Promise<ItemResult> {
    return new Promise<ItemResult>((resolve, reject) => {
      if (this.#pending.length === 0 && this.#windowMs > 0) this.#pendingSince = performance.now();
      this.#pending.push({ item, resolve, reject });
      this.#pendingBytes += item.message.byteLength;
      const full = this.#pending.length >= MAX_TASK_ITEMS || this.#pendingBytes >= MAX_TASK_BYTES;
      if (full && this.#tasksInFlight < this.#maxTasks) this.#flushPending();
      else this.#scheduleFlush();
    });
  }

  /**
   * An agent has sent more behind a write that is waiting here: waiting longer for other agents
   * would only hold it back (it writes faster than one RawData per window), so what is pending
   * goes out at the end of this event-loop turn.
   */
  hurry(): void {
    if (this.#pending.length === 0 || this.#hurried) return;
    this.#hurried = true;
    this.#scheduleFlush();
  }

  /**
   * Flushes when the oldest pending RawData has waited the batch window, or at the end of this
   * event-loop turn if it has or the pipeline was hurried, unless every task slot is taken (a
   * settling task flushes then).
   */
  #scheduleFlush(): void {
    if (this.#flushImmediate || this.#pending.length === 0 || this.#tasksInFlight >= this.#maxTasks) return;
    const waitMs = this.#hurried ? 0 : this.#windowMs - (performance.now() - this.#pendingSince);
    if (waitMs >= 1) {
      this.#flushTimer ??= setTimeout(this.#flush, waitMs);
      return;
    }
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#flushImmediate = setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    if (this.#flushImmediate) clearImmediate(this.#flushImmediate);
    this.#flushTimer = undefined;
    this.#flushImmediate = undefined;
    this.#hurried = false;
    this.#flushPending();
  };

  #flushPending(): void {
    while (this.#pending.length > 0 && this.#tasksInFlight < this.#maxTasks) this.#runTask(this.#takeGroup());
  }

  /** The oldest pending RawData, up to the task bounds (at least one). */
  #takeGroup(): Pending[] {
    let n = 0;
    let bytes = 0;
    while (n < this.#pending.length && n < MAX_TASK_ITEMS && (n === 0 || bytes < MAX_TASK_BYTES)) {
      bytes += this.#pending[n]!.item.message.byteLength;
      n++;
    }
    this.#pendingBytes -= bytes;
    const group = this.#pending.splice(0, n);
    // What stays behind (the task was full) goes with the next free task slot, without a new window.
    if (this.#pending.length > 0 && this.#windowMs > 0)
      this.#pendingSince = performance.now() - this.#windowMs;
    return group;
  }

  #runTask(group: Pending[]): void {
    const items = group.map((p) => p.item);
    const task: ProduceTask = { kind: 'produce', gw: this.#o.gatewayId, items };
    const transfer = this.#o.workers === 0 ? [] : [packMessages(items)];
    this.#tasksInFlight++;
    this.#o.metrics.produceTasks.inc();
    const settled = () => {
      this.#tasksInFlight--;
      this.#scheduleFlush();
    };
    this.#runner.run(task, transfer).then(
      (result) => {
        settled();
        if (result.kind !== 'items' || result.results.length !== group.length) {
          const err = new Error(`unexpected ingest result ${result.kind} for a produce task`);
          for (const p of group) p.reject(err);
          return;
        }
        for (const [i, p] of group.entries()) p.resolve(result.results[i]!);
      },
      (err: unknown) => {
        settled();
        const error = err instanceof Error ? err : new Error(String(err));
        for (const p of group) p.reject(error);
      },
    );
  }

  async #append(packed: ArrayBuffer): Promise<void> {
    const entries = unpackSpoolEntries(packed);
    await this.#o.spool.append(entries);
    this.#o.metrics.ingestRecords.inc({ path: 'spool' }, entries.length);
    this.#updateGauges();
    if (this.#o.kafka) this.#startShipper();
  }

  #updateGauges(): void {
    const s = this.#o.spool.stats();
    this.#o.metrics.spooling.set(this.#spooling ? 1 : 0);
    this.#o.metrics.spoolPending.set(s.entries);
    this.#o.metrics.spoolBytes.set(s.bytes);
    this.#o.metrics.spoolFullWaits.set(s.fullWaits);
    this.#o.metrics.spoolBlocked.set(s.blocked ? 1 : 0);
    if (this.#wasBlocked && !s.blocked) {
      this.#wasBlocked = false;
      this.#log.warn({ spool: this.#o.spool.dir }, 'spool writes succeed again: agents resume');
    }
  }

  #startShipper(): void {
    this.#shipping ??= this.#ship().finally(() => {
      this.#shipping = undefined;
    });
  }

  /** Ships the spool to Kafka in order; returns when it has caught up (or on close). */
  async #ship(): Promise<void> {
    await this.#shipLoop(() => this.#shipOnce());
  }

  /**
   * Runs shipping steps until one reports 'caught-up' (true) or the pipeline closes (false); a
   * failed step is retried after a back-off.
   */
  async #shipLoop(step: () => Promise<'shipped' | 'caught-up' | 'wait' | 'failed'>): Promise<boolean> {
    const minMs = this.#o.retryMinMs ?? 250;
    const maxMs = this.#o.retryMaxMs ?? 5000;
    const backoff = { baseMs: minMs, capMs: maxMs };
    let failures = 0;
    while (!this.#closed) {
      let result: 'shipped' | 'caught-up' | 'wait' | 'failed';
      try {
        result = await step();
      } catch (err) {
        // A spool read or ack that throws (I/O error) must not end shipping or the process.
        this.#log.error({ err, failures: failures + 1 }, 'spool shipping failed');
        result = 'failed';
      }
      if (result === 'caught-up') return true;
      if (result === 'wait') {
        await sleep(10);
        continue;
      }
      if (result === 'shipped') {
        failures = 0;
        continue;
      }
      // Full jitter keeps many gateways from hammering a recovering cluster in step.
      failures++;
      await sleep(backoffDelay(failures, backoff));
    }
    return false;
  }

  async #shipOnce(): Promise<'shipped' | 'caught-up' | 'wait' | 'failed'> {
    const step = await this.#shipFrom(this.#o.spool);
    if (typeof step === 'number') {
      this.#o.metrics.spoolShipped.inc(step);
      this.#updateGauges();
      return 'shipped';
    }
    if (step === 'failed') return 'failed';
    if (this.#spoolBound > 0) return 'wait';
    if (this.#spooling) this.#log.info('spool drained: records go straight to Kafka again');
    this.#spooling = false;
    this.#updateGauges();
    return 'caught-up';
  }

  /**
   * Ships the next pending records of `spool` to Kafka (one request through the workers) and
   * acks them once Kafka has: in seq order, at least once. The number of records shipped, or
   * 'empty' when nothing is pending.
   */
  async #shipFrom(spool: Spool): Promise<number | 'empty' | 'failed'> {
    const entries = await spool.read(spool.pendingFrom(), this.#o.shipBatch ?? 2000, 4 * 1024 * 1024);
    if (entries.length === 0) return 'empty';
    const packed = packSpoolEntries(entries);
    const result = await this.#runner.run({ kind: 'ship', packed }, [packed]);
    if (result.kind === 'shipped') {
      await spool.ack(entries[entries.length - 1]!.seq);
      return entries.length;
    }
    this.#o.metrics.kafkaFailures.inc({ path: 'spool' });
    this.#log.warn(
      { err: result.kind === 'failed' ? result.error : result.kind, spool: spool.dir },
      'spool ship failed',
    );
    return 'failed';
  }

  /** True when the pipeline produces to Kafka (else it only spools). */
  get producesToKafka(): boolean {
    return this.#o.kafka !== undefined;
  }

  /**
   * Ships another spool — one a gateway process that no longer runs left behind
   * (spool-adoption.ts) — to Kafka as this pipeline ships its own: in seq order, acked once
   * Kafka has the records (at least once), failures retried with the same back-off. Runs next
   * to the own spool's shipping and direct produce tasks. Resolves true once nothing is pending,
   * false when the pipeline closes first (or has no Kafka): the rest stays in that spool.
   */
  shipAdopted(spool: Spool, onShipped: (records: number) => void): Promise<boolean> {
    if (!this.#o.kafka || this.#closed) return Promise.resolve(false);
    const run = this.#shipLoop(async () => {
      const step = await this.#shipFrom(spool);
      if (typeof step !== 'number') return step === 'empty' ? 'caught-up' : 'failed';
      onShipped(step);
      return 'shipped';
    });
    this.#adopted.add(run);
    const done = () => this.#adopted.delete(run);
    run.then(done, done);
    return run;
  }

  /** Resolves when every write so far has been produced or spooled (pending ones go at once). */
  flush(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    this.hurry();
    return new Promise((r) => this.#idle.push(r));
  }

  /** Resolves when the spool has been shipped (tests and drains); false after timeoutMs. */
  async drained(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.#spooling && this.#inFlight === 0) return true;
      await sleep(20);
    }
    return false;
  }

  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    await this.#shipping;
    // Adopted spools stop between requests; their lock holders close them.
    await Promise.all(this.#adopted);
    await this.#runner.close();
    await this.#o.spool.close();
  }
}
