/**
 * Whether the store (DynamoDB) answers, as seen by the calls a role already makes: a gateway
 * takes records to Kafka or its spool without a store, so it starts and serves agents while the
 * store is down and only agent status, configs, task results and load control wait. The state
 * is read from every DynamoDB call through a client middleware (no extra calls, no extra IAM
 * permissions); when the tables are to be created at start, that is retried in the background.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../obs/logger.js';
import { ensureTables } from './dynamo-client.js';

/** True when `err` means the store could not be reached or failed (not a refused request). */
export function isStoreUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500;
  const code = (err as { code?: string }).code ?? '';
  const name = (err as { name?: string }).name ?? '';
  return (
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE)$/.test(code) ||
    /^(TimeoutError|RequestTimeout|NetworkingError)$/.test(name)
  );
}

export interface StoreHealth {
  /** False while the last call failed for want of a store. */
  readonly available: boolean;
  /** Why not available, for /readyz detail and logs. */
  readonly cause: string | undefined;
  /** Resolves once the tables are ensured (at once when nothing was to be ensured). */
  readonly ready: Promise<void>;
  stop(): void;
}

export interface StoreHealthOptions {
  client: DynamoDBClient;
  logger: Logger;
  registry: Registry;
  /** Create missing tables with this prefix, retried until it succeeds; undefined: not created here. */
  ensurePrefix?: string;
  /** Retry interval of the table creation (default 2 s). */
  retryMs?: number;
  /** At most one error log per this interval (default 30 s). */
  logEveryMs?: number;
}

export function watchStoreHealth(o: StoreHealthOptions): StoreHealth {
  const log = o.logger.child({ component: 'store' });
  const gauge = new Gauge({
    name: 'fleetgate_store_available',
    help: '1 while DynamoDB answers, 0 while it does not (agents are still served; status, configs and limits wait)',
    registers: [o.registry],
  });
  gauge.set(1);
  let available = true;
  let cause: string | undefined;
  let loggedAt = 0;
  const markDown = (err: unknown) => {
    cause = (err as Error).message || String(err);
    gauge.set(0);
    if (available || Date.now() - loggedAt >= (o.logEveryMs ?? 30_000)) {
      log.error(
        { err: cause },
        'store unavailable: agents are still served; status, configs and limits wait',
      );
      loggedAt = Date.now();
    }
    available = false;
  };
  const markUp = () => {
    if (!available) log.warn('store available again');
    available = true;
    cause = undefined;
    gauge.set(1);
  };
  o.client.middlewareStack.add(
    (next) => async (args) => {
      try {
        const out = await next(args);
        markUp();
        return out;
      } catch (err) {
        if (isStoreUnavailable(err)) markDown(err);
        else markUp(); // it answered, with a refusal
        throw err;
      }
    },
    { step: 'finalizeRequest', name: 'fleetgateStoreHealth' },
  );
  let stopped = false;
  const ready = o.ensurePrefix === undefined ? Promise.resolve() : ensureInBackground(o, log, () => stopped);
  return {
    get available() {
      return available;
    },
    get cause() {
      return cause;
    },
    ready,
    stop() {
      stopped = true;
    },
  };
}

async function ensureInBackground(o: StoreHealthOptions, log: Logger, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    try {
      const r = await ensureTables(o.client, o.ensurePrefix!);
      if (r.created.length > 0) log.info({ created: r.created }, 'DynamoDB tables created');
      return;
    } catch {
      // Counted and logged by the middleware; try again.
      await new Promise((r) => setTimeout(r, o.retryMs ?? 2000).unref());
    }
  }
}
