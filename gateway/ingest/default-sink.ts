/**
 * The sink `fleetgate gateway|all` uses: the ingest pipeline over the durable spool under
 * `<dataDir>/spool`, producing to Kafka when FLEETGATE_KAFKA_BROKERS is set.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../../platform/config/env.js';
import type { Logger } from '../../platform/obs/logger.js';
import type { Metrics } from '../../platform/obs/metrics.js';
import type { ProducerOptions } from '../../workers/kafka/producer.js';
import { IngestPipeline } from './pipeline.js';
import { openSpoolExclusive } from './spool-lock.js';

/**
 * The producer options of the configuration (the ingest workers get the same, cloned). TLS:
 * FLEETGATE_KAFKA_TLS=1 verifies the brokers against Node's default CAs, plus
 * FLEETGATE_KAFKA_CA_FILE against that file's certificates instead (read here, once).
 */
export function kafkaOptionsFrom(
  config: Pick<Config, 'kafkaBrokers' | 'kafkaTopic' | 'kafkaCompression' | 'kafkaPartitioner'> &
    Partial<Pick<Config, 'kafkaTls' | 'kafkaCaFile' | 'kafkaCertFile' | 'kafkaKeyFile'>>,
): Omit<ProducerOptions, 'logger'> {
  // Mutual TLS (MSK's TLS client authentication): the client certificate and key as well.
  const client =
    config.kafkaCertFile && config.kafkaKeyFile
      ? { cert: readFileSync(config.kafkaCertFile, 'utf8'), key: readFileSync(config.kafkaKeyFile, 'utf8') }
      : undefined;
  const ca = config.kafkaCaFile ? { ca: [readFileSync(config.kafkaCaFile, 'utf8')] } : undefined;
  const ssl = config.kafkaTls ? (ca || client ? { ...ca, ...client } : true) : undefined;
  return {
    brokers: config.kafkaBrokers,
    clientId: `fleetgate-${os.hostname()}`,
    topic: config.kafkaTopic,
    compression: config.kafkaCompression,
    partitioner: config.kafkaPartitioner,
    ...(ssl ? { ssl } : {}),
  };
}

export async function createDefaultSink(
  config: Readonly<Config>,
  logger: Logger,
  metrics: Metrics,
  /** Comma-joined tags of an agent for MQData.Tag (the agent status writer keeps them). */
  tagsOf?: (agentId: string) => string,
  /** Default `<dataDir>/spool`; one of several gateway processes has its own below it. */
  spoolDir: string = path.join(config.dataDir, 'spool'),
): Promise<IngestPipeline> {
  const dir = spoolDir;
  let pipeline: IngestPipeline | undefined;
  // A disk error (ENOSPC, EIO) makes the spool wait and retry; the pipeline counts and logs it.
  const spool = await openSpoolExclusive(dir, { onDiskError: (e) => pipeline?.onDiskError(e) });
  logger.info({ dir, ...spool.stats(), recovery: spool.recovery }, 'spool open');
  // Unique per process start, so (gw, seq) never repeats across restarts.
  const gatewayId = `${os.hostname()}/${process.pid}-${randomBytes(4).toString('hex')}`;
  pipeline = new IngestPipeline({
    spool,
    kafka: config.kafkaBrokers.length > 0 ? kafkaOptionsFrom(config) : undefined,
    workers: config.workers,
    batchWindowMs: config.ingestBatchWindowMs,
    gatewayId,
    metrics,
    logger,
    ...(tagsOf ? { tagsOf } : {}),
  });
  return pipeline;
}
