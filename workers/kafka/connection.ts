/**
 * The producer's kafkajs client and its connection state: connecting (shared by concurrent
 * callers, bounded by the delivery timeout), resetting after an indefinite failure so the next
 * send connects afresh, and the final disconnect.
 */

import type { LogEntry, logLevel as LogLevel, Producer } from 'kafkajs';
import kafkajs from 'kafkajs';
import { withDeadline } from './delivery.js';
import { fixKafkajsIdleTimer } from './kafkajs-request-queue.js';
import { createPartitioner, type PartitionerKind } from './partitioners.js';

const { Kafka, logLevel } = kafkajs;

type LogFn = (obj: Record<string, unknown>, msg?: string) => void;

/** The part of a pino logger used here. */
export interface ProducerLogger {
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  debug: LogFn;
  /** pino's; when present and true for 'debug', kafkajs' debug logs are produced too. */
  isLevelEnabled?: (level: string) => boolean;
}

/** TCP connect + ApiVersions per attempt (kafkajs' default; brokers are on the LAN). */
const CONNECTION_TIMEOUT_MS = 1000;
const RETRY = { retries: 2, initialRetryTime: 250, maxRetryTime: 1000, factor: 0.2, multiplier: 2 };

export interface ConnectionOptions {
  brokers: string[];
  clientId: string;
  partitioner: PartitionerKind;
  ssl?: boolean | { ca?: string[]; cert?: string; key?: string } | undefined;
  requestTimeoutMs: number;
  deliveryTimeoutMs: number;
  logger?: ProducerLogger | undefined;
}

/** kafkajs log entries → the pino-style logger (namespace and kafkajs fields as bindings). */
function logCreatorFor(logger: ProducerLogger) {
  return (_level: LogLevel) =>
    ({ namespace, level, log }: LogEntry): void => {
      const { message, timestamp: _t, logger: _l, ...fields } = log;
      const obj = { kafkajs: namespace, ...fields };
      const msg = `kafkajs: ${message}`;
      if (level === logLevel.ERROR) logger.error(obj, msg);
      else if (level === logLevel.WARN) logger.warn(obj, msg);
      else if (level === logLevel.INFO) logger.info(obj, msg);
      else logger.debug(obj, msg);
    };
}

function createKafkajsProducer(opts: ConnectionOptions): Producer {
  const { logger } = opts;
  fixKafkajsIdleTimer();
  const kafka = new Kafka({
    clientId: opts.clientId,
    brokers: opts.brokers,
    ...(opts.ssl ? { ssl: opts.ssl } : {}),
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    requestTimeout: opts.requestTimeoutMs,
    enforceRequestTimeout: true,
    retry: RETRY,
    logLevel: !logger ? logLevel.NOTHING : logger.isLevelEnabled?.('debug') ? logLevel.DEBUG : logLevel.INFO,
    ...(logger ? { logCreator: logCreatorFor(logger) } : {}),
  });
  return kafka.producer({
    createPartitioner: createPartitioner(opts.partitioner),
    idempotent: false,
    maxInFlightRequests: 1,
    retry: RETRY,
  });
}

export class KafkaConnection {
  readonly producer: Producer;
  connected = false;
  /** Set by the producer's disconnect: no new sends, and a late connect does not count. */
  closing = false;
  /** The pending kafkajs connect, shared (it outlives a connect() that gave up waiting). */
  private pendingConnect: Promise<void> | undefined;
  /** A kafkajs disconnect after a reset; a new connect waits for it. */
  private pendingDisconnect: Promise<void> | undefined;

  constructor(private readonly opts: ConnectionOptions) {
    this.producer = createKafkajsProducer(opts);
  }

  /** Connects unless connected, without a closed check: disconnect() still flushes what was queued. */
  async ensureConnected(): Promise<void> {
    if (this.connected) return;
    if (!this.pendingConnect) {
      const after = this.pendingDisconnect ?? Promise.resolve();
      this.pendingConnect = after
        .then(() => this.producer.connect())
        .then(
          () => {
            this.pendingConnect = undefined;
            if (!this.closing) this.connected = true;
          },
          (err: unknown) => {
            this.pendingConnect = undefined;
            throw err;
          },
        );
    }
    await withDeadline(this.pendingConnect, this.opts.deliveryTimeoutMs, 'connecting to Kafka');
  }

  /** Drops the connections after an indefinite failure, so the next send connects afresh. */
  reset(why: string): void {
    if (this.pendingDisconnect) return;
    this.connected = false;
    this.opts.logger?.warn({ brokers: this.opts.brokers, why }, 'resetting the Kafka connection');
    this.pendingDisconnect = this.disconnectBounded().finally(() => {
      this.pendingDisconnect = undefined;
    });
  }

  /** The final disconnect (after the flush). */
  async close(): Promise<void> {
    this.connected = false;
    await this.disconnectBounded();
  }

  private disconnectBounded(): Promise<void> {
    return withDeadline(
      this.producer.disconnect(),
      this.opts.requestTimeoutMs,
      'disconnecting from Kafka',
    ).catch((err: unknown) => this.opts.logger?.warn({ err }, 'kafkajs disconnect failed'));
  }
}
