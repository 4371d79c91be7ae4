/** What every role of one process shares: its config, logger, metrics registry and AK/SK pairs. */
import { type Config, resolveAksk } from '../platform/config/env.js';
import { createLogger, type Logger } from '../platform/obs/logger.js';
import { createMetrics, type Metrics } from '../platform/obs/metrics.js';

export interface ProcessContext {
  config: Readonly<Config>;
  logger: Logger;
  metrics: Metrics;
  /** AK/SK pairs (FLEETGATE_AKSK, else generated into the data dir); the first one signs. */
  aksk: Array<[string, string]>;
}

export function createProcessContext(config: Readonly<Config>): ProcessContext {
  return {
    config,
    logger: createLogger(config.logLevel),
    metrics: createMetrics(),
    aksk: resolveAksk(config),
  };
}
