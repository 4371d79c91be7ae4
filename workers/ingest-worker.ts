/**
 * piscina task module of the ingest pipeline. Each worker thread holds one Kafka producer
 * (created on its first task from workerData) so record-batch encoding, compression and CRCs
 * run off the main thread, which owns TLS and HTTP/2. Compression runs on this thread too
 * (`syncCompression`): its event loop has nothing else to do meanwhile, and a thread-pool hop
 * costs more than compressing a batch.
 */
import { Piscina, transferableSymbol, valueSymbol } from 'piscina';
import { createIngestCore, type IngestResult, type IngestTask } from './ingest-core.js';
import { createRecordProducer, type ProducerOptions } from './kafka/producer.js';

export interface IngestWorkerData {
  kafka: Omit<ProducerOptions, 'logger'> | undefined;
}

let core: ReturnType<typeof createIngestCore> | undefined;

function getCore(): ReturnType<typeof createIngestCore> {
  if (core) return core;
  const data = Piscina.workerData as IngestWorkerData;
  core = createIngestCore(
    data.kafka ? createRecordProducer({ syncCompression: true, ...data.kafka }) : undefined,
  );
  return core;
}

/** The packed-record buffers of a result, handed back without a copy. */
function transferables(result: IngestResult): ArrayBuffer[] {
  if (result.kind === 'built') return [result.packed];
  if (result.kind !== 'items') return [];
  const out: ArrayBuffer[] = [];
  for (const r of result.results) if (r.kind === 'built' || r.kind === 'failed') out.push(r.packed);
  return out;
}

export default async function run(task: IngestTask): Promise<IngestResult> {
  const result = await getCore().run(task);
  const list = transferables(result);
  if (list.length === 0) return result;
  return Piscina.move({
    get [transferableSymbol]() {
      return list;
    },
    get [valueSymbol]() {
      return result;
    },
  }) as unknown as IngestResult;
}
