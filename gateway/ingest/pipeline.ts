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
import { createIngestCore, type IngestResult, type IngestTask } from '../../workers/ingest-core.js';
import type { IngestWorkerData } from '../../workers/ingest-worker.js';
import { packSpoolEntries, unpackSpoolEntries } from '../../workers/spool-entry.js';
import type { Logger } from '../obs/logger.js';
import type { Metrics } from '../obs/metrics.js';
import { createRecordProducer, type ProducerOptions } from './kafka/producer.js';
import type { IngestBatch, IngestSink } from './sink.js';
import type { Spool } from './spool.js';

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
  retryMinMs?: number;
  retryMaxMs?: number;
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

function createRunner(workers: number, kafka: PipelineOptions['kafka']): Runner {
  if (workers === 0) {
    const core = createIngestCore(kafka ? createRecordProducer(kafka) : undefined);
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
  });
  return {
    run: (task, transfer) => pool.run(task, { transferList: transfer }) as Promise<IngestResult>,
    close: () => pool.destroy(),
  };
}

/** The message's memory as an ArrayBuffer this thread may give away (copied when shared). */
function ownedArrayBuffer(buf: Buffer): ArrayBuffer {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && buf.buffer instanceof ArrayBuffer) {
    return buf.buffer;
  }
  const ab = new ArrayBuffer(buf.byteLength);
  new Uint8Array(ab).set(buf);
  return ab;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

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
  #closed = false;

  constructor(o: PipelineOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'ingest' });
    this.#runner = createRunner(o.workers, o.kafka);
    this.name = o.kafka
      ? `kafka ${o.kafka.brokers.join(',')} topic ${o.kafka.topic} (spool ${o.spool.dir})`
      : `spool ${o.spool.dir}`;
    // Records left in the spool by an earlier run go first.
    this.#spooling = !o.kafka || o.spool.pendingFrom() < o.spool.nextSeq();
    this.#updateGauges();
    if (o.kafka && this.#spooling) this.#startShipper();
  }

  get spooling(): boolean {
    return this.#spooling;
  }

  async write(batch: IngestBatch): Promise<void> {
    const count = batch.raw.Data.length;
    if (count === 0) return;
    const seq0 = this.#seq;
    this.#seq += count;
    const message = ownedArrayBuffer(batch.message);
    const direct = !this.#spooling;
    if (!direct) this.#spoolBound++;
    this.#inFlight++;
    try {
      const task: IngestTask = {
        kind: direct ? 'produce' : 'build',
        message,
        receivedAt: batch.receivedAt,
        gw: this.#o.gatewayId,
        seq0,
        tag: this.#o.tagsOf?.(batch.agentId) ?? '',
      };
      const result = await this.#runner.run(task, [message]);
      if (result.kind === 'produced') {
        this.#o.metrics.ingestRecords.inc({ path: 'kafka' }, count);
        return;
      }
      if (result.kind === 'failed') {
        if (!result.packed) throw new Error(`ingest task failed without records: ${result.error}`);
        this.#o.metrics.kafkaFailures.inc({ path: 'direct' });
        if (!this.#spooling) {
          this.#log.warn({ err: result.error }, 'Kafka send failed: spooling until it recovers');
          this.#spooling = true;
        }
        this.#spoolBound++;
        await this.#append(result.packed).finally(() => this.#spoolBound--);
        return;
      }
      if (result.kind === 'built') {
        await this.#append(result.packed);
        return;
      }
      throw new Error(`unexpected ingest result ${result.kind}`);
    } finally {
      if (!direct) this.#spoolBound--;
      this.#inFlight--;
      if (this.#inFlight === 0) for (const w of this.#idle.splice(0)) w();
    }
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
  }

  #startShipper(): void {
    this.#shipping ??= this.#ship().finally(() => {
      this.#shipping = undefined;
    });
  }

  /** Ships the spool to Kafka in order; returns when it has caught up (or on close). */
  async #ship(): Promise<void> {
    const { spool, metrics } = this.#o;
    const minMs = this.#o.retryMinMs ?? 250;
    const maxMs = this.#o.retryMaxMs ?? 30_000;
    let backoff = minMs;
    while (!this.#closed) {
      const entries = await spool.read(spool.pendingFrom(), this.#o.shipBatch ?? 2000, 4 * 1024 * 1024);
      if (entries.length === 0) {
        if (this.#spoolBound === 0) {
          if (this.#spooling) this.#log.info('spool drained: records go straight to Kafka again');
          this.#spooling = false;
          this.#updateGauges();
          return;
        }
        await sleep(10);
        continue;
      }
      const packed = packSpoolEntries(entries);
      const result = await this.#runner.run({ kind: 'ship', packed }, [packed]);
      if (result.kind === 'shipped') {
        await spool.ack(entries[entries.length - 1]!.seq);
        metrics.spoolShipped.inc(entries.length);
        this.#updateGauges();
        backoff = minMs;
        continue;
      }
      metrics.kafkaFailures.inc({ path: 'spool' });
      this.#log.warn(
        { err: result.kind === 'failed' ? result.error : result.kind, retryInMs: backoff },
        'spool ship failed',
      );
      // Full jitter keeps many gateways from hammering a recovering cluster in step.
      await sleep(Math.round(backoff / 2 + Math.random() * (backoff / 2)));
      backoff = Math.min(maxMs, backoff * 2);
    }
  }

  /** Resolves when every write so far has been produced or spooled. */
  flush(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
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
    await this.#runner.close();
    await this.#o.spool.close();
  }
}
