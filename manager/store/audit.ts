/**
 * The audit log in the `audit` table: partition key `day` (UTC `YYYY-MM-DD`), sort key
 * `tsId` (`<ISO time>#<random>`), so a day reads in time order with one Query; `expiresAt`
 * (Unix seconds) is the table's TTL attribute.
 */
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { components } from '../../console/src/api/openapi.gen.js';
import type { AuditFilterExpression } from '../audit-filter.js';
import type { ManagerStore } from './handle.js';
import { numberAttr, type StoreKey, startAt, stringAttr } from './pages.js';

/**
 * An audit entry as stored and as `GET /api/fleet/audit` returns it: the `AuditEntry` schema of
 * docs/openapi.yaml as generated for the console (a type-only import: erased, nothing of the
 * console is loaded at run time).
 */
export type AuditEntry = components['schemas']['AuditEntry'];

/** A stored entry, checked field by field (a field of the wrong type is left out). */
export function parseAuditItem(item: Record<string, unknown>): { entry: AuditEntry; expiresAt?: number } {
  const entry: AuditEntry = {
    day: stringAttr(item, 'day'),
    tsId: stringAttr(item, 'tsId'),
    at: numberAttr(item, 'at') ?? 0,
    actor: stringAttr(item, 'actor'),
    action: stringAttr(item, 'action'),
    sourceIp: stringAttr(item, 'sourceIp'),
    status: numberAttr(item, 'status') ?? 0,
  };
  for (const key of ['role', 'target', 'detail', 'bodySha256'] as const) {
    const v = item[key];
    if (typeof v === 'string') entry[key] = v;
  }
  for (const key of ['agentCount', 'code'] as const) {
    const v = item[key];
    if (typeof v === 'number') entry[key] = v;
  }
  if (Array.isArray(item.agents))
    entry.agents = item.agents.filter((a): a is string => typeof a === 'string');
  const expiresAt = numberAttr(item, 'expiresAt');
  return expiresAt === undefined ? { entry } : { entry, expiresAt };
}

export async function putAuditEntry(
  store: ManagerStore,
  entry: AuditEntry,
  expiresAt: number,
): Promise<void> {
  await store.doc.send(new PutCommand({ TableName: store.t.audit, Item: { ...entry, expiresAt } }));
}

/**
 * Up to `limit` entries of one day in time order, from `start`, that match `where` (applied by
 * DynamoDB after reading `limit` items); `next` when the day has more.
 */
export async function queryAuditDay(
  store: ManagerStore,
  day: string,
  limit: number,
  start: StoreKey | undefined,
  where?: AuditFilterExpression,
): Promise<{ items: Array<{ entry: AuditEntry; expiresAt?: number }>; next?: StoreKey }> {
  const page = await store.doc.send(
    new QueryCommand({
      TableName: store.t.audit,
      KeyConditionExpression: '#d = :d',
      ExpressionAttributeNames: { '#d': 'day', ...where?.ExpressionAttributeNames },
      ExpressionAttributeValues: { ':d': day, ...where?.ExpressionAttributeValues },
      ...(where ? { FilterExpression: where.FilterExpression } : {}),
      Limit: limit,
      ...startAt(start),
    }),
  );
  const items = (page.Items ?? []).map(parseAuditItem);
  return page.LastEvaluatedKey ? { items, next: page.LastEvaluatedKey } : { items };
}
