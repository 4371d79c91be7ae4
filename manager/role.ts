/**
 * The manager role: the API on uWebSockets.js (FLEETGATE_MANAGER_PORT, health routes included),
 * registered in discovery as `hids_manage` when given a target, the first admin created on an
 * empty store, and the two things the gateway takes from the manager: the config source (what is
 * pushed at an agent's first heartbeat) and a factory of HeartbeatWriters (agent status and the
 * gateway aggregate). `fleetgate all` and `fleetgate manager` call `startManagerRole`.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Registry } from 'prom-client';
import type { RegistrarMetrics } from '../discovery/metrics.js';
import { type Registrar, type RegistrarTarget, startRegistrar } from '../discovery/registrar.js';
import type { ConfigSource } from '../gateway/agent/config-source.js';
import type { TaskResultSink } from '../gateway/agent/special-records.js';
import type { Config } from '../platform/config/env.js';
import { serveUws } from '../platform/http/uws-adapter.js';
import type { Logger } from '../platform/obs/logger.js';
import {
  createHeartbeatWriter,
  type HeartbeatWriter,
  type HeartbeatWriterOptions,
} from './agent-status-writer.js';
import { createManagerApi, type ManagerApi, type ManagerApiOptions } from './api.js';
import { createStoreConfigSource } from './configs.js';
import { attachLiveSocket, type LivePrincipal } from './live-socket.js';
import { resolveManagerSecret } from './secret.js';
import { createDispatcher, type Dispatcher, type DispatcherOptions } from './tasks/dispatcher.js';
import { createResultSink, deliverDirect, type ResultSink } from './tasks/result-sink.js';
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
  const first = await ensureFirstAdmin(api.users, config.admin);
  if (first.created) {
    if (first.generatedPassword) {
      (o.print ?? console.log)(
        `manager: created the first admin user "${first.username}" with password ${first.generatedPassword}\n` +
          '         (shown once; change it with `fleetgate users passwd`, or set FLEETGATE_ADMIN before the first start)',
      );
    }
    log.info({ username: first.username, fromEnv: !first.generatedPassword }, 'first admin created');
  }
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
  const taskResults: ResultSink = createResultSink({
    deliver: deliverDirect(api.tasks),
    logger: o.logger,
    metrics: api.taskContext.metrics,
    ...o.resultSink,
  });
  taskResults.start();
  return {
    port,
    api,
    configSource,
    taskResults,
    taskService: api.tasks,
    ...(dispatcher ? { dispatcher } : {}),
    heartbeatWriter: (gw) =>
      createHeartbeatWriter({
        client: o.store.client,
        tablePrefix: config.tablePrefix,
        logger: o.logger,
        ...gw,
      }),
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
