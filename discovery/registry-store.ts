/**
 * The service registry on DynamoDB (table `registry` of platform/store/schema.ts): one item per
 * (service name, instance "ip:port"), renewed by its owner every few seconds, expiring after a
 * TTL (default 15 s) unless renewed.
 *
 * Writes are single-item conditional writes only (plus BatchWrite for evicting several at once):
 *   - renewal: UpdateItem conditioned on a live item (`expiresAtMs > now`): weight, load,
 *     updatedAt and expiry change; createdAt and extra stay (Elkeid keeps `extra` on renewal);
 *   - first registration, or after expiry: PutItem conditioned on no live item, with createdAt;
 *     a lost race between two registrants retries the renewal once.
 * Reads: Query by name (expired items filtered here: dynalite never expires items and DynamoDB's
 * own TTL deletion lags by up to days); names() and summary() Scan the small table, cached.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { batchWriteAll } from '../platform/store/batch-write.js';
import { TABLES, tableName } from '../platform/store/schema.js';

export const DEFAULT_TTL_MS = 15_000;

export interface RegisterInput {
  name: string;
  ip: string;
  port: number;
  /** Elkeid: live connection count (gateways) or 0 (managers). */
  weight: number;
  /** Kept from the first registration, as Elkeid does. Undefined is stored as `{}`, null as null. */
  extra?: Record<string, unknown> | null;
  /** Capacity in the unit of `weight` (a gateway's connection limit); enables load ratios. */
  limit?: number | undefined;
  /** Informational load figures reported by the instance (CPU cores busy, RSS bytes). */
  cpu?: number | undefined;
  mem?: number | undefined;
  version?: string | undefined;
}

export interface RegistryInstance {
  name: string;
  ip: string;
  port: number;
  weight: number;
  extra: Record<string, unknown> | null;
  limit?: number;
  cpu?: number;
  mem?: number;
  version?: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  updatedAt: number;
  expiresAtMs: number;
}

export interface RegistryStore {
  readonly ttlMs: number;
  /** `created`: a new item (first registration or after expiry) rather than a renewal. */
  register(input: RegisterInput): Promise<{ created: boolean }>;
  evict(name: string, ip: string, port: number): Promise<void>;
  /** Several evictions in BatchWriteItem requests of at most 25. */
  evictMany(instances: ReadonlyArray<{ name: string; ip: string; port: number }>): Promise<void>;
  /** Live instances of `name`, in no particular order. */
  list(name: string): Promise<RegistryInstance[]>;
  /** Names with at least one live instance, sorted. Cached for `namesCacheMs` unless `maxAgeMs` says less. */
  names(opts?: { maxAgeMs?: number }): Promise<string[]>;
  /** Live instances per name (Elkeid's `/registry/summary`). One Scan. */
  summary(): Promise<Record<string, number>>;
}

export interface RegistryStoreOptions {
  client: DynamoDBClient;
  tablePrefix: string;
  ttlMs?: number;
  now?: () => number;
  namesCacheMs?: number;
  /** Strongly consistent Query (twice the read cost). Default false: answers are cached ~1 s anyway. */
  consistentRead?: boolean;
}

export function instanceKey(ip: string, port: number): string {
  return `${ip}:${port}`;
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function parseExtra(raw: unknown): Record<string, unknown> | null {
  if (typeof raw !== 'string') return null;
  try {
    const v = JSON.parse(raw) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** An item as read; null when it is not one of ours (missing key fields). */
function toInstance(item: Record<string, unknown>): RegistryInstance | null {
  const { name, ip, port, weight } = item;
  if (typeof name !== 'string' || typeof ip !== 'string' || !isFiniteNumber(port)) return null;
  const expiresAtMs = isFiniteNumber(item.expiresAtMs)
    ? item.expiresAtMs
    : isFiniteNumber(item.expiresAt)
      ? item.expiresAt * 1000
      : 0;
  const out: RegistryInstance = {
    name,
    ip,
    port,
    weight: isFiniteNumber(weight) ? weight : 0,
    extra: parseExtra(item.extra),
    createdAt: isFiniteNumber(item.createdAt) ? item.createdAt : 0,
    updatedAt: isFiniteNumber(item.updatedAt) ? item.updatedAt : 0,
    expiresAtMs,
  };
  if (isFiniteNumber(item.limit)) out.limit = item.limit;
  if (isFiniteNumber(item.cpu)) out.cpu = item.cpu;
  if (isFiniteNumber(item.mem)) out.mem = item.mem;
  if (typeof item.version === 'string') out.version = item.version;
  return out;
}

/** The registry table as the functions below use it. */
interface RegistryTable {
  doc: DynamoDBDocumentClient;
  table: string;
  ttlMs: number;
  consistentRead: boolean;
}

const PK = TABLES.registry.pk.name; // name
const SK = TABLES.registry.sk.name; // instance
const TTL = TABLES.registry.ttl; // expiresAt (epoch seconds)

const keyOf = (name: string, ip: string, port: number) => ({ [PK]: name, [SK]: instanceKey(ip, port) });

/** Renews a live registration (weight, load, times; `extra` and `createdAt` stay); false when none is live. */
async function renewInstance(r: RegistryTable, input: RegisterInput, t: number): Promise<boolean> {
  const set = ['#w = :w', 'updatedAt = :now', '#ttl = :exp', 'expiresAtMs = :expMs'];
  const remove: string[] = [];
  const names: Record<string, string> = { '#w': 'weight', '#ttl': TTL };
  const values: Record<string, unknown> = {
    ':w': input.weight,
    ':now': t,
    ':exp': Math.ceil((t + r.ttlMs) / 1000),
    ':expMs': t + r.ttlMs,
    ':t': t,
  };
  // limit is a reserved word in DynamoDB expressions: every optional field goes through a name.
  for (const field of ['limit', 'cpu', 'mem', 'version'] as const) {
    names[`#${field}`] = field;
    const v = input[field];
    if (v === undefined) remove.push(`#${field}`);
    else {
      set.push(`#${field} = :${field}`);
      values[`:${field}`] = v;
    }
  }
  try {
    await r.doc.send(
      new UpdateCommand({
        TableName: r.table,
        Key: keyOf(input.name, input.ip, input.port),
        UpdateExpression: `SET ${set.join(', ')}${remove.length > 0 ? ` REMOVE ${remove.join(', ')}` : ''}`,
        ConditionExpression: 'attribute_exists(#sk) AND expiresAtMs > :t',
        ExpressionAttributeNames: { ...names, '#sk': SK },
        ExpressionAttributeValues: values,
      }),
    );
    return true;
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException) return false;
    throw err;
  }
}

/** Creates a registration where none is live; false when another registrant's is. */
async function createInstance(r: RegistryTable, input: RegisterInput, t: number): Promise<boolean> {
  const item: Record<string, unknown> = {
    ...keyOf(input.name, input.ip, input.port),
    ip: input.ip,
    port: input.port,
    weight: input.weight,
    extra: JSON.stringify(input.extra === undefined ? {} : input.extra),
    limit: input.limit,
    cpu: input.cpu,
    mem: input.mem,
    version: input.version,
    createdAt: t,
    updatedAt: t,
    [TTL]: Math.ceil((t + r.ttlMs) / 1000),
    expiresAtMs: t + r.ttlMs,
  };
  try {
    await r.doc.send(
      new PutCommand({
        TableName: r.table,
        Item: item,
        ConditionExpression:
          'attribute_not_exists(#sk) OR expiresAtMs <= :t OR attribute_not_exists(expiresAtMs)',
        ExpressionAttributeNames: { '#sk': SK },
        ExpressionAttributeValues: { ':t': t },
      }),
    );
    return true;
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException) return false;
    throw err;
  }
}

/** The live instances of `name`, every page. */
async function listInstances(r: RegistryTable, name: string, t: number): Promise<RegistryInstance[]> {
  const out: RegistryInstance[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await r.doc.send(
      new QueryCommand({
        TableName: r.table,
        KeyConditionExpression: '#n = :n',
        ExpressionAttributeNames: { '#n': PK },
        ExpressionAttributeValues: { ':n': name },
        ConsistentRead: r.consistentRead,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const item of (page.Items ?? []) as Record<string, unknown>[]) {
      const inst = toInstance(item);
      if (inst && inst.expiresAtMs > t) out.push(inst);
    }
    start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
  } while (start);
  return out;
}

async function scanAll(
  r: RegistryTable,
  projection: string,
  names: Record<string, string>,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await r.doc.send(
      new ScanCommand({
        TableName: r.table,
        ProjectionExpression: projection,
        ExpressionAttributeNames: names,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    items.push(...((page.Items ?? []) as Record<string, unknown>[]));
    start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
  } while (start);
  return items;
}

function live(item: Record<string, unknown>, t: number): boolean {
  const ms = isFiniteNumber(item.expiresAtMs)
    ? item.expiresAtMs
    : isFiniteNumber(item[TTL])
      ? (item[TTL] as number) * 1000
      : 0;
  return ms > t;
}

/** Live instances per service name (a Scan of the small table). */
async function scanCounts(r: RegistryTable, t: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const items = await scanAll(r, '#n, expiresAtMs, #ttl', { '#n': PK, '#ttl': TTL });
  for (const item of items) {
    const n = item[PK];
    if (typeof n !== 'string' || !live(item, t)) continue;
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  return counts;
}

export function createRegistryStore(opts: RegistryStoreOptions): RegistryStore {
  const ttlMs = opts.ttlMs ?? DEFAULT_TTL_MS;
  if (!(ttlMs > 0)) throw new Error(`registry ttlMs must be positive, got ${ttlMs}`);
  const r: RegistryTable = {
    doc: DynamoDBDocumentClient.from(opts.client, { marshallOptions: { removeUndefinedValues: true } }),
    table: tableName(opts.tablePrefix, 'registry'),
    ttlMs,
    consistentRead: opts.consistentRead ?? false,
  };
  const now = opts.now ?? Date.now;
  const namesCacheMs = opts.namesCacheMs ?? 5000;
  let namesCache: { at: number; names: string[] } | undefined;
  let namesInflight: Promise<string[]> | undefined;

  return {
    ttlMs,

    async register(input) {
      const t = now();
      if (await renewInstance(r, input, t)) return { created: false };
      if (await createInstance(r, input, t)) {
        namesCache = undefined;
        return { created: true };
      }
      // Another registrant of the same instance created it between our two writes.
      if (await renewInstance(r, input, now())) return { created: false };
      throw new Error(`registry: could not register ${input.name} ${instanceKey(input.ip, input.port)}`);
    },

    async evict(name, ip, port) {
      await r.doc.send(new DeleteCommand({ TableName: r.table, Key: keyOf(name, ip, port) }));
    },

    async evictMany(instances) {
      const requests = instances.map((x) => ({ DeleteRequest: { Key: keyOf(x.name, x.ip, x.port) } }));
      await batchWriteAll(r.doc, r.table, requests, 'registry evictions', {
        maxAttempts: 5,
        baseDelayMs: 50,
        maxDelayMs: Number.POSITIVE_INFINITY,
      });
    },

    list: (name) => listInstances(r, name, now()),

    async names(o = {}) {
      const maxAge = o.maxAgeMs ?? namesCacheMs;
      if (namesCache && now() - namesCache.at < maxAge) return namesCache.names;
      namesInflight ??= scanCounts(r, now())
        .then((counts) => {
          const names = [...counts.keys()].sort();
          namesCache = { at: now(), names };
          return names;
        })
        .finally(() => {
          namesInflight = undefined;
        });
      return namesInflight;
    },

    async summary() {
      const counts = await scanCounts(r, now());
      namesCache = { at: now(), names: [...counts.keys()].sort() };
      return Object.fromEntries([...counts].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
    },
  };
}
