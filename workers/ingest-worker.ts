/**
 * piscina task module of the ingest pipeline. Each worker thread holds one Kafka producer
 * (created on its first task from workerData) so record-batch encoding, compression and CRCs
 * run off the main thread, which owns TLS and HTTP/2.
 */
import { Piscina, transferableSymbol, valueSymbol } from 'piscina';
import { createRecordProducer, type ProducerOptions } from '../gateway/ingest/kafka/producer.js';
import { createIngestCore, type IngestResult, type IngestTask } from './ingest-core.js';

export interface IngestWorkerData {
  kafka: Omit<ProducerOptions, 'logger'> | undefined;
}

let core: ReturnType<typeof createIngestCore> | undefined;

function getCore(): ReturnType<typeof createIngestCore> {
  if (core) return core;
  const data = Piscina.workerData as IngestWorkerData;
  core = createIngestCore(data.kafka ? createRecordProducer(data.kafka) : undefined);
  return core;
}

export default async function run(task: IngestTask): Promise<IngestResult> {
  const result = await getCore().run(task);
  if ((result.kind === 'built' || result.kind === 'failed') && result.packed) {
    // Hand the packed records back without a copy.
    const packed = result.packed;
    return Piscina.move({
      get [transferableSymbol]() {
        return [packed];
      },
      get [valueSymbol]() {
        return result;
      },
    }) as unknown as IngestResult;
  }
  return result;
}
