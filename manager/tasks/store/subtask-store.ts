/**
 * The subtasks table: one item per (task, agent). Writers: creation (BatchWrite), the chunk's
 * lease holder (config/ctrl: BatchWrite of failed attempts; Agent_Task: a conditional Update per
 * delivery that never leaves a final state), result callbacks (conditional Update by token).
 */
import { PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { isConditionFailed } from '../../store.js';
import { batchPut, type TaskRepo } from '../context.js';
import type { SubtaskItem } from '../model.js';
import type { SubtaskState } from '../types.js';
import { batchGet } from './batch-get.js';
import { parseSubtaskItem } from './parse.js';
import { conditional, definedOnly } from './writes.js';

type Key = Record<string, unknown>;

/** A condition: the item has no expiry, or it is not past (`#e` = expiresAt, `:nowS` = now in s). */
const NOT_EXPIRED = '(attribute_not_exists(#e) OR #e >= :nowS)';

/** The subtasks of `agentIds` in task `taskId` that exist (strongly consistent). */
export async function getSubtaskItems(
  repo: TaskRepo,
  taskId: string,
  agentIds: readonly string[],
): Promise<SubtaskItem[]> {
  if (agentIds.length === 0) return [];
  const items = await batchGet(
    repo.store,
    repo.tables.subtasks,
    agentIds.map((agentId) => ({ taskId, agentId })),
    { consistent: true },
  );
  return items.map(parseSubtaskItem);
}

/** Whole-item writes: BatchWrite, `parallel` requests of 25 in flight. */
export function putSubtaskItems(repo: TaskRepo, items: readonly SubtaskItem[], parallel = 8): Promise<void> {
  return batchPut(repo.store, repo.tables.subtasks, items.map(definedOnly), parallel);
}

export async function putSubtaskItem(repo: TaskRepo, item: SubtaskItem): Promise<void> {
  await repo.store.doc.send(new PutCommand({ TableName: repo.tables.subtasks, Item: definedOnly(item) }));
}

/**
 * Sets `fields` on subtask (taskId, agentId) unless it is final already (its result landed
 * first): then false. Each field becomes `#name = :name`.
 */
function setUnlessFinal(
  repo: TaskRepo,
  key: { taskId: string; agentId: string },
  fields: Record<string, unknown>,
): Promise<boolean> {
  const names: Record<string, string> = { '#state': 'state' };
  const values: Record<string, unknown> = { ':rs': 'result_succeed', ':rf': 'result_failed' };
  const sets: string[] = [];
  for (const [name, value] of Object.entries(fields)) {
    names[`#${name}`] = name;
    values[`:${name}`] = value;
    sets.push(`#${name} = :${name}`);
  }
  return conditional(() =>
    repo.store.doc.send(
      new UpdateCommand({
        TableName: repo.tables.subtasks,
        Key: { taskId: key.taskId, agentId: key.agentId },
        UpdateExpression: `SET ${sets.join(', ')}`,
        ConditionExpression: 'NOT (#state IN (:rs, :rf))',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    ),
  );
}

/**
 * An Agent_Task delivery outcome (state, attempts, reason, gateway, times, fence), unless the
 * subtask is final already (its result landed first): then false.
 */
export function writeDeliveryOutcome(repo: TaskRepo, s: SubtaskItem): Promise<boolean> {
  return setUnlessFinal(repo, s, {
    state: s.state,
    attempts: s.attempts,
    msg: s.msg ?? '',
    updatedAt: s.updatedAt,
    fence: s.fence ?? 0,
    gateway: s.gateway ?? '',
    deliveredAt: s.deliveredAt ?? 0,
    retryAt: s.retryAt ?? 0,
  });
}

/** A quick task's single attempt (attempts 1), unless a result made the subtask final first. */
export function writeQuickOutcome(
  repo: TaskRepo,
  o: { taskId: string; agentId: string; state: SubtaskState; msg: string; gateway: string; at: number },
): Promise<boolean> {
  return setUnlessFinal(repo, o, {
    state: o.state,
    attempts: 1,
    msg: o.msg,
    gateway: o.gateway,
    deliveredAt: o.at,
    updatedAt: o.at,
  });
}

/** A page of a task's subtasks in agent id order. */
export async function querySubtaskPage(
  repo: TaskRepo,
  taskId: string,
  limit: number,
  startKey: Key | undefined,
): Promise<{ items: SubtaskItem[]; lastKey: Key | undefined }> {
  const r = await repo.store.doc.send(
    new QueryCommand({
      TableName: repo.tables.subtasks,
      KeyConditionExpression: '#t = :t',
      ExpressionAttributeNames: { '#t': 'taskId' },
      ExpressionAttributeValues: { ':t': taskId },
      Limit: limit,
      ...(startKey ? { ExclusiveStartKey: startKey } : {}),
    }),
  );
  return { items: (r.Items ?? []).map(parseSubtaskItem), lastKey: r.LastEvaluatedKey };
}

/** The key of the subtask a token was issued to (index byToken, eventually consistent). */
export async function findSubtaskByToken(
  repo: TaskRepo,
  token: string,
): Promise<{ taskId: string; agentId: string } | undefined> {
  const q = await repo.store.doc.send(
    new QueryCommand({
      TableName: repo.tables.subtasks,
      IndexName: 'byToken',
      KeyConditionExpression: '#k = :k',
      ExpressionAttributeNames: { '#k': 'token' },
      ExpressionAttributeValues: { ':k': token },
    }),
  );
  const key = q.Items?.[0];
  if (!key || typeof key.taskId !== 'string' || typeof key.agentId !== 'string') return undefined;
  return { taskId: key.taskId, agentId: key.agentId };
}

export interface StatusResult {
  key: { taskId: string; agentId: string };
  /** A subtask whose expiry (epoch seconds) is before this is gone: refused. */
  nowS: number;
  token: string;
  state: 'result_succeed' | 'result_failed';
  msg: string;
  result: Record<string, string>;
  at: number;
}

/**
 * A status result (final state, message, result fields) on an Agent_Task subtask holding `token`
 * that is not final yet: the subtask's chunk number, or undefined when refused.
 */
export async function applyStatusResult(repo: TaskRepo, r: StatusResult): Promise<number | undefined> {
  try {
    const out = await repo.store.doc.send(
      new UpdateCommand({
        TableName: repo.tables.subtasks,
        Key: r.key,
        UpdateExpression: 'SET #s = :s, #m = :m, #r = :r, #u = :u',
        // Only plugin tasks take results: config/ctrl commands carry no token to the agent, so a
        // result for one of those is forged (and their state lives in the chunk head).
        ConditionExpression: `attribute_exists(#t) AND #k = :k AND #tt = :at AND NOT (#s IN (:rs, :rf)) AND ${NOT_EXPIRED}`,
        ExpressionAttributeNames: {
          '#s': 'state',
          '#m': 'msg',
          '#r': 'result',
          '#u': 'updatedAt',
          '#t': 'taskId',
          '#k': 'token',
          '#tt': 'taskType',
          '#e': 'expiresAt',
        },
        ExpressionAttributeValues: {
          ':at': 'Agent_Task',
          ':s': r.state,
          ':m': r.msg,
          ':r': r.result,
          ':u': r.at,
          ':k': r.token,
          ':rs': 'result_succeed',
          ':rf': 'result_failed',
          ':nowS': r.nowS,
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return Number(out.Attributes?.chunk ?? 0);
  } catch (err) {
    if (isConditionFailed(err)) return undefined;
    throw err;
  }
}

/** Result fields only (a non-status data type): false when no live subtask holds `token`. */
export async function storeResultFields(
  repo: TaskRepo,
  key: { taskId: string; agentId: string },
  token: string,
  result: Record<string, string>,
  nowS: number,
): Promise<boolean> {
  return conditional(() =>
    repo.store.doc.send(
      new UpdateCommand({
        TableName: repo.tables.subtasks,
        Key: key,
        UpdateExpression: 'SET #r = :r',
        ConditionExpression: `attribute_exists(#t) AND #k = :k AND ${NOT_EXPIRED}`,
        ExpressionAttributeNames: { '#r': 'result', '#t': 'taskId', '#k': 'token', '#e': 'expiresAt' },
        ExpressionAttributeValues: { ':r': result, ':k': token, ':nowS': nowS },
      }),
    ),
  );
}
