/**
 * Tags (Elkeid §2.8, §4.4): membership items in the `tags` table (pk tag, sk agentId; GSI
 * `byAgent`), written with BatchWriteItem. After each change the tag's member count is recounted
 * with a COUNT Query and kept in `fleet#tagcount` (store/fleet-items.ts), which is what the tag
 * list and the statistics read instead of scanning memberships.
 */
import { DeleteCommand, PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { batchWriteAll, type WriteRequest } from '../platform/store/batch-write.js';
import { FLEET_SCOPE, queryScope } from '../platform/store/fleet-items.js';
import { type ManagerStore, mapLimit } from './store.js';

/** No commas (Elkeid joins tags with them), no control characters, 1–64 characters. */
export const TAG_PATTERN = /^[^,\s\p{Cc}][^,\p{Cc}]{0,62}[^,\s\p{Cc}]$|^[^,\s\p{Cc}]$/u;
export const MAX_TAG_TARGETS = 100_000;

export function isTag(v: unknown): v is string {
  return typeof v === 'string' && TAG_PATTERN.test(v);
}

export interface TagStore {
  add(tag: string, agentIds: readonly string[], by: string): Promise<number>;
  remove(tag: string, agentIds: readonly string[]): Promise<number>;
  ofAgent(agentId: string): Promise<string[]>;
  ofAgents(agentIds: readonly string[]): Promise<Map<string, string[]>>;
  members(tag: string): Promise<string[]>;
  /** Tags with at least one member and their counts. */
  counts(): Promise<Map<string, number>>;
  /** agentId → tags, from a Scan of the memberships (filters over tags). */
  all(): Promise<Map<string, string[]>>;
}

/** Membership writes: 8 requests of 25 at once, 9 sends each at most (store/batch-write.ts). */
function writeMemberships(store: ManagerStore, requests: WriteRequest[]): Promise<void> {
  return batchWriteAll(store.doc, store.t.tags, requests, 'tags', {
    parallel: 8,
    maxDelayMs: Number.POSITIVE_INFINITY,
  });
}

export function createTagStore(store: ManagerStore, opts: { now?: () => number } = {}): TagStore {
  const now = opts.now ?? Date.now;

  async function members(tag: string): Promise<string[]> {
    const out: string[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await store.doc.send(
        new QueryCommand({
          TableName: store.t.tags,
          KeyConditionExpression: '#t = :t',
          ExpressionAttributeNames: { '#t': 'tag', '#a': 'agentId' },
          ExpressionAttributeValues: { ':t': tag },
          ProjectionExpression: '#a',
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const i of page.Items ?? []) out.push(String(i.agentId));
      start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
    } while (start);
    return out;
  }

  async function recount(tag: string): Promise<number> {
    let n = 0;
    let start: Record<string, unknown> | undefined;
    do {
      const page = await store.doc.send(
        new QueryCommand({
          TableName: store.t.tags,
          KeyConditionExpression: '#t = :t',
          ExpressionAttributeNames: { '#t': 'tag' },
          ExpressionAttributeValues: { ':t': tag },
          Select: 'COUNT',
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      n += page.Count ?? 0;
      start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
    } while (start);
    const key = { scope: FLEET_SCOPE.tagCount, name: tag };
    if (n === 0) await store.doc.send(new DeleteCommand({ TableName: store.t.configs, Key: key }));
    else {
      await store.doc.send(
        new PutCommand({ TableName: store.t.configs, Item: { ...key, n, updatedAtMs: now() } }),
      );
    }
    return n;
  }

  async function ofAgent(agentId: string): Promise<string[]> {
    const r = await store.doc.send(
      new QueryCommand({
        TableName: store.t.tags,
        IndexName: 'byAgent',
        KeyConditionExpression: '#a = :a',
        ExpressionAttributeNames: { '#a': 'agentId' },
        ExpressionAttributeValues: { ':a': agentId },
      }),
    );
    return (r.Items ?? []).map((i) => String(i.tag)).sort();
  }

  return {
    async add(tag, agentIds, by) {
      const ids = [...new Set(agentIds)];
      const at = now();
      await writeMemberships(
        store,
        ids.map((agentId) => ({ PutRequest: { Item: { tag, agentId, createdAt: at, createdBy: by } } })),
      );
      await recount(tag);
      return ids.length;
    },
    async remove(tag, agentIds) {
      const ids = [...new Set(agentIds)];
      await writeMemberships(
        store,
        ids.map((agentId) => ({ DeleteRequest: { Key: { tag, agentId } } })),
      );
      await recount(tag);
      return ids.length;
    },
    ofAgent,
    async ofAgents(agentIds) {
      const ids = [...new Set(agentIds)];
      const tags = await mapLimit(ids, 16, (id) => ofAgent(id));
      return new Map(ids.map((id, i) => [id, tags[i]!]));
    },
    members,
    async counts() {
      const items = await queryScope(store.doc, store.prefix, FLEET_SCOPE.tagCount);
      return new Map(
        items
          .filter((i) => typeof i.n === 'number' && i.n > 0)
          .map((i) => [String(i.name), i.n as number] as const)
          .sort(([a], [b]) => a.localeCompare(b)),
      );
    },
    async all() {
      const out = new Map<string, string[]>();
      let start: Record<string, unknown> | undefined;
      do {
        const page = await store.doc.send(
          new ScanCommand({ TableName: store.t.tags, ...(start ? { ExclusiveStartKey: start } : {}) }),
        );
        for (const i of page.Items ?? []) {
          const id = String(i.agentId);
          const list = out.get(id);
          if (list) list.push(String(i.tag));
          else out.set(id, [String(i.tag)]);
        }
        start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
      } while (start);
      for (const list of out.values()) list.sort();
      return out;
    },
  };
}
