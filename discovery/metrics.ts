/**
 * Metrics of discovery and of the registrar, on the process's prom-client Registry. Creating them
 * twice on one registry returns the metrics already there (one process may run several discovery
 * listeners in tests, or discovery next to a gateway in `fleetgate all`).
 *
 * `elkeid_sd_http_api{path,code}` and `elkeid_sd_registry_list{name}` keep Elkeid's names so
 * dashboards built for Elkeid's ServiceDiscovery keep working. Label values are bounded: route
 * labels are declared paths, `name` only takes names that are registered.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

function once<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export function createDiscoveryMetrics(registry: Registry) {
  const r = [registry];
  return {
    httpApi: once(
      registry,
      'elkeid_sd_http_api',
      () =>
        new Counter({
          name: 'elkeid_sd_http_api',
          help: 'discovery HTTP requests by route and status (Elkeid name)',
          labelNames: ['path', 'code'],
          registers: r,
        }),
    ),
    httpSeconds: once(
      registry,
      'fleetgate_discovery_http_request_seconds',
      () =>
        new Histogram({
          name: 'fleetgate_discovery_http_request_seconds',
          help: 'discovery HTTP request duration by route',
          labelNames: ['path'],
          buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.02, 0.1, 0.5, 2],
          registers: r,
        }),
    ),
    instances: once(
      registry,
      'elkeid_sd_registry_list',
      () =>
        new Gauge({
          name: 'elkeid_sd_registry_list',
          help: 'live instances per service name, as last read from the store (Elkeid name)',
          labelNames: ['name'],
          registers: r,
        }),
    ),
    staleAnswers: once(
      registry,
      'fleetgate_discovery_stale_answers_total',
      () =>
        new Counter({
          name: 'fleetgate_discovery_stale_answers_total',
          help: 'answers served from the last good read because the registry store is unavailable',
          labelNames: ['path'],
          registers: r,
        }),
    ),
    unavailable: once(
      registry,
      'fleetgate_discovery_unavailable_total',
      () =>
        new Counter({
          name: 'fleetgate_discovery_unavailable_total',
          help: 'answers refused with 503 because the store failed and no earlier answer existed',
          labelNames: ['path'],
          registers: r,
        }),
    ),
    storeOps: once(
      registry,
      'fleetgate_discovery_store_operations_total',
      () =>
        new Counter({
          name: 'fleetgate_discovery_store_operations_total',
          help: 'registry store operations by operation and result',
          labelNames: ['op', 'result'],
          registers: r,
        }),
    ),
    storeSeconds: once(
      registry,
      'fleetgate_discovery_store_seconds',
      () =>
        new Histogram({
          name: 'fleetgate_discovery_store_seconds',
          help: 'registry store call duration by operation (a cache miss costs one query)',
          labelNames: ['op'],
          buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2],
          registers: r,
        }),
    ),
    storeUp: once(
      registry,
      'fleetgate_discovery_store_up',
      () =>
        new Gauge({
          name: 'fleetgate_discovery_store_up',
          help: '1 if the last registry store call succeeded, 0 if it failed',
          registers: r,
        }),
    ),
  };
}

export type DiscoveryMetrics = ReturnType<typeof createDiscoveryMetrics>;

export function createRegistrarMetrics(registry: Registry) {
  return {
    rounds: once(
      registry,
      'fleetgate_registrar_registrations_total',
      () =>
        new Counter({
          name: 'fleetgate_registrar_registrations_total',
          help: 'registrations sent to discovery by result (ok, failed)',
          labelNames: ['result'],
          registers: [registry],
        }),
    ),
    lastOk: once(
      registry,
      'fleetgate_registrar_last_success_seconds',
      () =>
        new Gauge({
          name: 'fleetgate_registrar_last_success_seconds',
          help: 'unix time of the last registration that discovery accepted',
          registers: [registry],
        }),
    ),
  };
}

export type RegistrarMetrics = ReturnType<typeof createRegistrarMetrics>;
