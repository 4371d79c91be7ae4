/**
 * Keeps the gateway's registrations (gateway-registrations.ts) in discovery. With
 * FLEETGATE_SD_ADDRS the registrar talks Elkeid's signed HTTP API (so a stock Elkeid SD works
 * too); in `fleetgate all` it writes the registry store of the discovery in this process.
 */
import { createRegistrarMetrics } from '../../discovery/metrics.js';
import { type Registrar, startRegistrar } from '../../discovery/registrar.js';
import type { RegistryStore } from '../../discovery/registry-store.js';
import { type Config, isLoopback } from '../../platform/config/env.js';
import type { Logger } from '../../platform/obs/logger.js';
import type { Metrics } from '../../platform/obs/metrics.js';
import { gatewayRegistrations } from './gateway-registrations.js';

export interface GatewayRegistrarInput {
  grpcPort: number;
  httpPort: number;
  /** Live agent connections. */
  load: () => number;
  /** The connection limit now: FLEETGATE_MAX_CONNECTIONS, or lower under load control. */
  limit: () => number;
  /** The registry of the discovery in this process (`all`); used when FLEETGATE_SD_ADDRS names none. */
  registryStore: RegistryStore | undefined;
  aksk: ReadonlyArray<readonly [string, string]>;
  logger: Logger;
  metrics: Metrics;
}

/** Undefined when there is no discovery to register with (the banner says so). */
export function startGatewayRegistrar(
  config: Readonly<Config>,
  input: GatewayRegistrarInput,
): Registrar | undefined {
  const remote = config.sdAddrs.filter((a) => a !== 'all');
  const [ak, sk] = input.aksk[0]!;
  const target =
    remote.length > 0
      ? { sdAddrs: remote, ak, sk }
      : input.registryStore
        ? { store: input.registryStore }
        : undefined;
  if (!target) return undefined;
  return startRegistrar({
    target,
    logger: input.logger,
    metrics: createRegistrarMetrics(input.metrics.registry),
    registrations: () =>
      gatewayRegistrations({
        advertiseHost: config.advertiseHost,
        grpcPort: input.grpcPort,
        httpPort: input.httpPort,
        controlHost: controlHost(config),
        load: input.load(),
        limit: input.limit(),
        version: process.env.npm_package_version ?? '0.1.0',
      }),
  });
}

/** Where others reach the control API: loopback when it listens there, else the advertised host. */
export function controlHost(config: Readonly<Config>): string {
  return isLoopback(config.apiHost) ? config.apiHost : config.advertiseHost;
}
