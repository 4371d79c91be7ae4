/**
 * The sink `fleetgate gateway|all` uses: the durable spool under `<dataDir>/spool`.
 */
import path from 'node:path';
import type { Config } from '../config/env.js';
import type { Logger } from '../obs/logger.js';
import type { IngestSink } from './sink.js';
import { Spool } from './spool.js';
import { SpoolSink } from './spool-sink.js';

export async function createDefaultSink(
  config: Pick<Config, 'dataDir' | 'kafkaBrokers'>,
  logger: Logger,
): Promise<IngestSink> {
  const dir = path.join(config.dataDir, 'spool');
  const spool = await Spool.open(dir);
  const stats = spool.stats();
  logger.info({ dir, ...stats }, 'spool open');
  if (config.kafkaBrokers.length > 0) {
    logger.warn(
      { brokers: config.kafkaBrokers },
      'Kafka output is not in this build yet: records are kept in the spool until it is',
    );
  }
  return new SpoolSink(spool, dir);
}
