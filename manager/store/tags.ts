/**
 * Tag memberships in the `tags` table: partition key `tag`, sort key `agentId`, GSI `byAgent`
 * (agentId → its tags). Written with BatchWriteItem; a tag's member count is kept beside it in
 * the configs table (fleet.ts putTagCount).
 */
import { QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { batchWriteAll, type WriteRequest } from '../../platform/store/batch-write.js';
import type { ManagerStore } from './handle.js';
import { eachPage, startAt, stringAttr } from './pages.js';

/** The agents holding `tag`; consistent when a change just announced must be visible. */
export async function queryTagMembers(
  store: ManagerStore,
  tag: string,
  opts: { consistent?: boolean } = {},
): Promise<string[]> {
  const out: string[] = [];
  await eachPage(
    (start) =>
      store.doc.send(
        new QueryCommand({
          TableName: store.t.tags,
          KeyConditionExpression: '#t = :t',
          ExpressionAttributeNames: { '#t': 'tag', '#a': 'agentId' },
          ExpressionAttributeValues: { ':t': tag },
          ProjectionExpression: '#a',
          ...(opts.consistent ? { ConsistentRead: true } : {}),
          ...startAt(start),
        }),
      ),
    (page) => {
      for (const i of page.Items ?? []) {
        const id = stringAttr(i, 'agentId');
        if (id !== '') out.push(id);
      }
    },
  );
  return out;
}

/** How many agents hold `tag` now (a consistent COUNT Query). */
export async function countTagMembers(store: ManagerStore, tag: string): Promise<number> {
  let n = 0;
  await eachPage(
    (start) =>
      store.doc.send(
        new QueryCommand({
          TableName: store.t.tags,
          KeyConditionExpression: '#t = :t',
          ExpressionAttributeNames: { '#t': 'tag' },
          ExpressionAttributeValues: { ':t': tag },
          Select: 'COUNT',
          ConsistentRead: true,
          ...startAt(start),
        }),
      ),
    (page) => {
      n += page.Count ?? 0;
    },
  );
  return n;
}

/** An agent's tags, sorted (one Query of the `byAgent` index). */
export async function queryTagsOfAgent(store: ManagerStore, agentId: string): Promise<string[]> {
  const r = await store.doc.send(
    new QueryCommand({
      TableName: store.t.tags,
      IndexName: 'byAgent',
      KeyConditionExpression: '#a = :a',
      ExpressionAttributeNames: { '#a': 'agentId' },
      ExpressionAttributeValues: { ':a': agentId },
    }),
  );
  return (r.Items ?? [])
    .map((i) => stringAttr(i, 'tag'))
    .filter((t) => t !== '')
    .sort();
}

/** agentId → its tags (sorted), from a Scan of every membership. */
export async function scanMemberships(store: ManagerStore): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  await eachPage(
    (start) => store.doc.send(new ScanCommand({ TableName: store.t.tags, ...startAt(start) })),
    (page) => {
      for (const i of page.Items ?? []) {
        const id = stringAttr(i, 'agentId');
        const tag = stringAttr(i, 'tag');
        if (id === '' || tag === '') continue;
        const list = out.get(id);
        if (list) list.push(tag);
        else out.set(id, [tag]);
      }
    },
  );
  for (const list of out.values()) list.sort();
  return out;
}

/** Membership writes: 8 requests of 25 at once, 9 sends each at most (platform/store/batch-write.ts). */
function writeMemberships(store: ManagerStore, requests: WriteRequest[]): Promise<void> {
  return batchWriteAll(store.doc, store.t.tags, requests, 'tags', {
    parallel: 8,
    maxDelayMs: Number.POSITIVE_INFINITY,
  });
}

export function putMemberships(
  store: ManagerStore,
  tag: string,
  agentIds: readonly string[],
  by: { createdAt: number; createdBy: string },
): Promise<void> {
  return writeMemberships(
    store,
    agentIds.map((agentId) => ({ PutRequest: { Item: { tag, agentId, ...by } } })),
  );
}

export function deleteMemberships(
  store: ManagerStore,
  tag: string,
  agentIds: readonly string[],
): Promise<void> {
  return writeMemberships(
    store,
    agentIds.map((agentId) => ({ DeleteRequest: { Key: { tag, agentId } } })),
  );
}
