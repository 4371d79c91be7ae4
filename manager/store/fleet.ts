/**
 * The fleet-wide items in the configs table (scopes `fleet#…`, platform/store/fleet-items.ts):
 * gateway aggregates, desired connection limits, the sharded agents counter and tag member
 * counts. Gateways write aggregates and counters (agent-status.ts has the counter's ADD); the
 * manager API writes limits and tag counts; both read them here.
 */
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { GatewayLoad } from '../../gateway/process/gateway-load.js';
import { counterShard, FLEET_SCOPE, queryScope } from '../../platform/store/fleet-items.js';
import { parseGatewayLoad } from '../gateway-load-view.js';
import { batchGet } from '../tasks/store/batch-get.js';
import type { ManagerStore } from './handle.js';
import { numberAttr, stringAttr } from './pages.js';

/** A gateway that has not published its aggregate for this long is gone: its agents are offline. */
export const GATEWAY_DEAD_AFTER_MS = 60_000;

/** A gateway's aggregate as read back, with whether it is still alive. */
export interface GatewayInfo extends GatewayAggregate {
  alive: boolean;
}

/** A count map of an aggregate: its number entries (anything else is dropped). */
function countMap(v: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, n] of Object.entries(v)) if (typeof n === 'number') out[k] = n;
  }
  return out;
}

/** A `fleet#gateway` item, checked: missing or mistyped counts read as 0 / empty. */
export function parseGatewayAggregate(item: Record<string, unknown>, nowMs: number): GatewayInfo {
  const num = (key: string) => numberAttr(item, key) ?? 0;
  const updatedAtMs = num('updatedAtMs');
  const g: GatewayInfo = {
    gatewayId: stringAttr(item, 'gatewayId') || String(item.name),
    updatedAtMs,
    alive: nowMs - updatedAtMs < GATEWAY_DEAD_AFTER_MS,
    connected: num('connected'),
    online: num('online'),
    running: num('running'),
    abnormal: num('abnormal'),
    stale: num('stale'),
    byVersion: countMap(item.byVersion),
    byPlatform: countMap(item.byPlatform),
    byTag: countMap(item.byTag),
  };
  if (typeof item.controlAddr === 'string') g.controlAddr = item.controlAddr;
  const load = parseGatewayLoad(item.load);
  if (load) g.load = load;
  return g;
}

/** Every gateway's aggregate, by gateway id. */
export async function readGatewayAggregates(
  store: ManagerStore,
  nowMs: number,
): Promise<Map<string, GatewayInfo>> {
  const items = await queryScope(store.doc, store.prefix, FLEET_SCOPE.gateway);
  return new Map(items.map((i) => [String(i.name), parseGatewayAggregate(i, nowMs)]));
}

/** What a gateway publishes every 30 s about its agents (agent-status-writer.ts). */
export interface GatewayAggregate {
  gatewayId: string;
  controlAddr?: string;
  updatedAtMs: number;
  connected: number;
  online: number;
  running: number;
  abnormal: number;
  stale: number;
  byVersion: Record<string, number>;
  byPlatform: Record<string, number>;
  byTag: Record<string, number>;
  /** The gateway's ingest load, when it publishes one. */
  load?: GatewayLoad;
}

export async function putGatewayAggregate(store: ManagerStore, aggregate: GatewayAggregate): Promise<void> {
  await store.doc.send(
    new PutCommand({
      TableName: store.t.configs,
      Item: { scope: FLEET_SCOPE.gateway, name: aggregate.gatewayId, ...aggregate },
    }),
  );
}

export async function deleteGatewayAggregate(store: ManagerStore, gatewayId: string): Promise<void> {
  await store.doc.send(
    new DeleteCommand({ TableName: store.t.configs, Key: { scope: FLEET_SCOPE.gateway, name: gatewayId } }),
  );
}

/** A gateway's desired connection limit (`fleet#limit`), fields checked. */
export interface GatewayLimitItem {
  limit?: number;
  /** Set by rebalance: the limit no longer holds from then. */
  expiresAtMs?: number;
  updatedAtMs?: number;
  updatedBy?: string;
}

export function parseGatewayLimit(item: Record<string, unknown>): GatewayLimitItem {
  const out: GatewayLimitItem = {};
  if (typeof item.limit === 'number') out.limit = item.limit;
  if (typeof item.expiresAtMs === 'number') out.expiresAtMs = item.expiresAtMs;
  if (typeof item.updatedAtMs === 'number') out.updatedAtMs = item.updatedAtMs;
  if (typeof item.updatedBy === 'string') out.updatedBy = item.updatedBy;
  return out;
}

const limitKey = (gatewayId: string) => ({ scope: FLEET_SCOPE.limit, name: gatewayId });

export async function getGatewayLimit(
  store: ManagerStore,
  gatewayId: string,
  opts: { consistent?: boolean } = {},
): Promise<GatewayLimitItem | undefined> {
  const r = await store.doc.send(
    new GetCommand({
      TableName: store.t.configs,
      Key: limitKey(gatewayId),
      ...(opts.consistent ? { ConsistentRead: true } : {}),
    }),
  );
  return r.Item ? parseGatewayLimit(r.Item) : undefined;
}

/** The limits set for `gatewayIds` (BatchGetItem, unprocessed keys retried); absent ones left out. */
export async function getGatewayLimits(
  store: ManagerStore,
  gatewayIds: readonly string[],
): Promise<Map<string, GatewayLimitItem>> {
  const items = await batchGet(store, store.t.configs, gatewayIds.map(limitKey));
  return new Map(items.map((i) => [String(i.name), parseGatewayLimit(i)]));
}

export async function putGatewayLimit(
  store: ManagerStore,
  gatewayId: string,
  limit: { limit: number; updatedAtMs: number; updatedBy: string; expiresAtMs?: number | undefined },
): Promise<void> {
  await store.doc.send(
    new PutCommand({
      TableName: store.t.configs,
      Item: {
        ...limitKey(gatewayId),
        limit: limit.limit,
        updatedAtMs: limit.updatedAtMs,
        updatedBy: limit.updatedBy,
        ...(limit.expiresAtMs !== undefined ? { expiresAtMs: limit.expiresAtMs } : {}),
      },
    }),
  );
}

export async function deleteGatewayLimit(store: ManagerStore, gatewayId: string): Promise<void> {
  await store.doc.send(new DeleteCommand({ TableName: store.t.configs, Key: limitKey(gatewayId) }));
}

/** Agents ever seen: the sum of the `fleet#counter` shards. */
export async function sumAgentCounters(store: ManagerStore): Promise<number> {
  let n = 0;
  for (const c of await queryScope(store.doc, store.prefix, FLEET_SCOPE.counter))
    n += numberAttr(c, 'n') ?? 0;
  return n;
}

/**
 * Counts a new agent: one ADD on its counter shard. ADD is not idempotent: an SDK retry after a
 * timed-out attempt that was applied would count the agent twice, so the call gets a long
 * timeout (`requestTimeoutMs`) instead of the client's short one.
 */
export async function countNewAgent(
  store: ManagerStore,
  agentId: string,
  at: number,
  requestTimeoutMs: number,
): Promise<void> {
  await store.doc.send(
    new UpdateCommand({
      TableName: store.t.configs,
      Key: { scope: FLEET_SCOPE.counter, name: `agents#${counterShard(agentId)}` },
      UpdateExpression: 'ADD #n :one SET #u = :now',
      ExpressionAttributeNames: { '#n': 'n', '#u': 'updatedAtMs' },
      ExpressionAttributeValues: { ':one': 1, ':now': at },
    }),
    { requestTimeout: requestTimeoutMs },
  );
}

/** Tags with at least one member → their member counts, in tag order. */
export async function readTagCounts(store: ManagerStore): Promise<Map<string, number>> {
  const items = await queryScope(store.doc, store.prefix, FLEET_SCOPE.tagCount);
  const counts: Array<[string, number]> = [];
  for (const i of items) {
    const n = numberAttr(i, 'n');
    if (n !== undefined && n > 0) counts.push([String(i.name), n]);
  }
  return new Map(counts.sort(([a], [b]) => a.localeCompare(b)));
}

/** Tag → updatedAtMs of its count item (consistent: a change just announced must be visible). */
export async function readTagRevisions(store: ManagerStore): Promise<Map<string, number>> {
  const items = await queryScope(store.doc, store.prefix, FLEET_SCOPE.tagCount, { consistent: true });
  return new Map(items.map((i) => [String(i.name), numberAttr(i, 'updatedAtMs') ?? 0]));
}

/** Records a tag's member count; a count of 0 removes the tag's item. */
export async function putTagCount(store: ManagerStore, tag: string, n: number, at: number): Promise<void> {
  const key = { scope: FLEET_SCOPE.tagCount, name: tag };
  if (n === 0) await store.doc.send(new DeleteCommand({ TableName: store.t.configs, Key: key }));
  else
    await store.doc.send(
      new PutCommand({ TableName: store.t.configs, Item: { ...key, n, updatedAtMs: at } }),
    );
}
