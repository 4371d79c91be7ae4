/** What the engine's parts share: the store's tables, readers, clock, logger and metrics. */
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { Logger } from '../../obs/logger.js';
import { tableName } from '../../store/schema.js';
import type { AgentReader } from '../agents.js';
import { type ManagerStore, mapLimit } from '../store.js';
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

/** BatchWriteItem in requests of 25, `parallel` at once, unprocessed items retried with backoff. */
export async function batchPut(
  store: ManagerStore,
  table: string,
  items: readonly Record<string, unknown>[],
  parallel = 8,
): Promise<void> {
  const groups: Record<string, unknown>[][] = [];
  for (let i = 0; i < items.length; i += 25) groups.push(items.slice(i, i + 25) as Record<string, unknown>[]);
  await mapLimit(groups, parallel, async (group) => {
    let pending: unknown[] = group.map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 10) throw new Error('BatchWriteItem kept returning unprocessed items');
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** attempt)));
      const r = await store.doc.send(new BatchWriteCommand({ RequestItems: { [table]: pending as never } }));
      pending = (r.UnprocessedItems?.[table] ?? []) as unknown[];
    }
  });
}
