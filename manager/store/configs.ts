/**
 * Plugin config items in the `configs` table: key (scope, plugin name), scopes `default`,
 * `tag#<tag>` and `agent#<id>` (configs.ts has the merge rules), plus `fleet#agentnames`, the
 * plugin names any agent scope holds (platform/store/fleet-items.ts).
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { batchWriteAll, type WriteRequest } from '../../platform/store/batch-write.js';
import { FLEET_SCOPE } from '../../platform/store/fleet-items.js';
import type { ConfigMsg, StoredConfig } from '../config-msg.js';
import type { ManagerStore } from './handle.js';
import { allItems, startAt } from './pages.js';

/** A stored config item, checked: missing fields read as empty, download URLs as strings. */
export function storedConfigOf(i: Record<string, unknown>): StoredConfig {
  return {
    name: String(i.name),
    type: String(i.type ?? ''),
    signature: String(i.signature ?? ''),
    version: String(i.version ?? ''),
    sha256: String(i.sha256 ?? ''),
    download_url: Array.isArray(i.downloadUrls) ? i.downloadUrls.map(String) : [],
    detail: String(i.detail ?? ''),
    pos: Number(i.pos ?? 0),
  };
}

/** A scope's stored items in list order (position, then name), every page; undefined when it has none. */
export async function queryConfigScope(
  doc: DynamoDBDocumentClient,
  table: string,
  scope: string,
  o: { consistent?: boolean } = {},
): Promise<StoredConfig[] | undefined> {
  const items = await allItems((start) =>
    doc.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: '#s = :s',
        ExpressionAttributeNames: { '#s': 'scope' },
        ExpressionAttributeValues: { ':s': scope },
        ...(o.consistent ? { ConsistentRead: true } : {}),
        ...startAt(start),
      }),
    ),
  );
  if (items.length === 0) return undefined;
  return items.map(storedConfigOf).sort((a, b) => a.pos - b.pos || a.name.localeCompare(b.name));
}

/** `queryConfigScope` on the manager's configs table. */
export function readConfigScope(
  store: ManagerStore,
  scope: string,
  o: { consistent?: boolean } = {},
): Promise<StoredConfig[] | undefined> {
  return queryConfigScope(store.doc, store.t.configs, scope, o);
}

/** In order (a scope's puts before its deletes), 9 sends per request of 25 at most. */
function writeConfigs(store: ManagerStore, requests: WriteRequest[]): Promise<void> {
  const table = store.t.configs;
  return batchWriteAll(store.doc, table, requests, `configs: ${table}`, {
    maxDelayMs: Number.POSITIVE_INFINITY,
  });
}

/** Writes a scope's items at their list positions. */
export function putConfigItems(
  store: ManagerStore,
  scope: string,
  items: readonly ConfigMsg[],
  by: { updatedAt: number; updatedBy: string },
): Promise<void> {
  return writeConfigs(
    store,
    items.map((c, pos) => ({
      PutRequest: {
        Item: {
          scope,
          name: c.name,
          type: c.type,
          signature: c.signature,
          version: c.version,
          sha256: c.sha256,
          downloadUrls: c.download_url,
          detail: c.detail,
          pos,
          updatedAt: by.updatedAt,
          updatedBy: by.updatedBy,
        },
      },
    })),
  );
}

export function deleteConfigItems(
  store: ManagerStore,
  scope: string,
  names: readonly string[],
): Promise<void> {
  return writeConfigs(
    store,
    names.map((name) => ({ DeleteRequest: { Key: { scope, name } } })),
  );
}

/**
 * Adds plugin names to `fleet#agentnames`, so a config task that reads agent scopes by key
 * (tasks/config-plan.ts) never misses one: called before the items are written.
 */
export function registerAgentScopeNames(store: ManagerStore, names: readonly string[]): Promise<void> {
  return writeConfigs(
    store,
    [...new Set(names)].map((name) => ({ PutRequest: { Item: { scope: FLEET_SCOPE.agentNames, name } } })),
  );
}
