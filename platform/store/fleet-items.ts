/**
 * Fleet-wide items the gateways and managers share that have no table of their own in the schema
 * module yet: they live in the `configs` table under reserved scopes that start with `fleet#`
 * (real config scopes are `default`, `tag#<tag>` and `agent#<id>`, so they never collide), one
 * Query per scope reads them all.
 *
 *   scope            name             written by                     what
 *   fleet#gateway    <gatewayId>      each gateway, every 30 s       its agents aggregate (counts)
 *   fleet#limit      <gatewayId>      the manager API                the desired connection limit
 *   fleet#counter    agents#<0..15>   gateways, once per new agent   agents ever seen (sharded ADD)
 *   fleet#tagcount   <tag>            the manager, on tag changes    members of a tag
 *   fleet#agentnames <plugin name>    whoever writes an agent scope  names any agent scope may hold
 *
 * Every such item is small (< 4 KB except a gateway aggregate with many versions or tags) and
 * written at most every few seconds per key, far below a partition's 1,000 writes/s.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { tableName } from './schema.js';

export const FLEET_SCOPE = {
  gateway: 'fleet#gateway',
  limit: 'fleet#limit',
  counter: 'fleet#counter',
  tagCount: 'fleet#tagcount',
  // Every plugin name ever written into some `agent#<id>` scope: with it a config task reads the
  // agents' own items by key (BatchGet, 100 keys a request) instead of one Query per agent.
  agentNames: 'fleet#agentnames',
} as const;

export const AGENT_COUNTER_SHARDS = 16;

export function configsTable(prefix: string): string {
  return tableName(prefix, 'configs');
}

/** Every item of one scope of the configs table (paged Query). */
export async function queryScope(
  doc: DynamoDBDocumentClient,
  prefix: string,
  scope: string,
  opts: { consistent?: boolean } = {},
): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await doc.send(
      new QueryCommand({
        TableName: configsTable(prefix),
        KeyConditionExpression: '#s = :s',
        ExpressionAttributeNames: { '#s': 'scope' },
        ExpressionAttributeValues: { ':s': scope },
        ConsistentRead: opts.consistent ?? false,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    out.push(...((page.Items ?? []) as Record<string, unknown>[]));
    start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
  } while (start);
  return out;
}

/** A stable shard of the agents counter for an agent (FNV-1a). */
export function counterShard(agentId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < agentId.length; i++) {
    h ^= agentId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % AGENT_COUNTER_SHARDS;
}
