/**
 * Every DynamoDB table of fleetgate, defined once as data: name suffix, keys, indexes, TTL
 * attribute, billing mode. The embedded store (`ensureTables`), the tests and the Terraform in
 * `infra/` all follow these definitions; nothing else names a table or a key attribute.
 *
 * Only key attributes are declared to DynamoDB (it is schemaless otherwise); `fields` lists the
 * other attributes each table's code writes, as documentation for the modules that share a table.
 *
 * Access rules of the project (docs/hardening.md §4): single-item conditional writes, Query, BatchWrite and
 * BatchGet only, no transactions (dynalite has none), no Scan on a hot path. TTL attributes hold
 * epoch **seconds** (DynamoDB's TTL format); DynamoDB deletes expired items lazily (typically
 * within days) and dynalite never does, so every reader also filters expired items itself.
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

export type AttributeType = 'S' | 'N' | 'B';

export interface KeyAttribute {
  readonly name: string;
  readonly type: AttributeType;
}

export interface GlobalIndex {
  readonly name: string;
  readonly pk: KeyAttribute;
  readonly sk?: KeyAttribute;
  /** KEYS_ONLY keeps index writes cheap; readers fetch whole items by key when they need them. */
  readonly projection: 'KEYS_ONLY' | 'ALL' | { readonly include: readonly string[] };
}

/**
 * A chunk head's attributes but the per-agent `st` and `gw` (and the members' `agentIds` and
 * `tokens`): the range, lease, due time, result marks and counters by state, what a dispatcher
 * tick and a task view read of each head (manager/tasks/model.ts).
 */
export const CHUNK_HEAD_SUMMARY_FIELDS = [
  'start',
  'len',
  'state',
  'leaseOwner',
  'leaseUntil',
  'leaseVersion',
  'nextAt',
  'handled',
  'passAt',
  'dirty',
  'clean',
  'nCreated',
  'nRunning',
  'nSucceed',
  'nFailed',
  'nResultSucceed',
  'nResultFailed',
] as const;

export interface TableDef {
  /** Table name = prefix + suffix (e.g. `fleetgate-` + `registry`). */
  readonly suffix: string;
  readonly pk: KeyAttribute;
  readonly sk?: KeyAttribute;
  readonly indexes: readonly GlobalIndex[];
  /** Attribute holding the expiry in epoch seconds; DynamoDB TTL is enabled on it. */
  readonly ttl?: string;
  readonly billing: 'PAY_PER_REQUEST';
  /** One line: who reads and writes this table, and how. */
  readonly access: string;
  /** Non-key attributes the code writes (documentation; DynamoDB does not declare them). */
  readonly fields: readonly string[];
}

const S = (name: string): KeyAttribute => ({ name, type: 'S' });

export const TABLES = {
  // Service discovery registry. Writers: every manager renews its instances every ~5 s
  // (UpdateItem conditioned on a live item, else PutItem conditioned on none/expired); evict =
  // DeleteItem. Readers: discovery Queries one service name (cached ~1 s per process); names,
  // list and summary Scan this small table (cached). Hot-key arithmetic: docs/discovery.md.
  registry: {
    suffix: 'registry',
    pk: S('name'),
    sk: S('instance'),
    indexes: [],
    ttl: 'expiresAt',
    billing: 'PAY_PER_REQUEST',
    access: 'Query by service name; conditional Update/Put per instance; Delete on evict',
    fields: [
      'ip',
      'port',
      'weight',
      'limit',
      'cpu',
      'mem',
      'version',
      'extra',
      'createdAt',
      'updatedAt',
      'expiresAtMs',
    ],
  },
  // One item per agent ever seen: last heartbeat summary and the gateway it is connected to.
  // Gateways update their agents' items; the manager reads by agentId, or Queries `byGateway`
  // to reconcile one gateway's agents (index reads are eventually consistent).
  agents: {
    suffix: 'agents',
    pk: S('agentId'),
    indexes: [{ name: 'byGateway', pk: S('gateway'), sk: S('agentId'), projection: 'KEYS_ONLY' }],
    billing: 'PAY_PER_REQUEST',
    access: 'Get/Update by agentId; Query byGateway for reconciliation',
    fields: ['hostname', 'ips', 'version', 'platform', 'online', 'lastSeen', 'heartbeat'],
  },
  // Tag membership, one item per (tag, agent): Query a tag for its agents (task targets, config
  // scopes); Query `byAgent` for an agent's tags (what the gateway attaches to records).
  tags: {
    suffix: 'tags',
    pk: S('tag'),
    sk: S('agentId'),
    indexes: [{ name: 'byAgent', pk: S('agentId'), sk: S('tag'), projection: 'KEYS_ONLY' }],
    billing: 'PAY_PER_REQUEST',
    access: 'Query by tag; Query byAgent; Put/Delete per membership; BatchWrite for bulk tagging',
    fields: ['createdAt', 'createdBy'],
  },
  // Plugin configuration by scope: `default`, `tag#<tag>`, `agent#<agentId>`; sk = plugin name.
  // The manager resolves an agent's config with one Query per scope (most specific wins).
  configs: {
    suffix: 'configs',
    pk: S('scope'),
    sk: S('name'),
    indexes: [],
    billing: 'PAY_PER_REQUEST',
    access: 'Query by scope; conditional Put with a version attribute (optimistic locking)',
    fields: ['type', 'version', 'sha256', 'signature', 'downloadUrls', 'detail', 'rev', 'updatedAt'],
  },
  // A task (a command for a set of agents): its definition, target and aggregate state; plus
  // `req#<request_id>` idempotency records. Dispatchers Query the sparse `byActive` (only running
  // tasks carry `active`) every tick; lists Query the sparse `byTime` (task ids sort by creation
  // time). Writes are operator-rate, plus one counts snapshot per active task per second at most.
  tasks: {
    suffix: 'tasks',
    pk: S('taskId'),
    indexes: [
      { name: 'byActive', pk: S('active'), sk: S('taskId'), projection: 'KEYS_ONLY' },
      { name: 'byTime', pk: S('listPk'), sk: S('taskId'), projection: 'KEYS_ONLY' },
    ],
    // Set when the task ends (finished / cancelled) to the end of its retention
    // (FLEETGATE_TASK_RETENTION_DAYS); its subtasks and chunks get the same value after it.
    ttl: 'expiresAt',
    billing: 'PAY_PER_REQUEST',
    access:
      'Get/conditional Update by taskId; Query byActive (dispatch) and byTime (lists); conditional Put of req# records',
    fields: [
      'taskType',
      'action',
      'taskName',
      'user',
      'tag',
      'idList',
      'filter',
      'data',
      'state',
      'total',
      'released',
      'chunks',
      'concurrence',
      'maxAttempts',
      'timeoutS',
      'jobs',
      'counts',
      'requestId',
      'createdAt',
      'updatedAt',
      'expiresAt',
      'sweepKey',
      'sweepOwner',
      'sweepUntil',
    ],
  },
  // One item per (task, agent): delivery and result state. Agents answer with the task token;
  // `byToken` maps a result back to its subtask (eventually consistent). Written at creation; then
  // by the chunk's lease holder (plugin tasks: conditional Update per delivery; config/ctrl tasks:
  // BatchWrite only for failed attempts, their state otherwise lives in the chunk head) and by
  // result callbacks (conditional Update, plugin tasks only: never out of a final state).
  subtasks: {
    suffix: 'subtasks',
    pk: S('taskId'),
    sk: S('agentId'),
    // `byAgent`: an agent's tasks, newest first (task ids sort by time), for the console's agent page.
    indexes: [
      { name: 'byToken', pk: S('token'), projection: 'KEYS_ONLY' },
      { name: 'byAgent', pk: S('agentId'), sk: S('taskId'), projection: 'KEYS_ONLY' },
    ],
    ttl: 'expiresAt',
    billing: 'PAY_PER_REQUEST',
    access:
      'Query by taskId; BatchGet per chunk; conditional Update per subtask; Query byToken for results; Query byAgent (agent page); BatchWrite on fan-out',
    fields: [
      'idx',
      'chunk',
      'token',
      'taskType',
      'state',
      'attempts',
      'gateway',
      'msg',
      'retryAt',
      'deliveredAt',
      'fence',
      'result',
      'insertAt',
      'updatedAt',
      'expiresAt',
    ],
  },
  // Dispatch work units: a task's agents split into chunks of ≤ 100. Per chunk two items: the
  // head `h#<n>` (lease, due time, counters; for config/ctrl tasks each agent's state letter `st`
  // and delivery gateway `gw`) and the members `m#<n>` (agent ids and tokens, immutable). A
  // lease is a conditional Update of the head (`leaseUntil < :now OR attribute_not_exists(leaseOwner)`)
  // that bumps `leaseVersion`, the fencing token the gateways and subtask writes check.
  chunks: {
    suffix: 'chunks',
    pk: S('taskId'),
    sk: S('chunkId'),
    indexes: [],
    ttl: 'expiresAt',
    billing: 'PAY_PER_REQUEST',
    access:
      'Query heads by taskId (begins_with h#); conditional Update to take/renew/release a lease; ADD dirty on results',
    fields: ['agentIds', 'tokens', 'st', 'gw', 'expiresAt', ...CHUNK_HEAD_SUMMARY_FIELDS],
  },
  // Connection history: one item per connect or disconnect an agent made, sk `<ISO time>#<kind>#<gateway>`.
  // Gateways BatchWrite them (a second after the event); the manager Queries one agent, newest
  // first. Two writes per reconnect, kept `retentionDays` (TTL, filtered on read too).
  connections: {
    suffix: 'connections',
    pk: S('agentId'),
    sk: S('atId'),
    indexes: [],
    ttl: 'expiresAt',
    billing: 'PAY_PER_REQUEST',
    access: 'BatchWrite per connect/disconnect (gateways); Query by agentId, newest first (manager)',
    fields: ['kind', 'gateway', 'atMs', 'peer'],
  },
  // Manager users (console and API login).
  users: {
    suffix: 'users',
    pk: S('username'),
    indexes: [],
    billing: 'PAY_PER_REQUEST',
    access: 'Get by username; conditional Put (create only if absent)',
    fields: ['passwordHash', 'role', 'createdAt', 'disabledAt', 'rev'],
  },
  // API keys of the manager's own API (secret stored hashed).
  apikeys: {
    suffix: 'apikeys',
    pk: S('keyId'),
    indexes: [],
    billing: 'PAY_PER_REQUEST',
    access: 'Get by keyId; conditional Put; Update to revoke',
    fields: ['secretHash', 'owner', 'role', 'createdAt', 'revokedAt', 'lastUsedAt'],
  },
  // Audit log of manager actions: one partition per UTC day (`YYYY-MM-DD`), sk = `<ISO ts>#<id>`
  // so a day reads in time order with one Query. Writes are human-rate (far below a partition's
  // 1,000 WCU/s); expiry via TTL (and filtered on read).
  audit: {
    suffix: 'audit',
    pk: S('day'),
    sk: S('tsId'),
    indexes: [],
    ttl: 'expiresAt',
    billing: 'PAY_PER_REQUEST',
    access: 'Put per event; Query by day (time-ordered)',
    fields: ['actor', 'action', 'target', 'detail', 'sourceIp'],
  },
} as const satisfies Record<string, TableDef>;

export type TableKey = keyof typeof TABLES;

/**
 * Whether a TTL attribute's value (epoch seconds) has passed at `nowMs`. DynamoDB deletes an
 * expired item lazily (up to days later) and dynalite never does, so a reader treats an item
 * for which this is true as already gone.
 */
export function ttlExpired(expiresAt: unknown, nowMs: number): boolean {
  return typeof expiresAt === 'number' && expiresAt < Math.floor(nowMs / 1000);
}

export const TABLE_KEYS = Object.keys(TABLES) as TableKey[];

export function tableName(prefix: string, key: TableKey): string {
  return `${prefix}${TABLES[key].suffix}`;
}

/** The CreateTable request for `def` (every key and index attribute declared once). */
export function toCreateTableInput(def: TableDef, prefix: string): CreateTableCommandInput {
  const attributes = new Map<string, AttributeType>();
  const declare = (a: KeyAttribute) => {
    const seen = attributes.get(a.name);
    if (seen !== undefined && seen !== a.type) {
      throw new Error(`table ${def.suffix}: attribute ${a.name} declared as both ${seen} and ${a.type}`);
    }
    attributes.set(a.name, a.type);
  };
  const keySchema = (pk: KeyAttribute, sk?: KeyAttribute) => {
    declare(pk);
    if (sk) declare(sk);
    return [
      { AttributeName: pk.name, KeyType: 'HASH' as const },
      ...(sk ? [{ AttributeName: sk.name, KeyType: 'RANGE' as const }] : []),
    ];
  };
  const input: CreateTableCommandInput = {
    TableName: `${prefix}${def.suffix}`,
    BillingMode: def.billing,
    KeySchema: keySchema(def.pk, def.sk),
    AttributeDefinitions: [],
  };
  if (def.indexes.length > 0) {
    input.GlobalSecondaryIndexes = def.indexes.map((ix) => ({
      IndexName: ix.name,
      KeySchema: keySchema(ix.pk, ix.sk),
      Projection:
        typeof ix.projection === 'string'
          ? { ProjectionType: ix.projection }
          : { ProjectionType: 'INCLUDE', NonKeyAttributes: [...ix.projection.include] },
    }));
  }
  input.AttributeDefinitions = [...attributes].map(([AttributeName, AttributeType]) => ({
    AttributeName,
    AttributeType,
  }));
  return input;
}
