/**
 * The discovery API as an AWS Lambda function (API Gateway HTTP API payload 2.0 or a Function
 * URL): `export const handler`. No listener; the store comes from the environment of
 * docs/environment.md: FLEETGATE_DYNAMODB_ENDPOINT / AWS_REGION, FLEETGATE_TABLE_PREFIX, FLEETGATE_AKSK
 * (required for register/evict: a function has no data dir to generate keys into; without it
 * every signed request is refused and the read API still works), FLEETGATE_LOG_LEVEL.
 *
 * Kept across warm invocations of one container (module scope, built on the first invocation):
 * the config, the DynamoDB client and its keep-alive connections, the registry store with its
 * name list (5 s), the per-name detail answers (fresh for 1 s; older ones are refreshed while
 * the invocation waits, since a frozen container cannot finish background work; when the store
 * fails the last good answer is served stale, as on uWS), the AK/SK verifier with its replay
 * cache (so replay refusal is per container: a signed request replayed within its 60 s window
 * to another container is not recognised), and the metrics registry (per container).
 * Tables are not created here: Terraform creates them from platform/store/schema.ts.
 */
import { Registry } from 'prom-client';
import { loadConfig } from '../platform/config/env.js';
import { type LambdaHandler, toLambdaHandler } from '../platform/http/lambda-adapter.js';
import { createLogger, type Logger } from '../platform/obs/logger.js';
import { createDynamoClient } from '../platform/store/dynamo-client.js';
import { createDiscoveryMetrics } from './metrics.js';
import { createRegistryStore, type RegistryStore } from './registry-store.js';
import { createDiscoveryHandler } from './routes.js';

export interface DiscoveryLambdaOptions {
  store: RegistryStore;
  aksk: ReadonlyArray<readonly [string, string]>;
  logger: Logger;
  registry?: Registry;
  /** Reported by `/endpoint/ping`. Default: the function name, or `lambda`. */
  self?: string;
}

/** A Lambda handler over an explicit store (what `handler` builds from the environment). */
export function createDiscoveryLambda(opts: DiscoveryLambdaOptions): LambdaHandler {
  const registry = opts.registry ?? new Registry();
  const log = opts.logger.child({ component: 'discovery-lambda' });
  const { handler } = createDiscoveryHandler({
    store: opts.store,
    metrics: createDiscoveryMetrics(registry),
    logger: log,
    self: opts.self ?? process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'lambda',
    aksk: opts.aksk,
    registry,
    cache: { background: false },
  });
  return toLambdaHandler(handler, { onError: (err) => log.error({ err }, 'discovery lambda failed') });
}

let built: LambdaHandler | undefined;

function fromEnvironment(): LambdaHandler {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel);
  if (!config.aksk || config.aksk.length === 0) {
    logger.error('FLEETGATE_AKSK is not set: /registry/register and /registry/evict refuse every request');
  }
  const client = createDynamoClient({ endpoint: config.dynamodbEndpoint, region: config.awsRegion });
  const store = createRegistryStore({ client, tablePrefix: config.tablePrefix });
  return createDiscoveryLambda({ store, aksk: config.aksk ?? [], logger });
}

export const handler: LambdaHandler = (event, context) => {
  built ??= fromEnvironment();
  return built(event, context);
};
