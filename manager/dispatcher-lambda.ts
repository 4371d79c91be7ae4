/**
 * The task dispatcher as an AWS Lambda function on an EventBridge schedule (e.g. `rate(1 minute)`):
 * `export const handler`. Each invocation opens the store like lambda.ts (FLEETGATE_DYNAMODB_ENDPOINT
 * / AWS_REGION, FLEETGATE_TABLE_PREFIX, FLEETGATE_AKSK for the signed gateway calls,
 * FLEETGATE_LOG_LEVEL, FLEETGATE_TASK_RETENTION_DAYS) and runs dispatcher ticks until no work remains or until the reserve
 * (`DEFAULT_RESERVE_MS`, 20 s) before the invocation's time runs out
 * (`context.getRemainingTimeInMillis()`). The reserve is one gateway call's longest wait (the
 * 15 s timeout of tasks/gateway-client.ts) plus a margin for the tick's DynamoDB writes after
 * it, so a tick started just before the reserve still ends inside the function's timeout
 * (infra/terraform: 60 s, about 40 s of ticks a run). "No work" = a tick that did nothing while
 * no task is active; with active tasks whose next step is not due yet the loop waits a second
 * and looks again. Leases make it safe to run next to manager processes and other invocations:
 * a tick cut short anyway (a store far slower than its timeouts) leaves leases that expire and
 * are taken over (docs/architecture.md, "A task's path").
 *
 * Per warm container: the DynamoDB client and the dispatcher.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { loadConfig } from '../platform/config/env.js';
import { createLogger, type Logger } from '../platform/obs/logger.js';
import { createDynamoClient } from '../platform/store/dynamo-client.js';
import { createDispatcher } from './tasks/dispatcher.js';
import { GATEWAY_CALL_TIMEOUT_MS } from './tasks/gateway-client.js';

/** What this entry needs of the engine's dispatcher (tasks/dispatcher.ts `createDispatcher`). */
export interface TickingDispatcher {
  /** `activeTasks` > 0 with no work done: work remains (retries and results due later). */
  tick(): Promise<{ didWork: boolean; activeTasks?: number }>;
}

/** EventBridge's scheduled event ("detail-type": "Scheduled Event"). */
export interface ScheduledEvent {
  version?: string;
  id?: string;
  'detail-type'?: string;
  source?: string;
  account?: string;
  time?: string;
  region?: string;
  resources?: string[];
  detail?: unknown;
}

/** The part of Lambda's context object used here. */
export interface DispatcherLambdaContext {
  getRemainingTimeInMillis(): number;
  awsRequestId?: string;
}

export interface DispatchRunResult {
  ticks: number;
  /** Ticks that did some work. */
  busyTicks: number;
  /** Why the loop ended. */
  stopped: 'idle' | 'deadline' | 'max_ticks';
  ms: number;
}

export type DispatcherLambdaHandler = (
  event: ScheduledEvent,
  context: DispatcherLambdaContext,
) => Promise<DispatchRunResult>;

export interface DispatcherLambdaOptions {
  dispatcher: TickingDispatcher;
  logger: Logger;
  /**
   * Stop starting ticks this long before the invocation's end. Default `DEFAULT_RESERVE_MS`
   * (20 000 ms: a gateway call's timeout plus a margin).
   */
  reserveMs?: number;
  /** Pause between busy ticks (the dispatcher's own rhythm). Default 0. */
  busyPauseMs?: number;
  /** Idle ticks in a row (no work done, no active task) before the run ends. Default 1. */
  idleTicks?: number;
  /** Pause after a tick that did nothing while work remains (active tasks). Default 1000 ms. */
  idlePauseMs?: number;
  /** Safety cap on ticks per invocation. Default unbounded. */
  maxTicks?: number;
  now?: () => number;
}

/** The longest one gateway call of a tick waits (tasks/gateway-client.ts), re-exported for the reserve's readers. */
export { GATEWAY_CALL_TIMEOUT_MS };

/** What a tick still does after its last gateway call: write the outcomes, release its leases. */
export const TICK_MARGIN_MS = 5_000;

/** Ticks stop starting this long before the invocation's end (`reserveMs`'s default): 20 s. */
export const DEFAULT_RESERVE_MS = GATEWAY_CALL_TIMEOUT_MS + TICK_MARGIN_MS;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The ticking loop over an explicit dispatcher (what `handler` builds from the environment). */
export function createDispatcherLambda(o: DispatcherLambdaOptions): DispatcherLambdaHandler {
  const log = o.logger.child({ component: 'dispatcher-lambda' });
  const reserveMs = o.reserveMs ?? DEFAULT_RESERVE_MS;
  const idleTicks = Math.max(1, o.idleTicks ?? 1);
  const idlePauseMs = o.idlePauseMs ?? 1000;
  const busyPauseMs = o.busyPauseMs ?? 0;
  const now = o.now ?? Date.now;
  return async (event, context) => {
    const start = now();
    let ticks = 0;
    let busyTicks = 0;
    let idleInARow = 0;
    let stopped: DispatchRunResult['stopped'] = 'idle';
    for (;;) {
      if (context.getRemainingTimeInMillis() <= reserveMs) {
        stopped = 'deadline';
        break;
      }
      if (o.maxTicks !== undefined && ticks >= o.maxTicks) {
        stopped = 'max_ticks';
        break;
      }
      const { didWork, activeTasks = 0 } = await o.dispatcher.tick();
      ticks++;
      if (didWork) {
        busyTicks++;
        idleInARow = 0;
        if (busyPauseMs > 0) await sleep(busyPauseMs);
        continue;
      }
      // Active tasks with nothing due yet (a retry's backoff, results awaited): keep the
      // schedule's slot and look again, as a manager process's dispatcher would.
      if (activeTasks === 0 && ++idleInARow >= idleTicks) {
        stopped = 'idle';
        break;
      }
      if (context.getRemainingTimeInMillis() - idlePauseMs <= reserveMs) {
        stopped = 'deadline';
        break;
      }
      await sleep(idlePauseMs);
    }
    const result: DispatchRunResult = { ticks, busyTicks, stopped, ms: now() - start };
    log.info(
      { ...result, eventId: event.id, eventTime: event.time, requestId: context.awsRequestId },
      'dispatcher run',
    );
    return result;
  };
}

/** Builds the engine's dispatcher over a DynamoDB client (the environment's, in `handler`). */
export type DispatcherFactory = (o: {
  client: DynamoDBClient;
  tablePrefix: string;
  aksk: ReadonlyArray<readonly [string, string]>;
  logger: Logger;
  /** Days an ended task is kept (FLEETGATE_TASK_RETENTION_DAYS). */
  taskRetentionDays?: number;
}) => TickingDispatcher | Promise<TickingDispatcher>;

/** The engine's dispatcher (tasks/dispatcher.ts) over the environment's client. */
const engineDispatcher: DispatcherFactory = (o) => createDispatcher(o);

let built: Promise<DispatcherLambdaHandler> | undefined;

/** The handler from the environment; `factory` is the engine's dispatcher unless a test swaps it. */
export async function dispatcherFromEnvironment(
  env: NodeJS.ProcessEnv = process.env,
  factory: DispatcherFactory = engineDispatcher,
): Promise<DispatcherLambdaHandler> {
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel);
  if (!config.aksk || config.aksk.length === 0) {
    logger.error('FLEETGATE_AKSK is not set: the gateways refuse unsigned command batches');
  }
  const client = createDynamoClient({ endpoint: config.dynamodbEndpoint, region: config.awsRegion });
  const dispatcher = await factory({
    client,
    tablePrefix: config.tablePrefix,
    aksk: config.aksk ?? [],
    logger,
    taskRetentionDays: config.taskRetentionDays,
  });
  return createDispatcherLambda({ dispatcher, logger });
}

export const handler: DispatcherLambdaHandler = async (event, context) => {
  built ??= dispatcherFromEnvironment().catch((err: unknown) => {
    built = undefined;
    throw err;
  });
  return (await built)(event, context);
};
