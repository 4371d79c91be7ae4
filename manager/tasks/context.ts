/** What the engine's parts share: the store's tables, readers, clock, logger and metrics. */
import type { Logger } from '../../platform/obs/logger.js';
import { batchWriteAll } from '../../platform/store/batch-write.js';
import { tableName } from '../../platform/store/schema.js';
import type { AgentReader } from '../agents.js';
import type { ManagerStore } from '../store.js';
import type { TagStore } from '../tags.js';
import type { TaskMetrics } from './metrics.js';

export interface TaskContext {
  store: ManagerStore;
  tables: { tasks: string; subtasks: string; chunks: string; configs: string; tags: string; agents: string };
  agents: AgentReader;
  tags: TagStore;
  logger: Logger;
  metrics: TaskMetrics;
  now: () => number;
  /** Called after a successful run (the manager role wakes its dispatcher: no idle wait). */
  onRun?: () => void;
  /** Seconds a finished or cancelled task is kept. Default DEFAULT_TASK_RETENTION_DAYS. */
  retentionS?: number;
}

/** FLEETGATE_TASK_RETENTION_DAYS's default (platform/config/env.ts). */
export const DEFAULT_TASK_RETENTION_DAYS = 30;

/** The TTL value (epoch seconds) of a task that ends at `endedAtMs`. */
export function expiryOf(ctx: Pick<TaskContext, 'retentionS'>, endedAtMs: number): number {
  return Math.floor(endedAtMs / 1000) + (ctx.retentionS ?? DEFAULT_TASK_RETENTION_DAYS * 86_400);
}

export function taskTables(store: ManagerStore): TaskContext['tables'] {
  return {
    tasks: tableName(store.prefix, 'tasks'),
    subtasks: tableName(store.prefix, 'subtasks'),
    chunks: tableName(store.prefix, 'chunks'),
    configs: tableName(store.prefix, 'configs'),
    tags: tableName(store.prefix, 'tags'),
    agents: tableName(store.prefix, 'agents'),
  };
}

/** Puts `items` (store/batch-write.ts): `parallel` requests of 25 at once, 11 sends each at most. */
export async function batchPut(
  store: ManagerStore,
  table: string,
  items: readonly Record<string, unknown>[],
  parallel = 8,
): Promise<void> {
  const requests = items.map((Item) => ({ PutRequest: { Item } }));
  await batchWriteAll(store.doc, table, requests, `tasks: ${table}`, {
    parallel,
    maxAttempts: 11,
    baseDelayMs: 20,
  });
}

/** What the repository functions (store/) need: the client and the table names. */
export type TaskRepo = Pick<TaskContext, 'store' | 'tables'>;
