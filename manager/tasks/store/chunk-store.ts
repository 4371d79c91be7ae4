/**
 * The chunks table: per chunk a head `h#<n>` (lease, due time, counters, config/ctrl state
 * letters) and its members `m#<n>` (agent ids and tokens, immutable). Leases are lease-store.ts.
 */
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { batchPut, type TaskRepo } from '../context.js';
import {
  type ChunkHead,
  type ChunkMembers,
  HEAD_SUMMARY_ATTRS,
  type HeadOverlay,
  headId,
  membersId,
} from '../model.js';
import { batchGet } from './batch-get.js';
import { parseChunkHead, parseHeadOverlay, parseMembers } from './parse.js';
import { conditional, definedOnly } from './writes.js';

type Key = Record<string, unknown>;

// Heads are read without their per-agent letters and gateways (`#t`/`#c` are the keys).
const HEAD_NAMES: Record<string, string> = Object.fromEntries(
  HEAD_SUMMARY_ATTRS.map((a, i) => [i === 0 ? '#t' : i === 1 ? '#c' : `#h${i}`, a]),
);
const HEAD_PROJECTION = Object.keys(HEAD_NAMES).join(', ');

/** A task's chunk heads (HEAD_SUMMARY_ATTRS of each), every page. */
export async function queryHeads(
  repo: TaskRepo,
  taskId: string,
  o: { consistent?: boolean } = {},
): Promise<ChunkHead[]> {
  const out: ChunkHead[] = [];
  let start: Key | undefined;
  do {
    const page = await repo.store.doc.send(
      new QueryCommand({
        TableName: repo.tables.chunks,
        KeyConditionExpression: '#t = :t AND begins_with(#c, :h)',
        ExpressionAttributeNames: HEAD_NAMES,
        ProjectionExpression: HEAD_PROJECTION,
        ExpressionAttributeValues: { ':t': taskId, ':h': 'h#' },
        ...(o.consistent ? { ConsistentRead: true } : {}),
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    out.push(...(page.Items ?? []).map(parseChunkHead));
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}

/** The members of chunk `chunk` (empty lists when the item is missing). */
export async function getMembers(repo: TaskRepo, taskId: string, chunk: number): Promise<ChunkMembers> {
  const r = await repo.store.doc.send(
    new GetCommand({ TableName: repo.tables.chunks, Key: { taskId, chunkId: membersId(chunk) } }),
  );
  return r.Item ? parseMembers(r.Item) : { agentIds: [], tokens: [] };
}

/** Heads and members at creation (BatchWrite). */
export function putChunkItems(
  repo: TaskRepo,
  items: ReadonlyArray<{ head: ChunkHead; members: ChunkMembers }>,
): Promise<void> {
  const records: Record<string, unknown>[] = [];
  for (const { head, members } of items) {
    records.push(definedOnly(head), {
      taskId: head.taskId,
      chunkId: membersId(chunkNumber(head)),
      ...members,
    });
  }
  return batchPut(repo.store, repo.tables.chunks, records);
}

/** One chunk's head and members, one Put each (a quick task). */
export async function putChunk(repo: TaskRepo, head: ChunkHead, members: ChunkMembers): Promise<void> {
  await repo.store.doc.send(new PutCommand({ TableName: repo.tables.chunks, Item: definedOnly(head) }));
  await repo.store.doc.send(
    new PutCommand({
      TableName: repo.tables.chunks,
      Item: { taskId: head.taskId, chunkId: membersId(chunkNumber(head)), ...members },
    }),
  );
}

/**
 * Marks a chunk due for a recount (ADD dirty 1). With `mustExist`, a head that is gone (a
 * replayed result after retention) is left alone: false.
 */
export function markChunkDirty(
  repo: TaskRepo,
  taskId: string,
  chunk: number,
  o: { mustExist: boolean },
): Promise<boolean> {
  return conditional(() =>
    repo.store.doc.send(
      new UpdateCommand({
        TableName: repo.tables.chunks,
        Key: { taskId, chunkId: headId(chunk) },
        UpdateExpression: 'ADD #d :one',
        ...(o.mustExist ? { ConditionExpression: 'attribute_exists(#t)' } : {}),
        ExpressionAttributeNames: { '#d': 'dirty', ...(o.mustExist ? { '#t': 'taskId' } : {}) },
        ExpressionAttributeValues: { ':one': 1 },
      }),
    ),
  );
}

/** The state letters and gateways of the given chunks' heads, by head id. */
export async function getHeadOverlays(
  repo: TaskRepo,
  taskId: string,
  chunks: readonly number[],
): Promise<Map<string, HeadOverlay>> {
  const items = await batchGet(
    repo.store,
    repo.tables.chunks,
    chunks.map((n) => ({ taskId, chunkId: headId(n) })),
    { projection: ['chunkId', 'start', 'st', 'gw'] },
  );
  return new Map(items.map(parseHeadOverlay).map((h) => [h.chunkId, h]));
}

const chunkNumber = (head: Pick<ChunkHead, 'chunkId'>) => Number(head.chunkId.slice(2));
