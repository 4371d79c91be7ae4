/**
 * The discovery role, built from config: the registry over the store (opened here unless the
 * process shares one, as `fleetgate all` does) and the discovery listener (service.ts).
 * `fleetgate discovery` runs it alone, `fleetgate all` next to the gateway and the manager.
 */
import type { Config } from '../platform/config/env.js';
import type { Logger } from '../platform/obs/logger.js';
import type { Metrics } from '../platform/obs/metrics.js';
import { type OpenedStore, openStore } from '../platform/store/open.js';
import { createRegistryStore, type RegistryStore } from './registry-store.js';
import { startDiscovery } from './service.js';

export interface DiscoveryRoleOptions {
  config: Readonly<Config>;
  logger: Logger;
  metrics: Metrics;
  /** AK/SK pairs accepted on the signed routes (register, evict, sync). */
  aksk: ReadonlyArray<readonly [string, string]>;
  /** The store of this process (`all`); else opened here, and closed by `drain`. */
  store?: OpenedStore;
}

export interface DiscoveryRole {
  readonly port: number;
  /** The registry, for the gateway and the manager of this process to register in directly. */
  readonly registryStore: RegistryStore;
  readonly banner: string[];
  /** Stops listening (and closes the store when it opened it). */
  drain(): Promise<void>;
}

export async function startDiscoveryRole(o: DiscoveryRoleOptions): Promise<DiscoveryRole> {
  const { config } = o;
  const store = o.store ?? (await openStore(config, { logger: o.logger }));
  const registryStore = createRegistryStore({ client: store.client, tablePrefix: config.tablePrefix });
  let discovery: Awaited<ReturnType<typeof startDiscovery>>;
  try {
    discovery = await startDiscovery({
      host: config.host,
      port: config.sdPort,
      store: registryStore,
      aksk: o.aksk,
      logger: o.logger,
      registry: o.metrics.registry,
    });
  } catch (err) {
    if (!o.store) await store.close();
    throw err;
  }
  const banner = [`  discovery          http://${config.host}:${discovery.port}   (store: ${store.kind})`];
  // Agents of this process's gateway ask this discovery (FLEETGATE_SD_ADDRS empty or `all`).
  if (config.sdAddrs.length === 0 || config.sdAddrs.includes('all')) {
    banner.push(
      `  agents ask         http://${config.advertiseHost}:${discovery.port}/registry/detail?name=hids_svr_grpc`,
    );
  }
  return {
    port: discovery.port,
    registryStore,
    banner,
    async drain() {
      discovery.close();
      if (!o.store) await store.close();
    },
  };
}
