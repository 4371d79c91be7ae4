/**
 * One agent's recent tasks with its result in each: a Query of the subtasks' `byAgent` index
 * (task ids sort by creation time, so newest first is a reverse Query), then the subtask items,
 * their tasks and, for config/ctrl tasks, the chunk heads that hold the agent's state letter
 * (manager/tasks/model.ts) — three BatchGets, whatever the fleet size.
 */
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { tableName, ttlExpired } from '../../platform/store/schema.js';
import type { ManagerStore } from '../store.js';
import { type ChunkHead, headId, type SubtaskItem, type TaskItem } from '../tasks/model.js';
import { batchGet } from '../tasks/store/batch-get.js';
import type { SubtaskView } from '../tasks/types.js';
import { overlay, subtaskView } from '../tasks/views.js';

export interface AgentTaskView extends SubtaskView {
  task_name: string;
  /** The task's own state (created, running, finished, cancelled). */
  task_status: string;
  /** Unix seconds. */
  task_create_time: number;
}

function isSubtaskItem(raw: Record<string, unknown>): raw is Record<string, unknown> & SubtaskItem {
  return (
    typeof raw.taskId === 'string' &&
    typeof raw.agentId === 'string' &&
    typeof raw.idx === 'number' &&
    typeof raw.chunk === 'number' &&
    typeof raw.state === 'string' &&
    typeof raw.taskType === 'string'
  );
}

function isTaskItem(raw: Record<string, unknown>): raw is Record<string, unknown> & TaskItem {
  return typeof raw.taskId === 'string' && typeof raw.state === 'string' && typeof raw.createdAt === 'number';
}

function isChunkHead(raw: Record<string, unknown>): raw is Record<string, unknown> & ChunkHead {
  return typeof raw.taskId === 'string' && typeof raw.chunkId === 'string' && typeof raw.start === 'number';
}

async function recentKeys(store: ManagerStore, agentId: string, limit: number) {
  const r = await store.doc.send(
    new QueryCommand({
      TableName: tableName(store.prefix, 'subtasks'),
      IndexName: 'byAgent',
      KeyConditionExpression: '#a = :a',
      ExpressionAttributeNames: { '#a': 'agentId' },
      ExpressionAttributeValues: { ':a': agentId },
      ScanIndexForward: false,
      Limit: limit,
    }),
  );
  return (r.Items ?? []).map((i) => ({ taskId: String(i.taskId), agentId }));
}

/** The newest `limit` tasks that targeted `agentId`, newest first, each with the agent's state and result. */
export async function recentTasksOf(
  store: ManagerStore,
  agentId: string,
  limit: number,
): Promise<AgentTaskView[]> {
  const keys = await recentKeys(store, agentId, limit);
  if (keys.length === 0) return [];
  const subtasksTable = tableName(store.prefix, 'subtasks');
  const [subtaskRaw, taskRaw] = await Promise.all([
    batchGet(store, subtasksTable, keys),
    batchGet(
      store,
      tableName(store.prefix, 'tasks'),
      keys.map((k) => ({ taskId: k.taskId })),
      { projection: ['taskId', 'taskName', 'state', 'createdAt', 'expiresAt'] },
    ),
  ]);
  const subtasks = subtaskRaw.filter(isSubtaskItem);
  const tasks = new Map(taskRaw.filter(isTaskItem).map((t) => [t.taskId, t]));
  const headKeys = subtasks
    .filter((s) => s.taskType !== 'Agent_Task')
    .map((s) => ({ taskId: s.taskId, chunkId: headId(s.chunk) }));
  const heads = new Map(
    (
      await batchGet(store, tableName(store.prefix, 'chunks'), headKeys, {
        projection: ['taskId', 'chunkId', 'start', 'st', 'gw'],
      })
    )
      .filter(isChunkHead)
      .map((h) => [`${h.taskId}/${h.chunkId}`, h]),
  );
  const byTask = new Map(subtasks.map((s) => [s.taskId, s]));
  const out: AgentTaskView[] = [];
  const now = Date.now();
  for (const { taskId } of keys) {
    const s = byTask.get(taskId);
    const t = tasks.get(taskId);
    // A task past its retention is gone for every reader, even before DynamoDB deletes it.
    if (!s || !t || ttlExpired(t.expiresAt, now)) continue;
    out.push({
      ...subtaskView(overlay(s, heads.get(`${taskId}/${headId(s.chunk)}`))),
      task_name: typeof t.taskName === 'string' ? t.taskName : '',
      task_status: t.state,
      task_create_time: Math.floor(t.createdAt / 1000),
    });
  }
  return out;
}
