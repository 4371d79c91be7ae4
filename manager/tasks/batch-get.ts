/** BatchGetItem for up to any number of keys of one table: requests of 100, unprocessed keys retried. */
import { BatchGetCommand } from '@aws-sdk/lib-dynamodb';
import { type ManagerStore, mapLimit } from '../store.js';

export async function batchGet(
  store: ManagerStore,
  table: string,
  keys: readonly Record<string, unknown>[],
  o: { consistent?: boolean; projection?: string[]; parallel?: number } = {},
): Promise<Record<string, unknown>[]> {
  const groups: Record<string, unknown>[][] = [];
  for (let i = 0; i < keys.length; i += 100) groups.push(keys.slice(i, i + 100) as Record<string, unknown>[]);
  const names: Record<string, string> = {};
  o.projection?.forEach((p, i) => {
    names[`#p${i}`] = p;
  });
  const parts = await mapLimit(groups, o.parallel ?? 4, async (group) => {
    const out: Record<string, unknown>[] = [];
    let pending: Record<string, unknown>[] = group;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 10) throw new Error('BatchGetItem kept returning unprocessed keys');
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** attempt)));
      const r = await store.doc.send(
        new BatchGetCommand({
          RequestItems: {
            [table]: {
              Keys: pending,
              ConsistentRead: o.consistent ?? false,
              ...(o.projection
                ? { ProjectionExpression: Object.keys(names).join(', '), ExpressionAttributeNames: names }
                : {}),
            },
          },
        }),
      );
      out.push(...((r.Responses?.[table] ?? []) as Record<string, unknown>[]));
      pending = (r.UnprocessedKeys?.[table]?.Keys ?? []) as Record<string, unknown>[];
    }
    return out;
  });
  return parts.flat();
}
