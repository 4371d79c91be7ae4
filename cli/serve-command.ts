/**
 * `fleetgate gateway` and `fleetgate all`: validate the environment, make sure the PKI exists
 * (a development PKI is generated on first start), start the roles, print where they listen
 * and how to point an agent at them, and drain on SIGTERM/SIGINT.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createRegistrarMetrics } from '../discovery/metrics.js';
import { type Registrar, startRegistrar } from '../discovery/registrar.js';
import { createRegistryStore, type RegistryStore } from '../discovery/registry-store.js';
import { startDiscovery } from '../discovery/service.js';
import { createLoadShedder } from '../gateway/agent/load-shedder.js';
import { admissionLimits } from '../gateway/grpc/http2-server.js';
import { createDefaultSink } from '../gateway/ingest/default-sink.js';
import { startScaleInProtection } from '../gateway/ingest/scale-in-protection.js';
import { startControlApi } from '../gateway/process/control-api.js';
import { startGateway } from '../gateway/process/gateway.js';
import { createLoadMeter } from '../gateway/process/gateway-load.js';
import { advertisedLimit, gatewayReadiness, watchReadiness } from '../gateway/process/gateway-readiness.js';
import { gatewayRegistrations } from '../gateway/process/gateway-registrations.js';
import { createHeartbeatWriter } from '../manager/agent-status-writer.js';
import { createStoreConfigSource } from '../manager/configs.js';
import { type ManagerRole, startManagerRole } from '../manager/role.js';
import { type ConnectionEvent, createConnectionRecorder } from '../manager/store/connection-history-store.js';
import { contextFrom } from '../manager/tasks/dispatcher.js';
import { createResultSink, deliverDirect } from '../manager/tasks/result-sink.js';
import { createTaskService } from '../manager/tasks/service.js';
import { type Config, ConfigError, isLoopback, loadConfig, resolveAksk } from '../platform/config/env.js';
import { createLogger } from '../platform/obs/logger.js';
import { createMetrics } from '../platform/obs/metrics.js';
import { serverCertificateNames } from '../platform/pki/server-names.js';
import { type OpenedStore, openStore } from '../platform/store/open.js';
import { type StoreHealth, watchStoreHealth } from '../platform/store/store-health.js';
import { consoleUrl, envHelp } from './main.js';
import { type Preflight, preflight } from './preflight.js';

const SHUTDOWN_GRACE_MS = 20_000;

export type Role = 'gateway' | 'discovery' | 'all';

const ROLE_TEXT: Record<Role, string> = {
  gateway:
    'Runs the agent gateway (Elkeid AgentCenter): agents connect with mutual TLS, gRPC over HTTP/2\non FLEETGATE_GRPC_PORT; the control API (/conn/*, /command, AK/SK-signed) on FLEETGATE_HTTP_PORT.\nRegisters as hids_svr_grpc and hids_svr_http with the discovery nodes of FLEETGATE_SD_ADDRS.\nWith FLEETGATE_DYNAMODB_ENDPOINT or AWS_REGION it also writes agent status, pushes the stored\nconfig at first heartbeat and applies the desired connection limit (FLEETGATE_SHED_RATE/ORDER).',
  discovery:
    'Runs service discovery (Elkeid ServiceDiscovery) on FLEETGATE_SD_PORT over the DynamoDB registry\n(embedded dynalite under $FLEETGATE_DATA_DIR/dynamodb unless FLEETGATE_DYNAMODB_ENDPOINT or\nAWS_REGION is set). /registry/detail answers least-loaded gateways first.',
  all: 'Runs every role in one process on the embedded defaults: the gateway, discovery (the gateway\nregisters with it) and the manager (agent status, configs pushed at first heartbeat, tags).',
};

function help(role: Role): string {
  return `usage: fleetgate ${role} [--help]

${ROLE_TEXT[role]}
Signals: SIGTERM/SIGINT drain (GOAWAY, end agent streams after their records are stored, flush)
and exit 0; a second signal exits at once. SIGHUP reloads certificates and the CRL.

${envHelp()}`;
}

export async function runServe(role: Role, argv: string[]): Promise<number> {
  try {
    const { values } = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' } },
      strict: true,
    });
    if (values.help) {
      console.log(help(role));
      return 0;
    }
  } catch (err) {
    console.error(`fleetgate ${role}: ${(err as Error).message}\n\n${help(role)}`);
    return 2;
  }
  let config: Readonly<Config>;
  try {
    config = forRole(role, loadConfig());
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`fleetgate: ${err.message}`);
      return 2;
    }
    throw err;
  }
  // Everything that can be checked before a port opens is, with one line per cause.
  const pre = await preflight(role, config);
  if (pre.problems.length > 0) {
    console.error(`fleetgate ${role}: cannot start:\n  - ${pre.problems.join('\n  - ')}`);
    return 2;
  }
  try {
    return await serve(role, config, pre);
  } catch (err) {
    // What preflight cannot foresee (a store that will not open, a port taken meanwhile): one
    // line, exit 2, and the process exits so listeners already open do not linger.
    console.error(`fleetgate ${role}: cannot start: ${(err as Error).message}`);
    process.exitCode = 2;
    setTimeout(() => process.exit(2), 100).unref();
    return 2;
  }
}

/** `all` is the single-machine quick start: its manager and control APIs stay on loopback. */
function forRole(role: Role, config: Readonly<Config>): Readonly<Config> {
  if (role !== 'all' || config.apiHostExplicit) return config;
  return Object.freeze({ ...config, apiHost: '127.0.0.1' });
}

async function serve(role: Role, config: Readonly<Config>, pre: Preflight): Promise<number> {
  const logger = createLogger(config.logLevel);
  const aksk = resolveAksk(config);
  const metrics = createMetrics();
  // Everything started is stopped in reverse order on SIGTERM.
  const stops: Array<() => Promise<void> | void> = [];
  const lines: string[] = [`fleetgate ${role} is up`];
  const withGateway = role === 'gateway' || role === 'all';
  const withDiscovery = role === 'discovery' || role === 'all';

  let registryStore: RegistryStore | undefined;
  let manager: ManagerRole | undefined;
  let opened: OpenedStore | undefined;
  if (withDiscovery) {
    const store = await openStore(config, { logger });
    opened = store;
    stops.push(() => store.close());
    registryStore = createRegistryStore({ client: store.client, tablePrefix: config.tablePrefix });
    const discovery = await startDiscovery({
      host: config.host,
      port: config.sdPort,
      store: registryStore,
      aksk,
      logger,
      registry: metrics.registry,
    });
    stops.push(() => discovery.close());
    lines.push(`  discovery          http://${config.host}:${discovery.port}   (store: ${store.kind})`);
    // In `all`, the gateway's own discovery is reachable as FLEETGATE_SD_ADDRS=all would say.
    if (config.sdAddrs.length === 0 || config.sdAddrs.includes('all')) {
      lines.push(
        `  agents ask         http://${config.advertiseHost}:${discovery.port}/registry/detail?name=hids_svr_grpc`,
      );
    }
  }

  if (role === 'all' && registryStore && opened) {
    manager = await startManagerRole({
      config,
      store: opened,
      logger,
      registry: metrics.registry,
      aksk,
      registrar: { target: { store: registryStore } },
    });
    const m = manager;
    stops.push(() => m.close());
    lines.push(
      `  manager API        http://${config.apiHost}:${manager.port}   (POST /api/v1/user/login)`,
      `  operator console   ${consoleUrl(config.apiHost, manager.port)}`,
    );
  }

  let drainGateway: (() => Promise<void>) | undefined;
  let storeHealth: StoreHealth | undefined;
  if (withGateway) {
    if (pre.generatedPki) {
      logger.warn(
        { pkiDir: config.pkiDir },
        'generated a NEW development CA and certificates: agents trusting another CA are refused (use your own CA in production)',
      );
    }
    // A gateway with a store (the process's own, or a configured DynamoDB next to a Lambda
    // manager) writes agent status, pushes configs and applies load control itself.
    // The store is not needed to take records: the gateway starts and serves agents while it is
    // down (tables are created in the background), and reports itself degraded meanwhile.
    if (!opened && (config.dynamodbEndpoint !== undefined || config.awsRegion !== undefined)) {
      const store = await openStore(config, { logger, ensure: false });
      opened = store;
      const health = watchStoreHealth({
        client: store.client,
        logger,
        registry: metrics.registry,
        ...(config.dynamodbEndpoint !== undefined ? { ensurePrefix: config.tablePrefix } : {}),
      });
      storeHealth = health;
      stops.push(() => {
        health.stop();
        return store.close();
      });
    }
    const storeClient = opened?.client;
    const configSource =
      manager?.configSource ??
      (storeClient
        ? createStoreConfigSource({ client: storeClient, tablePrefix: config.tablePrefix })
        : undefined);
    // Without a manager here, task results are applied to the store directly (batched), as the
    // manager's updateSubTask would.
    const ownResults =
      !manager && storeClient
        ? createResultSink({
            deliver: deliverDirect(
              createTaskService(
                contextFrom({
                  client: storeClient,
                  tablePrefix: config.tablePrefix,
                  logger,
                  registry: metrics.registry,
                }),
                { aksk },
              ),
            ),
            logger,
          })
        : undefined;
    ownResults?.start();
    const taskResults = manager?.taskResults ?? ownResults;
    // MQData.Tag: the agent status writer (created below, once the gateway exists) keeps the
    // connected agents' tags in memory; records read them from there, never from the store.
    let tagsOf: ((agentId: string) => string) | undefined;
    const sink = await createDefaultSink(config, logger, metrics, (id) => tagsOf?.(id) ?? '');
    // On ECS: no scale-in or deployment stops this task while its spool holds records.
    const protection = process.env.ECS_AGENT_URI
      ? startScaleInProtection({
          agentUri: process.env.ECS_AGENT_URI,
          pendingRecords: async () => (await metrics.spoolPending.get()).values[0]?.value ?? 0,
          logger,
          registry: metrics.registry,
        })
      : undefined;
    const gateway = await startGateway({
      config,
      logger,
      sink,
      metrics,
      limits: admissionLimits(config.maxPendingHandshakes),
      ...(configSource ? { configSource } : {}),
      // Task results go to the task service of the manager in this process (batched).
      ...(taskResults ? { taskResults } : {}),
    });
    const readiness = gatewayReadiness({
      draining: () => gateway.draining,
      sink,
      degraded: () => (storeHealth?.available === false ? [`store unavailable: ${storeHealth.cause}`] : []),
    });
    const sinkReady = () => sink.health().ready;
    const control = await startControlApi({
      host: config.apiHost,
      port: config.httpPort,
      sessions: gateway.sessions,
      guard: gateway.guard,
      metrics,
      logger,
      aksk,
      ready: readiness,
    });
    const registrar = startGatewayRegistrar(config, {
      grpcPort: gateway.grpcPort,
      httpPort: control.port,
      load: () => gateway.sessions.size,
      limit: () => advertisedLimit(gateway.sessions.effectiveLimit, gateway.sessions.size, sinkReady()),
      store: registryStore,
      aksk,
      logger,
      metrics,
    });
    const connections = storeClient
      ? createConnectionRecorder({
          client: storeClient,
          tablePrefix: config.tablePrefix,
          logger,
          registry: metrics.registry,
        })
      : undefined;
    connections?.start();
    // With a store, agent status and heartbeats go to it, and the desired limit is applied.
    const gw = {
      sessions: gateway.sessions,
      gatewayId: `${config.advertiseHost}:${gateway.grpcPort}`,
      controlAddr: `${controlHost(config)}:${control.port}`,
      registry: metrics.registry,
      tagsMs: config.tagRefreshMs,
      // What the console shows per gateway (records/s in and into Kafka, spool depth) and per agent.
      load: createLoadMeter(metrics),
      ...(connections ? { onConnection: (e: ConnectionEvent) => connections.record(e) } : {}),
    };
    const writer =
      manager?.heartbeatWriter(gw) ??
      (storeClient
        ? createHeartbeatWriter({ client: storeClient, tablePrefix: config.tablePrefix, logger, ...gw })
        : undefined);
    writer?.start();
    if (writer) tagsOf = (id) => writer.tagsOf(id);
    const shedder = writer
      ? createLoadShedder({
          sessions: gateway.sessions,
          desiredLimit: () => writer.desiredLimit(),
          ratePerSecond: config.shedRate,
          order: config.shedOrder,
          logger,
          registry: metrics.registry,
          // Tell discovery the new limit now, not at the next renewal.
          onLimitChange: () => void registrar?.registerNow(),
        })
      : undefined;
    shedder?.start();
    // Not ready (spool full or its disk failing): tell discovery now, not at the next renewal.
    const stopWatch = watchReadiness(sinkReady, () => void registrar?.registerNow());
    drainGateway = async () => {
      stopWatch();
      await protection?.stop();
      shedder?.stop();
      // Leave discovery first, so no agent is sent here while we drain.
      await registrar?.stop();
      await gateway.shutdown(SHUTDOWN_GRACE_MS);
      await writer?.close();
      await connections?.close();
      await ownResults?.close();
      await sink.close();
      control.close();
    };
    process.on('SIGHUP', () => gateway.tls.reload());
    const client = path.join(config.pkiDir, 'client');
    lines.push(
      `  agent gRPC (mTLS)  ${config.host}:${gateway.grpcPort}`,
      `  control API        http://${config.apiHost}:${control.port}   (AK/SK: ${path.join(config.dataDir, 'aksk')} or FLEETGATE_AKSK)`,
      `  records go to      ${sink.name}`,
      `  point an agent at ${config.advertiseHost}:${gateway.grpcPort}: it must trust ${path.join(config.pkiDir, 'ca.crt')}`,
      config.identity === 'fleet'
        ? `  and present ${client}.crt / ${client}.key (the fleet certificate: whoever holds it can act as any agent; FLEETGATE_IDENTITY=per-agent binds each agent to its own).`
        : `  and present its own certificate (CN = its AgentID; \`fleetgate certs agent\`): per-agent identity.`,
      serverNameLine(config.pkiDir),
      `  simulate agents:   npx fleetgate sim --gateway 127.0.0.1:${gateway.grpcPort} --pki ${config.pkiDir} --agents 100`,
    );
    if (!registrar) lines.push('  discovery          not registered (set FLEETGATE_SD_ADDRS)');
  }
  if (isLoopback(config.apiHost) && role === 'all') {
    lines.push(
      '  manager and control APIs listen on loopback only (FLEETGATE_API_HOST to open them to the network)',
    );
  }
  if (pre.generatedPki) {
    lines.push(
      `  NEW development CA generated in ${config.pkiDir}: agents trusting any other CA are refused`,
    );
  }
  console.log(lines.join('\n'));

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      // Once drained and stopped, exit: a client's keep-alive socket or an SDK timer must not
      // hold a drained process for seconds (the exit waits at most this long for them).
      const exit = (code: number) => {
        resolve(code);
        setTimeout(() => process.exit(code), 250).unref();
      };
      (async () => {
        await drainGateway?.();
        for (const s of stops.reverse()) await s();
      })().then(
        () => exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          exit(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/**
 * Keeps the gateway's registrations (roles/gateway-registrations.ts) in discovery. With
 * FLEETGATE_SD_ADDRS the registrar talks Elkeid's signed HTTP API (so a stock Elkeid SD works
 * too); in `all` it writes the shared registry store directly.
 */
function startGatewayRegistrar(
  config: Readonly<Config>,
  o: {
    grpcPort: number;
    httpPort: number;
    load: () => number;
    /** The connection limit now: FLEETGATE_MAX_CONNECTIONS, or lower under load control. */
    limit: () => number;
    store: RegistryStore | undefined;
    aksk: Array<[string, string]>;
    logger: ReturnType<typeof createLogger>;
    metrics: ReturnType<typeof createMetrics>;
  },
): Registrar | undefined {
  const remote = config.sdAddrs.filter((a) => a !== 'all');
  const [ak, sk] = o.aksk[0]!;
  const target = remote.length > 0 ? { sdAddrs: remote, ak, sk } : o.store ? { store: o.store } : undefined;
  if (!target) return undefined;
  return startRegistrar({
    target,
    logger: o.logger,
    metrics: createRegistrarMetrics(o.metrics.registry),
    registrations: () =>
      gatewayRegistrations({
        advertiseHost: config.advertiseHost,
        grpcPort: o.grpcPort,
        httpPort: o.httpPort,
        controlHost: controlHost(config),
        load: o.load(),
        limit: o.limit(),
        version: process.env.npm_package_version ?? '0.1.0',
      }),
  });
}

/** Where others reach the control API: loopback when it listens there, else the advertised host. */
function controlHost(config: Readonly<Config>): string {
  return isLoopback(config.apiHost) ? config.apiHost : config.advertiseHost;
}

/** The banner's line on the server certificate's names: what it carries, not what we hope. */
function serverNameLine(pkiDir: string): string {
  const names = serverCertificateNames(path.join(pkiDir, 'server.crt'));
  return names.includes('elkeid.com')
    ? '  the server certificate carries SAN elkeid.com (what stock Elkeid agents verify).'
    : `  WARNING: the server certificate's names (${names.join(', ') || 'none'}) lack elkeid.com: stock Elkeid agents will refuse it.`;
}
