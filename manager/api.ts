/**
 * The manager's HTTP API as one runtime-agnostic Handler: the uWS listener (process.ts) and the
 * Lambda function (lambda.ts) serve the same thing. Route modules: routes/elkeid.ts (Elkeid v1
 * agent endpoints), routes/fleet.ts (our own API), routes/tasks.ts (tasks: Elkeid v1 and ours).
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Counter, Histogram, type Registry } from 'prom-client';
import { createRegistryStore } from '../discovery/registry-store.js';
import { createVerifier } from '../platform/http/aksk.js';
import { healthRoutes } from '../platform/http/health-routes.js';
import type { Handler } from '../platform/http/types.js';
import type { Logger } from '../platform/obs/logger.js';
import { agentIndexRoute, createAgentIndex } from './agent-index.js';
import { type AgentReader, createAgentReader } from './agents.js';
import { type ApiKeyStore, createApiKeyStore } from './apikeys.js';
import { type AuditLog, createAuditLog } from './audit.js';
import { type ConfigStore, createConfigStore } from './configs.js';
import { consoleAssets } from './console-assets.js';
import type { ManagerDeps } from './deps.js';
import { createLiveFeed, type LiveFeed, liveRoute } from './live-feed.js';
import { createRateLimiter, type RateLimitOptions } from './rate-limit.js';
import { createManagerRouter, type ManagerRoute } from './router.js';
import { agentHistoryRoutes } from './routes/agent-history.js';
import { elkeidRoutes } from './routes/elkeid.js';
import { fleetRoutes } from './routes/fleet.js';
import { taskRoutes } from './routes/tasks.js';
import { createManagerStore, type ManagerStore } from './store.js';
import { createTagStore, type TagStore } from './tags.js';
import { type TaskContext, taskTables } from './tasks/context.js';
import { createTaskMetrics } from './tasks/metrics.js';
import { createTaskService, type TaskServiceOptions } from './tasks/service.js';
import type { TaskService } from './tasks/types.js';
import { createTokenSigner, DEFAULT_TOKEN_TTL_MS, type TokenSigner } from './tokens.js';
import { createUserStore, type UserStore } from './users.js';

export interface ManagerApiOptions {
  client: DynamoDBClient;
  tablePrefix: string;
  /** Token-signing secret (secret.ts checked it). */
  secret: Buffer;
  /** AK/SK pairs gateways sign their callbacks with. */
  aksk: ReadonlyArray<readonly [string, string]>;
  logger: Logger;
  registry: Registry;
  ready?: () => boolean | string;
  now?: () => number;
  tokenTtlMs?: number;
  /** Per user or API key. Default 20/s, burst 60. */
  rateLimit?: Pick<RateLimitOptions, 'ratePerSecond' | 'burst'>;
  /** Per gateway AK. Default 500/s, burst 1000. */
  gatewayRateLimit?: Pick<RateLimitOptions, 'ratePerSecond' | 'burst'>;
  /** Sign-in attempts per account and address. Default 5 per minute. */
  loginRateLimit?: Pick<RateLimitOptions, 'ratePerSecond' | 'burst'>;
  /** Default 2,000,000 agent items per list/filter request. */
  scanLimit?: number;
  /** Default 100,000. */
  sortLimit?: number;
  userCacheMs?: number;
  auditRetentionDays?: number;
  /** Days an ended task is kept (FLEETGATE_TASK_RETENTION_DAYS). Default 30. */
  taskRetentionDays?: number;
  /** Task engine options (fan-out guard, result data types, the gateway call in tests). */
  tasks?: Partial<Omit<TaskServiceOptions, 'aksk'>>;
  /** The built operator console (console-assets.ts); default dist/console, `false` serves none. */
  consoleDir?: string | false;
}

export interface ManagerApi {
  handler: Handler;
  routes: ManagerRoute[];
  store: ManagerStore;
  users: UserStore;
  apiKeys: ApiKeyStore;
  tokens: TokenSigner;
  audit: AuditLog;
  agents: AgentReader;
  tags: TagStore;
  configs: ConfigStore;
  /** The task engine (tasks/service.ts) and the context its dispatcher shares. */
  tasks: TaskService;
  taskContext: TaskContext;
  /** What the console shows live (the WebSocket pushes it, GET /api/fleet/live answers it). */
  live: LiveFeed;
}

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/** Requests by route pattern and status, and their durations: what the router reports after each. */
function requestMetrics(registry: Registry): (route: string, status: number, seconds: number) => void {
  const requests = metric(
    registry,
    'fleetgate_manager_http_requests_total',
    () =>
      new Counter({
        name: 'fleetgate_manager_http_requests_total',
        help: 'manager API requests by route pattern and HTTP status',
        labelNames: ['route', 'status'],
        registers: [registry],
      }),
  );
  const seconds = metric(
    registry,
    'fleetgate_manager_http_request_seconds',
    () =>
      new Histogram({
        name: 'fleetgate_manager_http_request_seconds',
        help: 'manager API request duration by route pattern',
        labelNames: ['route'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [registry],
      }),
  );
  return (route, status, s) => {
    requests.inc({ route, status: String(status) });
    seconds.observe({ route }, s);
  };
}

export function createManagerApi(o: ManagerApiOptions): ManagerApi {
  const now = o.now ?? Date.now;
  const log = o.logger.child({ component: 'manager-api' });
  const store = createManagerStore(o.client, o.tablePrefix);
  const users = createUserStore(store, {
    now,
    ...(o.userCacheMs !== undefined ? { cacheMs: o.userCacheMs } : {}),
  });
  const apiKeys = createApiKeyStore(store, { now });
  const tokens = createTokenSigner(o.secret, o.tokenTtlMs ?? DEFAULT_TOKEN_TTL_MS);
  const audit = createAuditLog(store, {
    now,
    ...(o.auditRetentionDays ? { retentionDays: o.auditRetentionDays } : {}),
  });
  const agents = createAgentReader(store, { now });
  const tags = createTagStore(store, { now });
  const configs = createConfigStore({ client: o.client, tablePrefix: o.tablePrefix, now, cacheMs: 1000 });
  const taskContext: TaskContext = {
    store,
    tables: taskTables(store),
    agents,
    tags,
    logger: o.logger,
    metrics: createTaskMetrics(o.registry),
    now,
    ...(o.taskRetentionDays ? { retentionS: o.taskRetentionDays * 86_400 } : {}),
  };
  const tasks = createTaskService(taskContext, { aksk: o.aksk, ...o.tasks });
  const deps: ManagerDeps = {
    store,
    users,
    apiKeys,
    tokens,
    audit,
    agents,
    tags,
    configs,
    tasks,
    registry: createRegistryStore({ client: o.client, tablePrefix: o.tablePrefix }),
    loginLimiter: createRateLimiter({ ratePerSecond: 5 / 60, burst: 5, now, ...o.loginRateLimit }),
    logger: log,
    now,
    scanLimit: o.scanLimit ?? 2_000_000,
    sortLimit: o.sortLimit ?? 100_000,
  };
  const routes = [
    ...elkeidRoutes(deps),
    ...fleetRoutes(deps),
    ...taskRoutes(deps),
    ...agentHistoryRoutes(deps),
  ];
  const live = createLiveFeed({ routes: [...routes], logger: log, now });
  routes.push(liveRoute(live), agentIndexRoute(createAgentIndex(deps)));
  const consoleRoutes = o.consoleDir === false ? [] : consoleAssets(o.consoleDir).routes;
  const observe = requestMetrics(o.registry);
  const handler = createManagerRouter({
    routes,
    openRoutes: [...healthRoutes({ registry: o.registry, ready: o.ready ?? (() => true) }), ...consoleRoutes],
    users,
    apiKeys,
    tokens,
    verifier: createVerifier({ keys: new Map(o.aksk), now }),
    audit,
    limiter: createRateLimiter({ ratePerSecond: 20, burst: 60, now, ...o.rateLimit }),
    gatewayLimiter: createRateLimiter({ ratePerSecond: 500, burst: 1000, now, ...o.gatewayRateLimit }),
    logger: log,
    now,
    onRequest: observe,
  });
  return {
    handler,
    routes,
    store,
    users,
    apiKeys,
    tokens,
    audit,
    agents,
    tags,
    configs,
    tasks,
    taskContext,
    live,
  };
}
