/**
 * The gateway role, built from config: its store (when one is configured), the ingest sink, the
 * agent gRPC server (gateway.ts), the control API, the registrar that keeps it in discovery, agent
 * status and load control (with the manager's hooks), and ECS scale-in protection; drained in the
 * reverse order. `fleetgate gateway` runs it alone, `fleetgate all` next to discovery and the
 * manager (cli/serve-command.ts).
 */

import path from 'node:path';
import type { Registrar } from '../../discovery/registrar.js';
import type { RegistryStore } from '../../discovery/registry-store.js';
import type { Config } from '../../platform/config/env.js';
import type { Logger } from '../../platform/obs/logger.js';
import type { Metrics } from '../../platform/obs/metrics.js';
import { type OpenedStore, openStore } from '../../platform/store/open.js';
import { type StoreHealth, watchStoreHealth } from '../../platform/store/store-health.js';
import { createLoadShedder, type LoadShedder } from '../agent/load-shedder.js';
import { admissionLimits } from '../grpc/http2-server.js';
import { createDefaultSink } from '../ingest/default-sink.js';
import { startScaleInProtection } from '../ingest/scale-in-protection.js';
import type { IngestSink } from '../ingest/sink.js';
import { adoptOrphanedSpools, type SpoolAdoption } from '../ingest/spool-adoption.js';
import { gatewayBanner } from './banner.js';
import { startControlApi } from './control-api.js';
import { type Gateway, startGateway } from './gateway.js';
import { createLoadMeter } from './gateway-load.js';
import { advertisedLimit, gatewayReadiness, watchReadiness } from './gateway-readiness.js';
import type { AgentStatusWriter, ManagerHooks, ManagerHooksFactory } from './manager-hooks.js';
import { orphanedSpoolDirs, type ProcessSlot, slotGatewayId, slotSpoolDir } from './process-slot.js';
import { controlHost, startGatewayRegistrar } from './registrar.js';

/** How long a drain waits for agent streams to end (within ECS's stop timeout, infra/). */
export const SHUTDOWN_GRACE_MS = 20_000;

export interface GatewayRoleOptions {
  config: Readonly<Config>;
  logger: Logger;
  metrics: Metrics;
  aksk: ReadonlyArray<readonly [string, string]>;
  /** The store of this process (`all`); without it one is opened when the config names one. */
  store?: OpenedStore;
  /** The registry of the discovery in this process (`all`). */
  registryStore?: RegistryStore;
  /** The manager's hooks over the store (manager/process.ts); used when the gateway has a store. */
  managerHooks?: ManagerHooksFactory;
  /** The preflight generated a development PKI (logged as a warning). */
  generatedPki?: boolean;
  /** One of several gateway processes sharing the agent port (process-slot.ts). */
  slot?: ProcessSlot;
}

export interface GatewayRole {
  readonly gateway: Gateway;
  readonly controlPort: number;
  /** What the banner says about this gateway. */
  readonly banner: string[];
  /** SIGHUP: reload certificates and the CRL. */
  reloadTls(): void;
  /** Leaves discovery, drains the agents, flushes the sink, closes what it opened. */
  drain(): Promise<void>;
}

/** The gateway's own store: opened without creating tables, its availability watched. */
interface OwnStore {
  opened: OpenedStore;
  health: StoreHealth;
}

/**
 * A gateway with a store (the process's own, or a configured DynamoDB next to a Lambda manager)
 * writes agent status, pushes configs and applies load control itself. The store is not needed to
 * take records: the gateway starts and serves agents while it is down (tables are created in the
 * background when an endpoint is configured), and reports itself degraded meanwhile.
 */
async function openOwnStore(o: GatewayRoleOptions): Promise<OwnStore | undefined> {
  const { config, logger } = o;
  if (o.store || (config.dynamodbEndpoint === undefined && config.awsRegion === undefined)) return undefined;
  const opened = await openStore(config, { logger, ensure: false });
  const health = watchStoreHealth({
    client: opened.client,
    logger,
    registry: o.metrics.registry,
    ...(config.dynamodbEndpoint !== undefined ? { ensurePrefix: config.tablePrefix } : {}),
  });
  return { opened, health };
}

/** The agent status writer and the load shedder that applies the limit the manager wants. */
interface LoadControl {
  writer: AgentStatusWriter;
  shedder: LoadShedder;
}

function startLoadControl(
  o: GatewayRoleOptions,
  hooks: ManagerHooks,
  gateway: Gateway,
  controlPort: number,
  registrar: Registrar | undefined,
): LoadControl {
  const { config, logger, metrics } = o;
  const writer = hooks.agentStatusWriter({
    sessions: gateway.sessions,
    gatewayId: slotGatewayId(`${config.advertiseHost}:${gateway.grpcPort}`, o.slot),
    controlAddr: `${controlHost(config)}:${controlPort}`,
    registry: metrics.registry,
    tagsMs: config.tagRefreshMs,
    aggregateMs: config.aggregateMs,
    load: createLoadMeter(metrics),
  });
  writer.start();
  const shedder = createLoadShedder({
    sessions: gateway.sessions,
    desiredLimit: () => writer.desiredLimit(),
    ratePerSecond: config.shedRate,
    order: config.shedOrder,
    logger,
    registry: metrics.registry,
    // Tell discovery the new limit now, not at the next renewal.
    onLimitChange: () => void registrar?.registerNow(),
  });
  shedder.start();
  return { writer, shedder };
}

/** On ECS: no scale-in or deployment stops this task while its spool (or one it adopted) holds records. */
function protectFromScaleIn(o: GatewayRoleOptions) {
  const agentUri = process.env.ECS_AGENT_URI;
  if (!agentUri) return undefined;
  const value = async (g: Metrics['spoolPending']) => (await g.get()).values[0]?.value ?? 0;
  return startScaleInProtection({
    agentUri,
    pendingRecords: async () =>
      (await value(o.metrics.spoolPending)) + (await value(o.metrics.spoolAdoptedPending)),
    // Several processes in the task: none drops the protection another may still need; it lapses
    // within 5 minutes of the last spool emptying.
    ...(o.slot ? { shared: true, expiresInMinutes: 5 } : {}),
    logger: o.logger,
    registry: o.metrics.registry,
  });
}

export async function startGatewayRole(o: GatewayRoleOptions): Promise<GatewayRole> {
  const { config, logger, metrics, aksk } = o;
  if (o.generatedPki) {
    logger.warn(
      { pkiDir: config.pkiDir },
      'generated a NEW development CA and certificates: agents trusting another CA are refused (use your own CA in production)',
    );
  }
  const own = await openOwnStore(o);
  const storeClient = (o.store ?? own?.opened)?.client;
  const hooks = storeClient && o.managerHooks ? o.managerHooks(storeClient) : undefined;
  // MQData.Tag: the agent status writer (started once the gateway exists) keeps the connected
  // agents' tags in memory; records read them from there, never from the store.
  let tagsOf: ((agentId: string) => string) | undefined;
  const spoolRoot = path.join(config.dataDir, 'spool');
  const sink = await createDefaultSink(
    config,
    logger,
    metrics,
    (id) => tagsOf?.(id) ?? '',
    slotSpoolDir(spoolRoot, o.slot),
  );
  // Spools of gateway processes that no longer run on this host (the process count changed).
  const adoption = adoptOrphanedSpools({
    orphans: orphanedSpoolDirs(spoolRoot, o.slot),
    pipeline: sink,
    logger,
    metrics,
  });
  const protection = protectFromScaleIn(o);
  const gateway = await startGateway({
    config,
    logger,
    sink,
    metrics,
    limits: admissionLimits(config.maxPendingHandshakes),
    reusePort: o.slot !== undefined,
    ...(hooks ? { configSource: hooks.configSource, taskResults: hooks.taskResults } : {}),
  });
  const health = own?.health;
  const control = await startControlApi({
    host: config.apiHost,
    port: config.httpPort,
    sessions: gateway.sessions,
    guard: gateway.guard,
    metrics,
    logger,
    aksk,
    ready: gatewayReadiness({
      draining: () => gateway.draining,
      sink,
      degraded: () => (health?.available === false ? [`store unavailable: ${health.cause}`] : []),
    }),
  });
  const sinkReady = () => sink.health().ready;
  const registrar = startGatewayRegistrar(config, {
    grpcPort: gateway.grpcPort,
    httpPort: control.port,
    load: () => gateway.sessions.size,
    limit: () => advertisedLimit(gateway.sessions.effectiveLimit, gateway.sessions.size, sinkReady()),
    registryStore: o.registryStore,
    aksk,
    logger,
    metrics,
  });
  const loadControl = hooks ? startLoadControl(o, hooks, gateway, control.port, registrar) : undefined;
  if (loadControl) tagsOf = (id) => loadControl.writer.tagsOf(id);
  // Not ready (spool full or its disk failing): tell discovery now, not at the next renewal.
  const stopWatch = watchReadiness(sinkReady, () => void registrar?.registerNow());
  const parts: RunningParts = {
    gateway,
    sink,
    adoption,
    control,
    registrar,
    loadControl,
    hooks,
    own,
    protection,
    stopWatch,
  };
  return {
    gateway,
    controlPort: control.port,
    banner: gatewayBanner(config, {
      grpcPort: gateway.grpcPort,
      controlPort: control.port,
      sinkName: sink.name,
      registered: registrar !== undefined,
    }),
    reloadTls: () => gateway.tls.reload(),
    drain: () => drainGateway(parts),
  };
}

interface RunningParts {
  gateway: Gateway;
  sink: IngestSink;
  adoption: SpoolAdoption;
  control: { close(): void };
  registrar: Registrar | undefined;
  loadControl: LoadControl | undefined;
  hooks: ManagerHooks | undefined;
  own: OwnStore | undefined;
  protection: { stop(): Promise<void> } | undefined;
  stopWatch: () => void;
}

async function drainGateway(p: RunningParts): Promise<void> {
  p.stopWatch();
  p.adoption.stop();
  await p.protection?.stop();
  p.loadControl?.shedder.stop();
  // Leave discovery first, so no agent is sent here while we drain.
  await p.registrar?.stop();
  await p.gateway.shutdown(SHUTDOWN_GRACE_MS);
  await p.loadControl?.writer.close();
  await p.hooks?.close?.();
  await p.sink.close();
  // The pipeline's close ended the shipping of an adopted spool: it is closed and unlocked now.
  await p.adoption.finished;
  p.control.close();
  if (p.own) {
    p.own.health.stop();
    await p.own.opened.close();
  }
}
