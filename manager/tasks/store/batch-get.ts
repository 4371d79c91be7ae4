/**
 * BatchGetItem for any number of keys of one table: requests of 100 keys; the keys DynamoDB
 * leaves unprocessed (throttling, a partition at its limit) are asked again after a full-jitter
 * backoff (platform/backoff.ts), 11 requests per group at most on top of the SDK's own retries.
 */
import { BatchGetCommand } from '@aws-sdk/lib-dynamodb';
import { retryWithBackoff } from '../../../platform/backoff.js';
import { type ManagerStore, mapLimit } from '../../store.js';

type Key = Record<string, unknown>;

/** Attempts per group of 100 keys (the first included). */
export const BATCH_GET_ATTEMPTS = 11;
const BACKOFF = { baseMs: 20, capMs: 1000 };

class UnprocessedKeys extends Error {
  override readonly name = 'UnprocessedKeys';
}

export async function batchGet(
  store: Pick<ManagerStore, 'doc'>,
  table: string,
  keys: readonly Key[],
  o: { consistent?: boolean; projection?: string[]; parallel?: number } = {},
): Promise<Record<string, unknown>[]> {
  const groups: Key[][] = [];
  for (let i = 0; i < keys.length; i += 100) groups.push(keys.slice(i, i + 100));
  const names: Record<string, string> = {};
  o.projection?.forEach((p, i) => {
    names[`#p${i}`] = p;
  });
  const projection = o.projection
    ? { ProjectionExpression: Object.keys(names).join(', '), ExpressionAttributeNames: names }
    : {};
  const parts = await mapLimit(groups, o.parallel ?? 4, async (group) => {
    const found: Record<string, unknown>[] = [];
    let pending: Key[] = group;
    await retryWithBackoff(
      async () => {
        const r = await store.doc.send(
          new BatchGetCommand({
            RequestItems: {
              [table]: { Keys: pending, ConsistentRead: o.consistent ?? false, ...projection },
            },
          }),
        );
        found.push(...(r.Responses?.[table] ?? []));
        pending = r.UnprocessedKeys?.[table]?.Keys ?? [];
        if (pending.length > 0) throw new UnprocessedKeys(`${pending.length} keys of ${table} unprocessed`);
      },
      { ...BACKOFF, attempts: BATCH_GET_ATTEMPTS, retryable: (err) => err instanceof UnprocessedKeys },
    ).catch((err: unknown) => {
      if (err instanceof UnprocessedKeys) throw new Error('BatchGetItem kept returning unprocessed keys');
      throw err;
    });
    return found;
  });
  return parts.flat();
}
