/**
 * Our gateway (`startGateway`) with the real ingest pipeline as its sink, as a child process of
 * the ingest benchmark: an `IngestPipeline` over a spool in a temporary directory, producing to a
 * real broker through piscina workers (or inline with `--workers 0`), silent logs.
 *
 *   node --expose-gc --import tsx loadtest/bench/ingest-server.ts --pki DIR --topic T
 *        [--workers N] [--brokers 127.0.0.1:9092] [--compression lz4] [--partitioner murmur2]
 *        [--linger-ms MS] [--batch-window-ms MS] [--port 0] [--host 127.0.0.1]
 *
 * `--workers` defaults to FLEETGATE_WORKERS, else what the gateway defaults to (cores − 1, at
 * least 1). Prints `{"port":N,...}` first, then answers on stdin (one JSON line each): `stats`
 * (ServerStats; `records` = records Kafka acknowledged, `cpuUser`/`cpuSystem` cover every thread
 * of the process, workers included; `threads` splits main thread and the rest), `gc`. Closing
 * stdin drains the gateway, closes the pipeline (producers, worker threads, spool) and exits, so a
 * `--cpu-prof` profile is written for the main thread and each worker.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { IngestPipeline } from '../../gateway/ingest/pipeline.js';
import { Spool } from '../../gateway/ingest/spool.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { createMetrics } from '../../platform/obs/metrics.js';
import type { PartitionerKind } from '../../workers/kafka/partitioners.js';
import type { CompressionName } from '../../workers/kafka/producer.js';
import {
  openFileLimit,
  processStats,
  reply,
  type ServerStats,
  serveServerCommands,
  threadCpu,
} from './child-protocol.js';
import { startBenchGateway } from './gateway-child.js';

const { values } = parseArgs({
  options: {
    pki: { type: 'string' },
    topic: { type: 'string' },
    workers: { type: 'string' },
    brokers: { type: 'string', default: '127.0.0.1:9092' },
    compression: { type: 'string', default: 'lz4' },
    partitioner: { type: 'string', default: 'murmur2' },
    'linger-ms': { type: 'string' },
    'batch-window-ms': { type: 'string' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
if (!values.pki) throw new Error('--pki DIR is required');
if (!values.topic) throw new Error('--topic NAME is required');
const workersArg = values.workers ?? process.env.FLEETGATE_WORKERS;
const workers =
  workersArg === undefined || workersArg === ''
    ? Math.max(1, os.availableParallelism() - 1)
    : Number(workersArg);
if (!Number.isInteger(workers) || workers < 0) throw new Error(`bad worker count ${workersArg}`);

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'fg-ingest-bench-'));
const spool = await Spool.open(path.join(dataDir, 'spool'));
const metrics = createMetrics();
const logger = silentLogger();
const pipeline = new IngestPipeline({
  spool,
  kafka: {
    brokers: values.brokers.split(','),
    clientId: 'fleetgate-bench',
    topic: values.topic,
    compression: values.compression as CompressionName,
    partitioner: values.partitioner as PartitionerKind,
    ...(values['linger-ms'] !== undefined ? { lingerMs: Number(values['linger-ms']) } : {}),
  },
  workers,
  ...(values['batch-window-ms'] !== undefined ? { batchWindowMs: Number(values['batch-window-ms']) } : {}),
  gatewayId: `bench-${process.pid}`,
  metrics,
  logger,
});
const bench = await startBenchGateway({
  pkiDir: values.pki,
  host: values.host,
  port: Number(values.port),
  dataDir,
  sink: pipeline,
  metrics,
  logger,
});
const { gateway } = bench;

async function counter(metric: { get(): Promise<{ values: Array<{ value: number; labels: object }> }> }) {
  const out: Record<string, number> = {};
  for (const v of (await metric.get()).values) {
    const key = Object.values(v.labels).join(',') || 'total';
    out[key] = (out[key] ?? 0) + v.value;
  }
  return out;
}

async function stats(): Promise<
  ServerStats & {
    spooled: number;
    kafkaFailures: number;
    spooling: boolean;
    threads: ReturnType<typeof threadCpu> | null;
  }
> {
  const ingested = await counter(metrics.ingestRecords);
  const failures = await counter(metrics.kafkaFailures);
  return {
    records: ingested.kafka ?? 0,
    spooled: ingested.spool ?? 0,
    kafkaFailures: Object.values(failures).reduce((a, b) => a + b, 0),
    spooling: pipeline.spooling,
    ...bench.callStats(),
    threads: threadCpu() ?? null,
    ...processStats(),
  };
}

serveServerCommands(stats, () => bench.shutdown(() => pipeline.close()));
reply({
  port: gateway.grpcPort,
  pid: process.pid,
  nofile: openFileLimit() ?? null,
  impl: 'fleetgate',
  workers,
  compression: values.compression,
});
