/**
 * A bounded in-memory sink for tests and benchmarks. Past `capacity` records it does not drop:
 * `write` returns a promise that settles when a consumer `take`s records, which stalls the
 * agent's stream (backpressure), and the stall is counted.
 */
import type { IngestBatch, IngestSink } from './sink.js';

export class MemorySink implements IngestSink {
  readonly name = 'memory';
  readonly batches: IngestBatch[] = [];
  records = 0;
  stalls = 0;
  readonly #capacity: number;
  #waiters: Array<() => void> = [];
  #listeners: Array<(b: IngestBatch) => void> = [];

  constructor(capacity = Number.POSITIVE_INFINITY) {
    this.#capacity = capacity;
  }

  write(batch: IngestBatch): void | Promise<void> {
    this.batches.push(batch);
    this.records += batch.records ?? batch.raw.Data.length;
    for (const l of this.#listeners) l(batch);
    if (this.records <= this.#capacity) return;
    this.stalls++;
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Removes and returns every buffered batch, releasing stalled writers. */
  take(): IngestBatch[] {
    const out = this.batches.splice(0);
    this.records = 0;
    for (const w of this.#waiters.splice(0)) w();
    return out;
  }

  /** Calls `fn` for each batch as it arrives (tests wait on this). */
  onBatch(fn: (b: IngestBatch) => void): void {
    this.#listeners.push(fn);
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    for (const w of this.#waiters.splice(0)) w();
  }
}

/** A sink that only counts (benchmarks: measures the gateway, not a store). */
export class CountingSink implements IngestSink {
  readonly name = 'counting';
  records = 0;
  batches = 0;
  bytes = 0;
  write(batch: IngestBatch): void {
    this.batches++;
    this.records += batch.records ?? batch.raw.Data.length;
    this.bytes += batch.message.length;
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}
