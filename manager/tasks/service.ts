/**
 * The TaskService (types.ts) over DynamoDB: what routes/tasks.ts and the Lambda entries call.
 * Creation is create.ts, delivery the dispatcher (dispatcher.ts), results results.ts, run and
 * cancel run-cancel.ts, the views listing.ts and views.ts, quick tasks quick.ts; this file puts
 * them together.
 */
import { createConfigPlanner } from './config-plan.js';
import type { TaskContext } from './context.js';
import { type CreateOptions, createTask } from './create.js';
import { type CommandBatchFn, createGatewayClient } from './gateway-client.js';
import { getTaskView, listSubtaskViews, listTaskViews } from './listing.js';
import { quickTask } from './quick.js';
import { applyResults, ELKEID_STATUS_TYPES } from './results.js';
import { cancelTask, runTask } from './run-cancel.js';
import type { TaskService } from './types.js';

export interface TaskServiceOptions extends Partial<CreateOptions> {
  aksk: ReadonlyArray<readonly [string, string]>;
  /** Result data types whose status decides the subtask. Default Elkeid's 5100, 8010, 6000. */
  statusDataTypes?: readonly string[];
  /** The gateway call (tests); default signed fetch. */
  send?: CommandBatchFn;
}

export function createTaskService(ctx: TaskContext, o: TaskServiceOptions): TaskService {
  const createOpts: CreateOptions = {
    fanoutConfirmAbove: o.fanoutConfirmAbove ?? 50,
    scanLimit: o.scanLimit ?? 2_000_000,
  };
  const statusTypes = new Set(o.statusDataTypes ?? ELKEID_STATUS_TYPES);
  const quickDeps = {
    ctx,
    planner: createConfigPlanner(ctx),
    aksk: o.aksk,
    send: o.send ?? createGatewayClient({ aksk: o.aksk }),
    sendOverride: o.send,
  };
  return {
    create: (input) => createTask(ctx, input, createOpts),
    run: (input) => runTask(ctx, input),
    cancel: (taskId, user) => cancelTask(ctx, taskId, user),
    get: (taskId) => getTaskView(ctx, taskId),
    list: (opts) => listTaskViews(ctx, opts),
    subtasks: (taskId, opts) => listSubtaskViews(ctx, taskId, opts),
    applyResults: (items) => applyResults(ctx, items, { statusTypes }),
    quick: (input) => quickTask(quickDeps, input),
  };
}
