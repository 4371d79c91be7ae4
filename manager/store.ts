/**
 * The manager's handle on DynamoDB: one document client and the table names of the schema module.
 * Commands are built only in the repository functions under `manager/store/` (and the task
 * engine's own); everything else passes this handle to them.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { tableName } from '../platform/store/schema.js';

export { isConditionFailed } from '../platform/store/errors.js';

export interface ManagerStore {
  doc: DynamoDBDocumentClient;
  prefix: string;
  t: {
    agents: string;
    tags: string;
    configs: string;
    users: string;
    apikeys: string;
    audit: string;
  };
}

export function createManagerStore(client: DynamoDBClient, prefix: string): ManagerStore {
  const doc = DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
  return {
    doc,
    prefix,
    t: {
      agents: tableName(prefix, 'agents'),
      tags: tableName(prefix, 'tags'),
      configs: tableName(prefix, 'configs'),
      users: tableName(prefix, 'users'),
      apikeys: tableName(prefix, 'apikeys'),
      audit: tableName(prefix, 'audit'),
    },
  };
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
