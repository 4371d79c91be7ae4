/**
 * The tasks table: task items (keyed by task id) and `req#<request_id>` idempotency records.
 * Every read is parsed (parse.ts); every state change is a conditional write whose refusal is
 * returned as `false` (the caller decides: retry, report a conflict, or nothing to do).
 */
import { GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { TaskRepo } from '../context.js';
import { ACTIVE_RETAIN, ACTIVE_RUNNING, LIST_PK, requestKey, type TaskItem } from '../model.js';
import type { TaskCounts } from '../types.js';
import { batchGet } from './batch-get.js';
import { MalformedItemError, parseTaskItem } from './parse.js';
import { conditional } from './writes.js';

type Key = Record<string, unknown>;

export async function getTaskItem(repo: TaskRepo, taskId: string): Promise<TaskItem | undefined> {
  const r = await repo.store.doc.send(
    new GetCommand({ TableName: repo.tables.tasks, Key: { taskId }, ConsistentRead: true }),
  );
  return r.Item ? parseTaskItem(r.Item) : undefined;
}

/**
 * The task items of `taskIds` that exist. A malformed item is refused: with `onMalformed` it is
 * reported there and left out (one bad item must not stop every other task), else thrown.
 */
export async function getTaskItems(
  repo: TaskRepo,
  taskIds: readonly string[],
  o: { consistent?: boolean; onMalformed?: (err: MalformedItemError) => void } = {},
): Promise<TaskItem[]> {
  const items = await batchGet(
    repo.store,
    repo.tables.tasks,
    taskIds.map((taskId) => ({ taskId })),
    o.consistent ? { consistent: true } : {},
  );
  const out: TaskItem[] = [];
  for (const raw of items) {
    try {
      out.push(parseTaskItem(raw));
    } catch (err) {
      if (!(err instanceof MalformedItemError) || !o.onMalformed) throw err;
      o.onMalformed(err);
    }
  }
  return out;
}

export async function putTaskItem(repo: TaskRepo, task: TaskItem): Promise<void> {
  await repo.store.doc.send(new PutCommand({ TableName: repo.tables.tasks, Item: task }));
}

/** Task ids whose `active` marker is `marker` (sparse index byActive, eventually consistent). */
export async function queryTaskIdsByMarker(repo: TaskRepo, marker: string): Promise<string[]> {
  const ids: string[] = [];
  let start: Key | undefined;
  do {
    const page = await repo.store.doc.send(
      new QueryCommand({
        TableName: repo.tables.tasks,
        IndexName: 'byActive',
        KeyConditionExpression: '#a = :m',
        ExpressionAttributeNames: { '#a': 'active' },
        ExpressionAttributeValues: { ':m': marker },
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const i of page.Items ?? []) if (typeof i.taskId === 'string') ids.push(i.taskId);
    start = page.LastEvaluatedKey;
  } while (start);
  return ids;
}

/** A page of listed task ids, newest first (sparse index byTime). */
export async function queryTaskIdsByTime(
  repo: TaskRepo,
  limit: number,
  startKey: Key | undefined,
): Promise<{ ids: string[]; lastKey: Key | undefined }> {
  const r = await repo.store.doc.send(
    new QueryCommand({
      TableName: repo.tables.tasks,
      IndexName: 'byTime',
      KeyConditionExpression: '#p = :p',
      ExpressionAttributeNames: { '#p': 'listPk' },
      ExpressionAttributeValues: { ':p': LIST_PK },
      ScanIndexForward: false,
      Limit: limit,
      ...(startKey ? { ExclusiveStartKey: startKey } : {}),
    }),
  );
  const ids = (r.Items ?? []).map((i) => i.taskId).filter((id): id is string => typeof id === 'string');
  return { ids, lastKey: r.LastEvaluatedKey };
}

/**
 * The dispatcher's snapshot of a running task's counts; with `finishExpiresAt`, the task also
 * becomes `finished` with that expiry (epoch seconds), and moves in the dispatchers' index from
 * running to retain (its items get the expiry next). False when the task is no longer running.
 */
export function writeTaskProgress(
  repo: TaskRepo,
  taskId: string,
  counts: TaskCounts,
  o: { now: number; finishExpiresAt?: number | undefined },
): Promise<boolean> {
  const names: Record<string, string> = { '#c': 'counts', '#u': 'updatedAt', '#s': 'state' };
  const values: Record<string, unknown> = { ':c': counts, ':now': o.now, ':running': 'running' };
  let update = 'SET #c = :c, #u = :now';
  if (o.finishExpiresAt !== undefined) {
    update += ', #s = :fin, #a = :retain, #e = :exp';
    Object.assign(names, { '#a': 'active', '#e': 'expiresAt' });
    Object.assign(values, { ':fin': 'finished', ':retain': ACTIVE_RETAIN, ':exp': o.finishExpiresAt });
  }
  return conditional(() =>
    repo.store.doc.send(
      new UpdateCommand({
        TableName: repo.tables.tasks,
        Key: { taskId },
        UpdateExpression: update,
        ConditionExpression: '#s = :running',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    ),
  );
}

export interface ReleaseRun {
  taskId: string;
  /** The `released` the caller read: the write is refused if another run changed it since. */
  seenReleased: number;
  released: number;
  concurrence: number;
  jobId: string;
  now: number;
}

/** A run: more agents released, the task running and in the dispatchers' index. */
export function releaseTaskAgents(repo: TaskRepo, run: ReleaseRun): Promise<boolean> {
  return conditional(() =>
    repo.store.doc.send(
      new UpdateCommand({
        TableName: repo.tables.tasks,
        Key: { taskId: run.taskId },
        UpdateExpression:
          'SET #r = :r, #s = :running, #a = :active, #c = :c, #j = list_append(if_not_exists(#j, :empty), :job), #u = :now',
        ConditionExpression: '#s IN (:created, :running) AND #r = :seen',
        ExpressionAttributeNames: {
          '#r': 'released',
          '#s': 'state',
          '#a': 'active',
          '#c': 'concurrence',
          '#j': 'jobs',
          '#u': 'updatedAt',
        },
        ExpressionAttributeValues: {
          ':r': run.released,
          ':running': 'running',
          ':created': 'created',
          ':active': ACTIVE_RUNNING,
          ':c': run.concurrence,
          ':empty': [],
          ':job': [run.jobId],
          ':now': run.now,
          ':seen': run.seenReleased,
        },
      }),
    ),
  );
}

/**
 * Cancels a created or running task (no new claims) with its expiry (epoch seconds), moving it to
 * retain in the dispatchers' index; false when it is in another state.
 */
export function cancelTaskItem(
  repo: TaskRepo,
  taskId: string,
  now: number,
  expiresAt: number,
): Promise<boolean> {
  return conditional(() =>
    repo.store.doc.send(
      new UpdateCommand({
        TableName: repo.tables.tasks,
        Key: { taskId },
        UpdateExpression: 'SET #s = :cancelled, #u = :now, #a = :retain, #e = :exp',
        ConditionExpression: '#s IN (:created, :running)',
        ExpressionAttributeNames: { '#s': 'state', '#u': 'updatedAt', '#a': 'active', '#e': 'expiresAt' },
        ExpressionAttributeValues: {
          ':cancelled': 'cancelled',
          ':created': 'created',
          ':running': 'running',
          ':now': now,
          ':retain': ACTIVE_RETAIN,
          ':exp': expiresAt,
        },
      }),
    ),
  );
}

/** The task a job id (controlTask's jobID) belongs to: tasks are few, so a filtered Scan finds it. */
export async function findTaskByJob(
  repo: TaskRepo,
  jobId: string,
): Promise<{ taskId: string; concurrence: number } | undefined> {
  let start: Key | undefined;
  do {
    const page = await repo.store.doc.send(
      new ScanCommand({
        TableName: repo.tables.tasks,
        FilterExpression: 'contains(#j, :id)',
        ExpressionAttributeNames: { '#j': 'jobs', '#t': 'taskId', '#c': 'concurrence' },
        ExpressionAttributeValues: { ':id': jobId },
        ProjectionExpression: '#t, #c',
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    const hit = page.Items?.find((i) => typeof i.taskId === 'string');
    if (hit) {
      return {
        taskId: String(hit.taskId),
        concurrence: typeof hit.concurrence === 'number' ? hit.concurrence : 0,
      };
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return undefined;
}

/**
 * Records that `requestId` creates `taskId` unless a record younger than `windowMs` exists; false
 * when one does (the caller reads it with readRequestRecord).
 */
export function claimRequestId(
  repo: TaskRepo,
  r: { requestId: string; taskId: string; count: number; now: number; windowMs: number },
): Promise<boolean> {
  return conditional(() =>
    repo.store.doc.send(
      new PutCommand({
        TableName: repo.tables.tasks,
        Item: {
          taskId: requestKey(r.requestId),
          target: r.taskId,
          count: r.count,
          createdAt: r.now,
          // Past the window the record only takes space: the table's TTL removes it.
          expiresAt: Math.ceil((r.now + r.windowMs) / 1000),
        },
        ConditionExpression: 'attribute_not_exists(taskId) OR createdAt < :old',
        ExpressionAttributeValues: { ':old': r.now - r.windowMs },
      }),
    ),
  );
}

export async function readRequestRecord(
  repo: TaskRepo,
  requestId: string,
): Promise<{ taskId: string; count: number }> {
  const r = await repo.store.doc.send(
    new GetCommand({
      TableName: repo.tables.tasks,
      Key: { taskId: requestKey(requestId) },
      ConsistentRead: true,
    }),
  );
  return { taskId: String(r.Item?.target ?? ''), count: Number(r.Item?.count ?? 0) };
}
