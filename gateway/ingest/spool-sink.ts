/**
 * The spool as a sink: every record becomes its MQData (as it will go to Kafka) and is appended
 * to the on-disk segment log; the agent's stream waits until the entries are fsynced, so an
 * accepted record survives a crash. Past the spool's size bound the append waits (backpressure
 * through HTTP/2 flow control), it never drops.
 */
import { buildMqRecords } from '../../workers/mqdata.js';
import type { IngestBatch, IngestSink } from './sink.js';
import type { Spool } from './spool.js';

export class SpoolSink implements IngestSink {
  readonly name: string;
  readonly spool: Spool;

  constructor(spool: Spool, dir: string) {
    this.spool = spool;
    this.name = `spool ${dir}`;
  }

  async write(batch: IngestBatch): Promise<void> {
    const records = buildMqRecords(batch.raw, batch.receivedAt);
    if (records.length === 0) return;
    await this.spool.append(records.map((r) => ({ key: r.key, value: r.value })));
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    await this.spool.close();
  }
}
