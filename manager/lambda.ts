/**
 * The manager API as an AWS Lambda function (API Gateway HTTP API payload 2.0 or a Function
 * URL): `export const handler`, the same Handler the uWS listener serves. Configured only by the
 * environment: FLEETGATE_DYNAMODB_ENDPOINT / AWS_REGION, FLEETGATE_TABLE_PREFIX,
 * FLEETGATE_MANAGER_SECRET (required: a function has no data dir, and every container must verify
 * every other's tokens; a missing, short or published secret fails the cold start),
 * FLEETGATE_AKSK (gateways' callbacks; without it they are refused), FLEETGATE_ADMIN (creates the
 * first admin on an empty store; no password is ever generated here), FLEETGATE_LOG_LEVEL.
 *
 * Per warm container: the DynamoDB client, the user/API-key caches (3–5 s), the AK/SK replay
 * cache and the rate-limit buckets, so rate limits and replay refusal apply per container.
 */
import path from 'node:path';
import { Registry } from 'prom-client';
import { loadConfig } from '../platform/config/env.js';
import { type LambdaHandler, toLambdaHandler } from '../platform/http/lambda-adapter.js';
import { createLogger, type Logger } from '../platform/obs/logger.js';
import { createDynamoClient } from '../platform/store/dynamo-client.js';
import { createManagerApi, type ManagerApi, type ManagerApiOptions } from './api.js';
import { resolveManagerSecret } from './secret.js';
import { ensureFirstAdmin } from './users.js';

export type ManagerLambdaOptions = Omit<ManagerApiOptions, 'registry'> & { registry?: Registry };

/** A Lambda handler over explicit options (what `handler` builds from the environment). */
export function createManagerLambda(opts: ManagerLambdaOptions): { handler: LambdaHandler; api: ManagerApi } {
  const api = createManagerApi({ ...opts, registry: opts.registry ?? new Registry() });
  const log: Logger = opts.logger.child({ component: 'manager-lambda' });
  const handler = toLambdaHandler(api.handler, {
    onError: (err) => log.error({ err }, 'manager lambda failed'),
  });
  return { handler, api };
}

let built: Promise<LambdaHandler> | undefined;

async function fromEnvironment(): Promise<LambdaHandler> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel);
  const secret = resolveManagerSecret({ env: process.env, cloud: true });
  if (!config.aksk || config.aksk.length === 0) {
    logger.error('FLEETGATE_AKSK is not set: gateway callbacks (queryInfo, getConfig) are refused');
  }
  const client = createDynamoClient({ endpoint: config.dynamodbEndpoint, region: config.awsRegion });
  const { handler, api } = createManagerLambda({
    client,
    tablePrefix: config.tablePrefix,
    secret: secret.secret,
    aksk: config.aksk ?? [],
    logger,
    taskRetentionDays: config.taskRetentionDays,
    // The console is in the function's zip (scripts/build-lambda.mjs) under dist/console.
    consoleDir:
      process.env.FLEETGATE_CONSOLE_DIR ??
      path.join(process.env.LAMBDA_TASK_ROOT ?? process.cwd(), 'dist', 'console'),
  });
  if (config.admin) await ensureFirstAdmin(api.users, config.admin);
  return handler;
}

export const handler: LambdaHandler = async (event, context) => {
  built ??= fromEnvironment().catch((err: unknown) => {
    built = undefined;
    throw err;
  });
  return (await built)(event, context);
};
