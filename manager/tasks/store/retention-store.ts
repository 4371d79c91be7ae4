/**
 * Retention: an ended task's subtasks and chunks get the task's expiry (the tables' TTL
 * attribute `expiresAt`, epoch seconds) one page at a time, and the task item remembers where the
 * stamping stands (`sweepKey`), so the work survives a restart and is spread over ticks. One
 * dispatcher stamps a task at a time (`sweepOwner` until `sweepUntil`, a lease); every write is
 * idempotent, so a page stamped twice (a holder that lost its lease) costs only the writes.
 */
import { QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mapLimit } from '../../store.js';
import type { TaskRepo } from '../context.js';
import { ACTIVE_RETAIN } from '../model.js';
import { conditional } from './writes.js';

type Key = Record<string, unknown>;

/** Where stamping stands: the table in progress and the last key done in it. */
export interface StampPosition {
  table: 'subtasks' | 'chunks';
  after?: Key;
}

const isRecord = (v: unknown): v is Key => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The position saved on the task item; the start when none (or an unreadable one) is saved. */
export function parseStampPosition(saved: string | undefined): StampPosition {
  if (saved === undefined) return { table: 'subtasks' };
  try {
    const v: unknown = JSON.parse(saved);
    if (isRecord(v) && (v.table === 'subtasks' || v.table === 'chunks')) {
      return isRecord(v.after) ? { table: v.table, after: v.after } : { table: v.table };
    }
  } catch {
    // fall through: start over (stamping is idempotent)
  }
  return { table: 'subtasks' };
}

const SORT_KEY = { subtasks: 'agentId', chunks: 'chunkId' } as const;

/**
 * Stamps up to `pageSize` items of the task in `pos.table` with `expiresAt`; the next position,
 * or undefined when the chunks are done too.
 */
export async function stampPage(
  repo: TaskRepo,
  taskId: string,
  expiresAt: number,
  pos: StampPosition,
  pageSize: number,
): Promise<StampPosition | undefined> {
  const table = repo.tables[pos.table];
  const sk = SORT_KEY[pos.table];
  const page = await repo.store.doc.send(
    new QueryCommand({
      TableName: table,
      KeyConditionExpression: '#t = :t',
      ExpressionAttributeNames: { '#t': 'taskId', '#k': sk },
      ExpressionAttributeValues: { ':t': taskId },
      ProjectionExpression: '#t, #k',
      Limit: pageSize,
      ...(pos.after ? { ExclusiveStartKey: pos.after } : {}),
    }),
  );
  await mapLimit(page.Items ?? [], 4, (item) =>
    conditional(() =>
      repo.store.doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { taskId, [sk]: item[sk] },
          UpdateExpression: 'SET #e = :e',
          // Never create an item that is gone.
          ConditionExpression: 'attribute_exists(#t)',
          ExpressionAttributeNames: { '#e': 'expiresAt', '#t': 'taskId' },
          ExpressionAttributeValues: { ':e': expiresAt },
        }),
      ),
    ),
  );
  if (page.LastEvaluatedKey) return { table: pos.table, after: page.LastEvaluatedKey };
  return pos.table === 'subtasks' ? { table: 'chunks' } : undefined;
}

/**
 * Takes (or keeps) the stamping of a task for `leaseMs`, so one dispatcher stamps a task at a
 * time; false when another holds it.
 */
export function claimStamping(
  repo: TaskRepo,
  taskId: string,
  o: { owner: string; now: number; leaseMs: number },
): Promise<boolean> {
  return conditional(() =>
    repo.store.doc.send(
      new UpdateCommand({
        TableName: repo.tables.tasks,
        Key: { taskId },
        UpdateExpression: 'SET #o = :me, #u = :until',
        ConditionExpression: '#a = :retain AND (attribute_not_exists(#o) OR #u < :now OR #o = :me)',
        ExpressionAttributeNames: { '#a': 'active', '#o': 'sweepOwner', '#u': 'sweepUntil' },
        ExpressionAttributeValues: {
          ':retain': ACTIVE_RETAIN,
          ':me': o.owner,
          ':now': o.now,
          ':until': o.now + o.leaseMs,
        },
      }),
    ),
  );
}

/** Saves the position on the task item, while `owner` still holds its stamping. */
export function saveStampPosition(
  repo: TaskRepo,
  taskId: string,
  owner: string,
  pos: StampPosition,
): Promise<boolean> {
  return conditional(() =>
    repo.store.doc.send(
      new UpdateCommand({
        TableName: repo.tables.tasks,
        Key: { taskId },
        UpdateExpression: 'SET #k = :k',
        ConditionExpression: '#a = :retain AND #o = :me',
        ExpressionAttributeNames: { '#k': 'sweepKey', '#a': 'active', '#o': 'sweepOwner' },
        ExpressionAttributeValues: { ':k': JSON.stringify(pos), ':retain': ACTIVE_RETAIN, ':me': owner },
      }),
    ),
  );
}

/** Every item is stamped: the task leaves the dispatchers' index. */
export function endStamping(repo: TaskRepo, taskId: string): Promise<boolean> {
  return conditional(() =>
    repo.store.doc.send(
      new UpdateCommand({
        TableName: repo.tables.tasks,
        Key: { taskId },
        UpdateExpression: 'REMOVE #a, #k, #o, #u',
        ConditionExpression: '#a = :retain',
        ExpressionAttributeNames: {
          '#k': 'sweepKey',
          '#a': 'active',
          '#o': 'sweepOwner',
          '#u': 'sweepUntil',
        },
        ExpressionAttributeValues: { ':retain': ACTIVE_RETAIN },
      }),
    ),
  );
}
