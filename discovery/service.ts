/**
 * The discovery listener (Elkeid ServiceDiscovery, port 8088) on uWebSockets.js: the handler of
 * routes.ts behind the uWS adapter. Stateless apart from its caches: any number of these, on any
 * hosts, answer the same from one registry table.
 */
import type { Registry } from 'prom-client';
import { serveUws } from '../platform/http/uws-adapter.js';
import type { Logger } from '../platform/obs/logger.js';
import type { CacheTiming } from './cache.js';
import { createDiscoveryMetrics } from './metrics.js';
import type { RegistryStore } from './registry-store.js';
import { createDiscoveryHandler } from './routes.js';

export interface DiscoveryOptions {
  host: string;
  /** 0 picks a free port (see the result). */
  port: number;
  store: RegistryStore;
  /** AK/SK pairs accepted on the signed routes (register, evict, sync). */
  aksk: ReadonlyArray<readonly [string, string]>;
  logger: Logger;
  /** The process's prom-client registry; `/metrics` serves it. */
  registry: Registry;
  /** Address reported by `/endpoint/ping` as this node. Default `<host>:<port>`. */
  advertise?: string;
  /** Discovery nodes listed by `/endpoint/*`. Default: this node only. */
  members?: () => string[];
  cache?: Partial<CacheTiming>;
  /** Largest request body. Default 64 KiB (a registration is ~150 bytes). */
  maxBodyBytes?: number;
}

export interface DiscoveryService {
  readonly port: number;
  /** Forgets the cached answers (tests and benchmarks). */
  clearCache(): void;
  close(): void;
}

export async function startDiscovery(opts: DiscoveryOptions): Promise<DiscoveryService> {
  const log = opts.logger.child({ component: 'discovery' });
  const metrics = createDiscoveryMetrics(opts.registry);
  // `self` must be known before the port is, so it reads the port lazily.
  let port = opts.port;
  const self = () => opts.advertise ?? `${opts.host}:${port}`;
  const { handler, clearCache } = createDiscoveryHandler({
    store: opts.store,
    metrics,
    logger: log,
    get self() {
      return self();
    },
    members: opts.members ?? (() => [self()]),
    aksk: opts.aksk,
    registry: opts.registry,
    ...(opts.cache ? { cache: opts.cache } : {}),
  });
  const server = await serveUws(handler, {
    host: opts.host,
    port: opts.port,
    maxBodyBytes: opts.maxBodyBytes ?? 64 * 1024,
    onError: (err) => log.error({ err }, 'discovery handler failed'),
    registry: opts.registry,
    logger: log,
  });
  port = server.port;
  log.info({ host: opts.host, port, ttlMs: opts.store.ttlMs }, 'discovery listening');
  return {
    port,
    clearCache,
    close: () => server.close(),
  };
}
