/**
 * The manager role's wiring: the API on uWebSockets.js (FLEETGATE_MANAGER_PORT, health routes
 * included), registered in discovery as `hids_manage` when given a target, the first admin created
 * on an empty store, the task dispatcher, and what a gateway takes from the manager
 * (gateway/process/manager-hooks.ts): the config source (pushed at an agent's first heartbeat),
 * agent status writers (agent status and the gateway aggregate) and the task-result sink.
 * `startManagerFromConfig` builds the role from config (`fleetgate manager`, `fleetgate all`);
 * `managerHooksFromStore` gives a gateway without a manager in its process the same hooks.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Registry } from 'prom-client';
import { createRegistrarMetrics, type RegistrarMetrics } from '../discovery/metrics.js';
import { type Registrar, type RegistrarTarget, startRegistrar } from '../discovery/registrar.js';
import type { RegistryStore } from '../discovery/registry-store.js';
import type { ConfigSource } from '../gateway/agent/config-source.js';
import type { TaskResultSink } from '../gateway/agent/special-records.js';
import type { ManagerHooks } from '../gateway/process/manager-hooks.js';
import type { Config } from '../platform/config/env.js';
import { serveUws } from '../platform/http/uws-adapter.js';
import type { Logger } from '../platform/obs/logger.js';
import type { Metrics } from '../platform/obs/metrics.js';
import { type OpenedStore, openStore } from '../platform/store/open.js';
import { createStatusWriterWithHistory } from './agent-status/with-history.js';
import type { HeartbeatWriter, HeartbeatWriterOptions } from './agent-status-writer.js';
import { createManagerApi, type ManagerApi, type ManagerApiOptions } from './api.js';
import { createStoreConfigSource } from './configs.js';
import { attachLiveSocket, type LivePrincipal } from './live-socket.js';
import { resolveManagerSecret } from './secret.js';
import {
  contextFrom,
  createDispatcher,
  type Dispatcher,
  type DispatcherOptions,
} from './tasks/dispatcher.js';
import { createResultSink, deliverDirect, type ResultSink } from './tasks/result-sink.js';
import { createTaskService } from './tasks/service.js';
import type { TaskService } from './tasks/types.js';
import { ensureFirstAdmin } from './users.js';

export const MANAGER_SERVICE_NAME = 'hids_manage';

export interface ManagerRoleOptions {
  config: Pick<Config, 'host' | 'managerPort' | 'advertiseHost' | 'dataDir' | 'tablePrefix' | 'admin'> &
    Partial<Pick<Config, 'apiHost' | 'taskRetentionDays'>>;
  store: { client: DynamoDBClient };
  logger: Logger;
  /** The process's prom-client registry; `/metrics` serves it. */
  registry: Registry;
  /** AK/SK pairs gateways sign their callbacks with (resolveAksk). */
  aksk: ReadonlyArray<readonly [string, string]>;
  /** Register as `hids_manage` there (FLEETGATE_SD_ADDRS, or the local registry store in `all`). */
  registrar?: { target: RegistrarTarget; metrics?: RegistrarMetrics; intervalMs?: number };
  /** Overrides of the API's limits and clocks (tests). */
  api?: Partial<
    Omit<ManagerApiOptions, 'client' | 'tablePrefix' | 'secret' | 'aksk' | 'logger' | 'registry'>
  >;
  /** Environment for the secret (FLEETGATE_MANAGER_SECRET, cloud mode). Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Where the generated first-admin password goes, once. Default: stdout. */
  print?: (text: string) => void;
  /** Largest request body the listener accepts. Default 4 MiB. */
  maxBodyBytes?: number;
  /**
   * The task dispatcher of this process (tasks/dispatcher.ts): `false` runs none (another
   * process or the scheduled Lambda dispatches); an object overrides its timing (tests).
   */
  dispatcher?:
    | false
    | Partial<Omit<DispatcherOptions, 'ctx' | 'client' | 'tablePrefix' | 'aksk' | 'logger' | 'registry'>>;
  /** Batching of the in-process task-result sink. */
  resultSink?: { flushMs?: number; batchSize?: number; maxBuffer?: number };
  /** Bounds of the console's WebSocket (live-socket.ts); tests shorten them. */
  liveSocket?: Partial<Omit<Parameters<typeof attachLiveSocket>[1], 'feed' | 'authenticate' | 'logger'>>;
}

export type HeartbeatWriterFactory = (
  gateway: Pick<HeartbeatWriterOptions, 'sessions' | 'gatewayId'> &
    Partial<Omit<HeartbeatWriterOptions, 'client' | 'tablePrefix' | 'sessions' | 'gatewayId'>>,
) => HeartbeatWriter;

export interface ManagerRole {
  readonly port: number;
  readonly api: ManagerApi;
  /** For the gateway: the effective config pushed at an agent's first heartbeat. */
  readonly configSource: ConfigSource;
  /** For the gateway: `heartbeatWriter({ sessions, gatewayId, controlAddr }).start()`. */
  readonly heartbeatWriter: HeartbeatWriterFactory;
  /** For a gateway in this process: task results go straight to the task service, batched. */
  readonly taskResults: TaskResultSink;
  /** The task engine (create, run, cancel, views, results, quick tasks). */
  readonly taskService: TaskService;
  /** This process's dispatcher; undefined with `dispatcher: false`. */
  readonly dispatcher?: Dispatcher;
  /** What the gateway of this process takes from this manager (`fleetgate all`). */
  readonly gatewayHooks: ManagerHooks;
  /** Evicts from discovery, then stops listening. */
  close(): Promise<void>;
}

export async function startManagerRole(o: ManagerRoleOptions): Promise<ManagerRole> {
  const log = o.logger.child({ component: 'manager' });
  const { config } = o;
  // Refused here, before anything listens (docs/hardening.md §5 test 28).
  const env = o.env ?? process.env;
  const secret = resolveManagerSecret({ env, dataDir: config.dataDir });
  if (secret.source === 'generated') {
    log.warn(
      { file: secret.file },
      'generated the manager token secret (set FLEETGATE_MANAGER_SECRET to share one across managers)',
    );
  }
  let ready: boolean | string = 'starting';
  const api = createManagerApi({
    client: o.store.client,
    tablePrefix: config.tablePrefix,
    secret: secret.secret,
    aksk: o.aksk,
    logger: o.logger,
    registry: o.registry,
    ready: () => ready,
    ...(config.taskRetentionDays ? { taskRetentionDays: config.taskRetentionDays } : {}),
    ...(env.FLEETGATE_CONSOLE_DIR ? { consoleDir: env.FLEETGATE_CONSOLE_DIR } : {}),
    ...o.api,
  });
  await createFirstAdmin(api, o, log);
  let liveSocket: { close(): void } | undefined;
  const server = await serveUws(api.handler, {
    host: config.apiHost ?? config.host,
    port: config.managerPort,
    maxBodyBytes: o.maxBodyBytes ?? 4 * 1024 * 1024,
    onError: (err) => log.error({ err }, 'manager handler failed'),
    registry: o.registry,
    logger: log,
    attach: (app) => {
      liveSocket = attachLiveSocket(app, {
        feed: api.live,
        authenticate: (credential, peer) => whoIs(api, credential, peer),
        logger: o.logger,
        registry: o.registry,
        ...o.liveSocket,
      });
    },
  });
  api.live.start();
  const port = server.port;
  let registrar: Registrar | undefined;
  if (o.registrar) {
    registrar = startRegistrar({
      target: o.registrar.target,
      logger: o.logger,
      ...(o.registrar.metrics ? { metrics: o.registrar.metrics } : {}),
      ...(o.registrar.intervalMs ? { intervalMs: o.registrar.intervalMs } : {}),
      registrations: () => [{ name: MANAGER_SERVICE_NAME, ip: config.advertiseHost, port, weight: 0 }],
    });
  }
  ready = true;
  log.info(
    { host: config.apiHost ?? config.host, port, registered: registrar !== undefined },
    'manager listening',
  );
  const configSource = createStoreConfigSource({ client: o.store.client, tablePrefix: config.tablePrefix });
  const { dispatcher, taskResults } = startTaskEngine(api, o);
  const heartbeatWriter: HeartbeatWriterFactory = (gw) =>
    createStatusWriterWithHistory({
      client: o.store.client,
      tablePrefix: config.tablePrefix,
      logger: o.logger,
      ...gw,
    });
  return {
    port,
    api,
    configSource,
    taskResults,
    taskService: api.tasks,
    ...(dispatcher ? { dispatcher } : {}),
    heartbeatWriter,
    // The manager closes its own sink; the gateway closes the status writers it asked for.
    gatewayHooks: { configSource, taskResults, agentStatusWriter: heartbeatWriter },
    async close() {
      ready = 'stopping';
      api.live.stop();
      liveSocket?.close();
      await dispatcher?.stop();
      await taskResults.close();
      await registrar?.stop();
      server.close();
    },
  };
}

/** On a store with no admin, the first one; a generated password is printed once. */
async function createFirstAdmin(api: ManagerApi, o: ManagerRoleOptions, log: Logger): Promise<void> {
  const first = await ensureFirstAdmin(api.users, o.config.admin);
  if (!first.created) return;
  if (first.generatedPassword) {
    (o.print ?? console.log)(
      `manager: created the first admin user "${first.username}" with password ${first.generatedPassword}\n` +
        '         (shown once; change it with `fleetgate users passwd`, or set FLEETGATE_ADMIN before the first start)',
    );
  }
  log.info({ username: first.username, fromEnv: !first.generatedPassword }, 'first admin created');
}

/** This process's dispatcher (unless `dispatcher: false`) and the in-process task-result sink. */
function startTaskEngine(
  api: ManagerApi,
  o: ManagerRoleOptions,
): { dispatcher: Dispatcher | undefined; taskResults: ResultSink } {
  const dispatcher =
    o.dispatcher === false
      ? undefined
      : createDispatcher({
          ...o.dispatcher,
          ctx: api.taskContext,
          aksk: o.aksk,
          logger: o.logger,
        });
  dispatcher?.start();
  // A task run through this process's API is dispatched at once, not after the idle period.
  if (dispatcher) api.taskContext.onRun = () => dispatcher.wake();
  const taskResults = createResultSink({
    deliver: deliverDirect(api.tasks),
    logger: o.logger,
    metrics: api.taskContext.metrics,
    ...o.resultSink,
  });
  taskResults.start();
  return { dispatcher, taskResults };
}

export interface ManagerFromConfigOptions {
  config: Readonly<Config>;
  logger: Logger;
  metrics: Metrics;
  aksk: ReadonlyArray<readonly [string, string]>;
  /** The store of this process (`all`); else opened here, and closed by `drain`. */
  store?: OpenedStore;
  /** The registry of the discovery in this process (`all`): registered there directly. */
  registryStore?: RegistryStore;
}

export interface ManagerProcess {
  readonly manager: ManagerRole;
  /** The store the manager works on (`embedded`, `endpoint`, `aws`). */
  readonly storeKind: OpenedStore['kind'];
  /** Where it registered: the discovery nodes of FLEETGATE_SD_ADDRS; empty for none or the local one. */
  readonly registeredWith: string[];
  /** Evicts from discovery, stops listening (and closes the store when it opened it). */
  drain(): Promise<void>;
}

/**
 * The manager from config: registered as `hids_manage` in the discovery of this process
 * (`registryStore`), else with FLEETGATE_SD_ADDRS when set. A SecretError (no usable token secret)
 * is thrown before anything listens.
 */
export async function startManagerFromConfig(o: ManagerFromConfigOptions): Promise<ManagerProcess> {
  const { config, metrics } = o;
  const store = o.store ?? (await openStore(config, { logger: o.logger }));
  const remote = o.registryStore ? [] : config.sdAddrs.filter((a) => a !== 'all');
  const [ak, sk] = o.aksk[0]!;
  const registrar = o.registryStore
    ? { target: { store: o.registryStore } }
    : remote.length > 0
      ? { target: { sdAddrs: remote, ak, sk }, metrics: createRegistrarMetrics(metrics.registry) }
      : undefined;
  let manager: ManagerRole;
  try {
    manager = await startManagerRole({
      config,
      store,
      logger: o.logger,
      registry: metrics.registry,
      aksk: o.aksk,
      ...(registrar ? { registrar } : {}),
    });
  } catch (err) {
    if (!o.store) await store.close();
    throw err;
  }
  return {
    manager,
    storeKind: store.kind,
    registeredWith: remote,
    async drain() {
      await manager.close();
      if (!o.store) await store.close();
    },
  };
}

/**
 * The manager's hooks for a gateway with a store but no manager in its process: configs read from
 * the store, agent status written to it, and task results applied to it directly (batched), as
 * the manager's updateSubTask would.
 */
export function managerHooksFromStore(o: {
  client: DynamoDBClient;
  tablePrefix: string;
  logger: Logger;
  registry: Registry;
  aksk: ReadonlyArray<readonly [string, string]>;
}): ManagerHooks {
  const { client, tablePrefix, logger } = o;
  const ctx = contextFrom({ client, tablePrefix, logger, registry: o.registry });
  const taskResults = createResultSink({
    deliver: deliverDirect(createTaskService(ctx, { aksk: o.aksk })),
    logger,
  });
  taskResults.start();
  return {
    configSource: createStoreConfigSource({ client, tablePrefix }),
    taskResults,
    agentStatusWriter: (gw) => createStatusWriterWithHistory({ client, tablePrefix, logger, ...gw }),
    close: () => taskResults.close(),
  };
}

/**
 * A credential's principal, as the manager's router decides it (session token or API key,
 * revocation, disabled owners, rate limits): the console socket asks `GET /api/fleet/me` with
 * it instead of re-implementing authentication.
 */
async function whoIs(api: ManagerApi, credential: string, peer: string): Promise<LivePrincipal | undefined> {
  const res = await api.handler({
    method: 'GET',
    path: '/api/fleet/me',
    query: '',
    headers: { authorization: `Bearer ${credential}` },
    body: Buffer.alloc(0),
    remoteAddress: peer,
  });
  if (res.status !== 200) return undefined;
  const me = JSON.parse(String(res.body)) as { kind: string; id: string; role: string };
  return { kind: me.kind, id: me.id, role: me.role };
}
