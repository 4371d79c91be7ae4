/**
 * The gateway side of agent status: keeps the `agents` table and the gateway's aggregate item
 * current without a write per heartbeat. It watches the session registry (a sweep every second;
 * nothing in the agent path changes) and writes:
 *
 *   event                                   write                                   when
 *   agent connected                         UpdateItem (newest connection wins)     next sweep (≤ 1 s)
 *   agent disconnected                      UpdateItem conditional on `conn`        next sweep
 *   first heartbeat, or a change of state,  full item, BatchWriteItem (25/request)  next flush (≤ 1 s)
 *     version, host, IPs or plugin set
 *   no heartbeat for 3 × 60 s               UpdateItem `stale` conditional on conn  next sweep
 *   nothing changed                         full item, BatchWriteItem               every 10 min + 0–60 s
 *   gateway aggregate (counts)              PutItem in configs `fleet#gateway`      every 30 s
 *
 * So steady state costs one write per agent per 10–11 minutes (docs/manager.md has the
 * arithmetic for a million agents), and every status change reaches the store within a couple of
 * seconds. Status as Elkeid defines it, faster: offline = disconnected, or no heartbeat for
 * 180 s, or its gateway stopped publishing (the reader checks the aggregate's age, 60 s);
 * abnormal = the heartbeat's `state` is `abnormal`; else running.
 *
 * Ordering: one agent's writes are serialised here; across gateways, a connection write only
 * lands if it is not older than the stored one (`connectedAtMs`), and the disconnect and stale
 * writes only apply to the connection that wrote them (`conn`), so an agent that moved to
 * another gateway is never marked offline by the old one. Gateway clocks must agree within the
 * agents' reconnect delay (5 s).
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { Counter, type Registry } from 'prom-client';
import type { AgentHeader, Detail } from '../gateway/agent/heartbeat.js';
import type { GatewayLoad } from '../gateway/process/gateway-load.js';
import type { Logger } from '../platform/obs/logger.js';
import { batchWrite } from '../platform/store/batch-write.js';
import { configsTable, counterShard, FLEET_SCOPE } from '../platform/store/fleet-items.js';
import { tableName } from '../platform/store/schema.js';
import type { ConnectionEvent } from './store/connection-history-store.js';
import { createTagWatch } from './tag-watch.js';

/** What the writer reads of a gateway session (gateway/agent/sessions.ts AgentSession). */
export interface WritableSession {
  readonly agentId: string;
  readonly peer: string;
  /** Unix seconds. */
  readonly connectedAt: number;
  readonly header: AgentHeader;
  readonly detail: Detail | undefined;
  readonly plugins: ReadonlyMap<string, Detail>;
}

export interface HeartbeatWriterOptions {
  client: DynamoDBClient;
  tablePrefix: string;
  /** This gateway's identity in the agents table and aggregates, e.g. `10.0.0.5:6751`. */
  gatewayId: string;
  /** `host:port` of this gateway's control API (what the manager will call). */
  controlAddr?: string;
  sessions: { all(): Iterable<WritableSession> };
  logger: Logger;
  registry?: Registry;
  /** Default 1000 ms. */
  sweepMs?: number;
  /** Default 1000 ms. */
  flushMs?: number;
  /** Unchanged agents are rewritten this often. Default 600 000 ms (10 min). */
  refreshMs?: number;
  /** Added at random to each refresh so a fleet started together spreads out. Default 60 000 ms. */
  refreshJitterMs?: number;
  /** No heartbeat for this long = offline. Default 180 000 ms (3 × Elkeid's 60 s period). */
  staleAfterMs?: number;
  /** Default 30 000 ms. */
  aggregateMs?: number;
  /** The desired connection limit (`fleet#limit`) is re-read this often (load control). Default 5000 ms. */
  limitMs?: number;
  /** Read each agent's tags at connect and refresh (for aggregates and `tagsOf`). Default true. */
  loadTags?: boolean;
  /**
   * Tag changes reach the connected agents' tags (MQData.Tag) within this (tag-watch.ts).
   * Default 20 000 ms.
   */
  tagsMs?: number;
  /** Single-item writes in flight at once. Default 32. */
  maxInFlight?: number;
  /** Longest close() waits for pending writes. Default 10 000 ms. */
  closeTimeoutMs?: number;
  now?: () => number;
  random?: () => number;
  /** This gateway's ingest load, published with each aggregate (gateway/process/gateway-load.ts). */
  load?: () => Promise<GatewayLoad>;
  /** Each connect and disconnect this gateway records (the agent's connection history). */
  onConnection?: (e: ConnectionEvent) => void;
}

export interface HeartbeatWriterStats {
  tracked: number;
  writes: {
    connect: number;
    disconnect: number;
    stale: number;
    put: number;
    aggregate: number;
    counter: number;
  };
  batches: number;
  errors: number;
  queuedPuts: number;
}

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
  load?: GatewayLoad;
}

export interface HeartbeatWriter {
  /** Starts the sweep, flush and aggregate timers. */
  start(): void;
  /** One sweep now (what the timer does). */
  sweep(): void;
  /** Waits until every write decided so far is done (tests, shutdown). */
  settle(): Promise<void>;
  /** Writes this gateway's aggregate now. */
  publishAggregate(): Promise<GatewayAggregate>;
  aggregate(): GatewayAggregate;
  /** Comma-joined tags of a connected agent ('' when unknown): IngestPipeline's `tagsOf`. */
  tagsOf(agentId: string): string;
  /**
   * The connection limit the manager API stores for this gateway (read every `limitMs` and with
   * each aggregate); undefined when none is set or it expired (`expiresAtMs`, set by rebalance).
   * Enforced by gateway/agent/load-shedder.ts.
   */
  desiredLimit(): number | undefined;
  /** Reads the desired limit now (what the timer does). */
  refreshLimit(): Promise<number | undefined>;
  stats(): HeartbeatWriterStats;
  /**
   * Marks every agent still tracked as disconnected (the gateway is going away), writes it, and
   * removes this gateway's aggregate so statistics drop it at once. Call after the gateway drained.
   */
  close(): Promise<void>;
}

type Phase = 'pending' | 'connected' | 'superseded' | 'gone';

interface Tracked {
  s: WritableSession;
  agentId: string;
  conn: string;
  connectedAtMs: number;
  phase: Phase;
  connectWritten: boolean;
  /** When the session was first seen here (ms); written as firstSeenMs of a new agent. */
  stamp: number;
  firstSeenMs: number;
  detail: Detail | undefined;
  hbSeenAtMs: number;
  /** Significant fields as last written; '' before the first full write. */
  sig: string;
  stale: boolean;
  state: 'running' | 'abnormal';
  nextRefreshAtMs: number;
  queuedPut: boolean;
  busy: number;
  putInFlight: Promise<void> | undefined;
  chain: Promise<void>;
  tags: string[];
}

const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

function pluginList(s: WritableSession): Detail[] {
  return [...s.plugins.values()];
}

function signature(s: WritableSession, d: Detail | undefined): string {
  const plugins = [...s.plugins.values()]
    .map((p) => `${str(p.name)}@${str(p.pversion)}`)
    .sort()
    .join(',');
  return [
    str(d?.state),
    s.header.version,
    s.header.hostname,
    s.header.intranetIPv4.join(','),
    s.header.extranetIPv4.join(','),
    str(d?.platform),
    str(d?.platform_version),
    str(d?.kernel_version),
    str(d?.arch),
    str(d?.idc),
    str(d?.region),
    plugins,
  ].join('|');
}

/** `#x` → `x` for each attribute: DynamoDB reserves hundreds of words (online, state, name…). */
function names(...attrs: string[]): Record<string, string> {
  return Object.fromEntries(attrs.map((a) => [`#${a}`, a]));
}

const MAX_RETRIES = 8;
const COUNTER_TIMEOUT_MS = 10_000;

/** Most keys per count map in an aggregate (versions, platforms, tags). */
export const MAX_AGGREGATE_KEYS = 2000;

/** DynamoDB map keys must be non-empty. */
const mapKey = (k: string) => (k === '' ? 'unknown' : k.slice(0, 128));

export function createHeartbeatWriter(o: HeartbeatWriterOptions): HeartbeatWriter {
  const log = o.logger.child({ component: 'agent-status-writer', gateway: o.gatewayId });
  const doc = DynamoDBDocumentClient.from(o.client, { marshallOptions: { removeUndefinedValues: true } });
  const agentsTable = tableName(o.tablePrefix, 'agents');
  const tagsTable = tableName(o.tablePrefix, 'tags');
  const configs = configsTable(o.tablePrefix);
  const now = o.now ?? Date.now;
  const random = o.random ?? Math.random;
  const sweepMs = o.sweepMs ?? 1000;
  const flushMs = o.flushMs ?? 1000;
  const refreshMs = o.refreshMs ?? 600_000;
  const jitterMs = o.refreshJitterMs ?? 60_000;
  const staleAfterMs = o.staleAfterMs ?? 180_000;
  const aggregateMs = o.aggregateMs ?? 30_000;
  const loadTags = o.loadTags ?? true;
  const tagsMs = o.tagsMs ?? 20_000;
  const tagWatch = createTagWatch({ revisions: tagRevisions, members: tagMembers });
  const maxInFlight = o.maxInFlight ?? 32;
  const closeTimeoutMs = o.closeTimeoutMs ?? 10_000;

  const bySession = new Map<WritableSession, Tracked>();
  const byAgent = new Map<string, Tracked>();
  const putQueue: Tracked[] = [];
  const pending = new Set<Promise<unknown>>();
  let connSeq = 0;
  let limit: number | undefined;
  let limitExpiresAtMs: number | undefined;
  const limitMs = o.limitMs ?? 5000;
  let timers: NodeJS.Timeout[] = [];
  let closed = false;
  /** Set when close() gives up waiting: retries stop. */
  let abandon = false;
  const stats: HeartbeatWriterStats = {
    tracked: 0,
    writes: { connect: 0, disconnect: 0, stale: 0, put: 0, aggregate: 0, counter: 0 },
    batches: 0,
    errors: 0,
    queuedPuts: 0,
  };
  const metricName = 'fleetgate_agent_status_writes_total';
  const writesMetric = o.registry
    ? ((o.registry.getSingleMetric(metricName) as Counter<'kind'> | undefined) ??
      new Counter({
        name: metricName,
        help: 'agent status writes to DynamoDB by kind (connect, disconnect, stale, put, aggregate, counter)',
        labelNames: ['kind'],
        registers: [o.registry],
      }))
    : undefined;
  const count = (kind: keyof HeartbeatWriterStats['writes'], n = 1) => {
    stats.writes[kind] += n;
    writesMetric?.inc({ kind }, n);
  };

  // A small semaphore for single-item writes.
  let inFlight = 0;
  const waiters: Array<() => void> = [];
  async function withSlot<T>(fn: () => Promise<T>): Promise<T> {
    if (inFlight >= maxInFlight) await new Promise<void>((r) => waiters.push(r));
    inFlight++;
    try {
      return await fn();
    } finally {
      inFlight--;
      waiters.shift()?.();
    }
  }

  function track<T>(p: Promise<T>): Promise<T> {
    pending.add(p);
    p.finally(() => pending.delete(p)).catch(() => {});
    return p;
  }

  /**
   * Appends an operation to the agent's chain (its writes never overlap or reorder). A failed
   * write is retried with backoff (0.2 s doubling to 10 s, 8 times) while `retry()` holds: the
   * store being slow or briefly down must not leave an agent unrecorded.
   */
  function enqueue(t: Tracked, op: () => Promise<void>, retry: () => boolean = () => false): void {
    t.chain = track(
      t.chain.then(async () => {
        t.busy++;
        try {
          for (let attempt = 0; ; attempt++) {
            try {
              await withSlot(op);
              return;
            } catch (err) {
              stats.errors++;
              if (attempt >= MAX_RETRIES || abandon || !retry()) {
                log.warn({ err, agentId: t.agentId }, 'agent status write failed');
                return;
              }
              await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** attempt, 10_000)));
            }
          }
        } finally {
          t.busy--;
        }
      }),
    );
  }

  const isConditionFailed = (err: unknown) =>
    (err as { name?: string })?.name === 'ConditionalCheckFailedException';

  async function readTags(agentId: string): Promise<string[]> {
    const r = await doc.send(
      new QueryCommand({
        TableName: tagsTable,
        IndexName: 'byAgent',
        KeyConditionExpression: '#a = :a',
        ExpressionAttributeNames: { '#a': 'agentId' },
        ExpressionAttributeValues: { ':a': agentId },
      }),
    );
    return (r.Items ?? []).map((i) => String(i.tag)).sort();
  }

  /** tag → updatedAtMs of its `fleet#tagcount` item (tag-watch.ts). */
  async function tagRevisions(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    let start: Record<string, unknown> | undefined;
    do {
      const page = await doc.send(
        new QueryCommand({
          TableName: configs,
          KeyConditionExpression: '#s = :s',
          ExpressionAttributeNames: { '#s': 'scope' },
          ExpressionAttributeValues: { ':s': FLEET_SCOPE.tagCount },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const i of page.Items ?? []) out.set(String(i.name), Number(i.updatedAtMs ?? 0));
      start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
    } while (start);
    return out;
  }

  /** The agents holding `tag` (consistent: a change just announced must be visible). */
  async function tagMembers(tag: string): Promise<Set<string>> {
    const out = new Set<string>();
    let start: Record<string, unknown> | undefined;
    do {
      const page = await doc.send(
        new QueryCommand({
          TableName: tagsTable,
          KeyConditionExpression: '#t = :t',
          ExpressionAttributeNames: { '#t': 'tag', '#a': 'agentId' },
          ExpressionAttributeValues: { ':t': tag },
          ProjectionExpression: '#a',
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const i of page.Items ?? []) out.add(String(i.agentId));
      start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
    } while (start);
    return out;
  }

  function connectOp(t: Tracked): () => Promise<void> {
    return async () => {
      if (t.phase === 'gone') return;
      // The same stamp on every retry, so a retry of an attempt that had in fact been applied
      // recognises its own firstSeenMs and still counts the new agent.
      const at = t.stamp;
      const h = t.s.header;
      let old: Record<string, unknown> | undefined;
      try {
        const r = await doc.send(
          new UpdateCommand({
            TableName: agentsTable,
            Key: { agentId: t.agentId },
            UpdateExpression:
              'SET #gateway = :g, #conn = :c, #online = :t, #connectedAtMs = :ca, #hostname = :h, #version = :v, ' +
              '#product = :p, #ipv4 = :i4, #ipv6 = :i6, #writtenAtMs = :now, #firstSeenMs = if_not_exists(#firstSeenMs, :now) ' +
              'REMOVE #stale',
            ConditionExpression: 'attribute_not_exists(#connectedAtMs) OR #connectedAtMs <= :ca',
            ExpressionAttributeNames: names(
              'gateway',
              'conn',
              'online',
              'connectedAtMs',
              'hostname',
              'version',
              'product',
              'ipv4',
              'ipv6',
              'writtenAtMs',
              'firstSeenMs',
              'stale',
            ),
            ExpressionAttributeValues: {
              ':g': o.gatewayId,
              ':c': t.conn,
              ':t': true,
              ':ca': t.connectedAtMs,
              ':h': h.hostname,
              ':v': h.version,
              ':p': h.product,
              ':i4': [...h.intranetIPv4, ...h.extranetIPv4],
              ':i6': [...h.intranetIPv6, ...h.extranetIPv6],
              ':now': at,
            },
            ReturnValues: 'UPDATED_OLD',
          }),
        );
        old = r.Attributes as Record<string, unknown> | undefined;
        count('connect');
        o.onConnection?.({
          agentId: t.agentId,
          kind: 'connect',
          gateway: o.gatewayId,
          atMs: at,
          peer: t.s.peer,
        });
      } catch (err) {
        if (isConditionFailed(err)) {
          // A newer connection of this agent (another gateway) is already recorded.
          t.phase = 'superseded';
          return;
        }
        throw err;
      }
      t.connectWritten = true;
      t.firstSeenMs = typeof old?.firstSeenMs === 'number' ? old.firstSeenMs : at;
      // New agent: no firstSeenMs before, or the one an earlier attempt of this very connection
      // wrote (a retry after a timed-out attempt that had in fact been applied sees its own stamp).
      if (old?.firstSeenMs === undefined || old.firstSeenMs === at) {
        // First time this agent is seen anywhere: one sharded counter increment for the totals.
        await doc
          .send(
            new UpdateCommand({
              TableName: configs,
              Key: { scope: FLEET_SCOPE.counter, name: `agents#${counterShard(t.agentId)}` },
              UpdateExpression: 'ADD #n :one SET #u = :now',
              ExpressionAttributeNames: { '#n': 'n', '#u': 'updatedAtMs' },
              ExpressionAttributeValues: { ':one': 1, ':now': at },
            }),
            // ADD is not idempotent: an SDK retry after a timed-out attempt that was applied would
            // count the agent twice, so this call gets a long timeout instead of the client's 600 ms.
            { requestTimeout: COUNTER_TIMEOUT_MS },
          )
          .then(() => count('counter'))
          .catch((err: unknown) => {
            stats.errors++;
            log.warn({ err }, 'agent counter update failed');
          });
      }
      if (t.phase === 'pending') t.phase = 'connected';
      if (loadTags) t.tags = await readTags(t.agentId).catch(() => t.tags);
      if (t.detail !== undefined) schedulePut(t);
    };
  }

  function disconnectOp(t: Tracked): () => Promise<void> {
    return async () => {
      if (!t.connectWritten) return;
      await t.putInFlight;
      try {
        await doc.send(
          new UpdateCommand({
            TableName: agentsTable,
            Key: { agentId: t.agentId },
            UpdateExpression:
              'SET #online = :f, #disconnectedAtMs = :now, #lastGateway = :g, #writtenAtMs = :now REMOVE #gateway, #stale',
            ConditionExpression: '#conn = :c',
            ExpressionAttributeNames: names(
              'online',
              'disconnectedAtMs',
              'lastGateway',
              'writtenAtMs',
              'gateway',
              'stale',
              'conn',
            ),
            ExpressionAttributeValues: { ':f': false, ':now': now(), ':g': o.gatewayId, ':c': t.conn },
          }),
        );
        count('disconnect');
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
      }
      o.onConnection?.({
        agentId: t.agentId,
        kind: 'disconnect',
        gateway: o.gatewayId,
        atMs: now(),
        peer: t.s.peer,
      });
    };
  }

  function staleOp(t: Tracked): () => Promise<void> {
    return async () => {
      if (t.phase !== 'connected') return;
      try {
        await doc.send(
          new UpdateCommand({
            TableName: agentsTable,
            Key: { agentId: t.agentId },
            UpdateExpression: 'SET #stale = :t, #writtenAtMs = :now',
            ConditionExpression: '#conn = :c',
            ExpressionAttributeNames: names('stale', 'writtenAtMs', 'conn'),
            ExpressionAttributeValues: { ':t': true, ':now': now(), ':c': t.conn },
          }),
        );
        count('stale');
      } catch (err) {
        if (isConditionFailed(err)) {
          t.phase = 'superseded';
          return;
        }
        t.stale = false; // retried by a later sweep
        throw err;
      }
    };
  }

  function schedulePut(t: Tracked): void {
    if (t.queuedPut) return;
    t.queuedPut = true;
    putQueue.push(t);
  }

  function image(t: Tracked, at: number): Record<string, unknown> {
    const s = t.s;
    const d = t.detail ?? {};
    const h = s.header;
    return {
      agentId: t.agentId,
      gateway: o.gatewayId,
      lastGateway: o.gatewayId,
      conn: t.conn,
      online: true,
      connectedAtMs: t.connectedAtMs,
      firstSeenMs: t.firstSeenMs,
      writtenAtMs: at,
      hbAt:
        typeof d.last_heartbeat_time === 'number' ? d.last_heartbeat_time : Math.floor(t.hbSeenAtMs / 1000),
      state: t.state,
      hostname: h.hostname,
      version: h.version,
      product: h.product,
      platform: str(d.platform),
      platformFamily: str(d.platform_family),
      platformVersion: str(d.platform_version),
      kernelVersion: str(d.kernel_version),
      arch: str(d.arch),
      idc: str(d.idc),
      region: str(d.region),
      ipv4: [...h.intranetIPv4, ...h.extranetIPv4],
      ipv6: [...h.intranetIPv6, ...h.extranetIPv6],
      hb: JSON.stringify(d),
      plugins: JSON.stringify(pluginList(s)),
    };
  }

  async function flush(): Promise<void> {
    if (putQueue.length === 0) return;
    const ready: Tracked[] = [];
    const keep: Tracked[] = [];
    for (const t of putQueue.splice(0)) {
      if (t.phase !== 'connected') {
        t.queuedPut = false;
        continue;
      }
      // A single-item write of this agent is running: keep order, take it next flush.
      if (t.busy > 0) keep.push(t);
      else ready.push(t);
    }
    putQueue.push(...keep);
    const batches: Tracked[][] = [];
    for (let i = 0; i < ready.length; i += 25) batches.push(ready.slice(i, i + 25));
    await Promise.all(batches.map((b) => withSlot(() => writeBatch(b))));
  }

  async function writeBatch(batch: Tracked[]): Promise<void> {
    const at = now();
    const sigs = new Map<Tracked, string>();
    const items = batch.map((t) => {
      sigs.set(t, signature(t.s, t.detail));
      return image(t, at);
    });
    let done: () => void = () => {};
    const inFlight = new Promise<void>((r) => {
      done = r;
    });
    for (const t of batch) t.putInFlight = inFlight;
    try {
      // Five sends at most; the agents still unprocessed are put again at the next flush.
      const left = await batchWrite(
        doc,
        agentsTable,
        items.map((Item) => ({ PutRequest: { Item } })),
        {
          maxAttempts: 5,
          baseDelayMs: 50,
          maxDelayMs: Number.POSITIVE_INFINITY,
          onSend(sent, unprocessed) {
            stats.batches++;
            count('put', sent - unprocessed);
          },
        },
      );
      const failed = new Set(left.map((q) => ('PutRequest' in q ? String(q.PutRequest.Item.agentId) : '')));
      for (const t of batch) {
        t.queuedPut = false;
        if (failed.has(t.agentId)) {
          schedulePut(t);
          continue;
        }
        t.sig = sigs.get(t)!;
        t.stale = false;
        t.nextRefreshAtMs = at + refreshMs + Math.floor(random() * jitterMs);
      }
    } catch (err) {
      stats.errors++;
      log.warn({ err, agents: batch.length }, 'agent status batch write failed; retrying next flush');
      for (const t of batch) {
        t.queuedPut = false;
        schedulePut(t);
      }
    } finally {
      for (const t of batch) if (t.putInFlight === inFlight) t.putInFlight = undefined;
      done();
    }
  }

  function observe(t: Tracked, at: number): void {
    const d = t.s.detail;
    if (d !== undefined && d !== t.detail) {
      t.detail = d;
      t.hbSeenAtMs = at;
      t.state = d.state === 'abnormal' ? 'abnormal' : 'running';
      if (t.sig === '' || t.stale || signature(t.s, d) !== t.sig) schedulePut(t);
    }
    if (!t.stale && at - t.hbSeenAtMs >= staleAfterMs) {
      t.stale = true;
      enqueue(t, staleOp(t));
    }
    if (t.detail !== undefined && !t.stale && at >= t.nextRefreshAtMs) {
      t.nextRefreshAtMs = Number.POSITIVE_INFINITY; // set again when the write lands
      schedulePut(t);
      if (loadTags) {
        track(
          readTags(t.agentId).then(
            (tags) => {
              t.tags = tags;
            },
            () => {},
          ),
        );
      }
    }
  }

  function gone(t: Tracked): void {
    const was = t.phase;
    t.phase = 'gone';
    if (byAgent.get(t.agentId) === t) byAgent.delete(t.agentId);
    if (was !== 'superseded') enqueue(t, disconnectOp(t), () => true);
  }

  function sweep(): void {
    const at = now();
    const live = new Set<Tracked>();
    for (const s of o.sessions.all()) {
      let t = bySession.get(s);
      if (!t) {
        const connectedAtMs = s.connectedAt * 1000;
        t = {
          s,
          agentId: s.agentId,
          conn: `${o.gatewayId}#${at.toString(36)}#${(++connSeq).toString(36)}`,
          connectedAtMs,
          phase: 'pending',
          connectWritten: false,
          stamp: at,
          firstSeenMs: at,
          detail: undefined,
          hbSeenAtMs: at,
          sig: '',
          stale: false,
          state: 'running',
          nextRefreshAtMs: Number.POSITIVE_INFINITY,
          queuedPut: false,
          busy: 0,
          putInFlight: undefined,
          chain: Promise.resolve(),
          tags: [],
        };
        bySession.set(s, t);
        const previous = byAgent.get(s.agentId);
        byAgent.set(s.agentId, t);
        if (previous && previous !== t) {
          // Replaced on this gateway (newest wins): the old session's writes stop here.
          bySession.delete(previous.s);
          previous.phase = 'superseded';
        }
        const tracked = t;
        enqueue(t, connectOp(t), () => tracked.phase === 'pending');
        const d = s.detail;
        if (d !== undefined) {
          t.detail = d;
          t.state = d.state === 'abnormal' ? 'abnormal' : 'running';
        }
      }
      live.add(t);
      if (t.phase === 'connected') observe(t, at);
    }
    for (const [s, t] of bySession) {
      if (live.has(t)) continue;
      bySession.delete(s);
      gone(t);
    }
    stats.tracked = bySession.size;
    stats.queuedPuts = putQueue.length;
  }

  function aggregate(): GatewayAggregate {
    const a: GatewayAggregate = {
      gatewayId: o.gatewayId,
      updatedAtMs: now(),
      connected: 0,
      online: 0,
      running: 0,
      abnormal: 0,
      stale: 0,
      byVersion: {},
      byPlatform: {},
      byTag: {},
    };
    if (o.controlAddr) a.controlAddr = o.controlAddr;
    for (const t of byAgent.values()) {
      if (t.phase !== 'connected' && t.phase !== 'pending') continue;
      a.connected++;
      if (t.stale) {
        a.stale++;
        continue;
      }
      a.online++;
      if (t.state === 'abnormal') a.abnormal++;
      else a.running++;
      const v = mapKey(t.s.header.version);
      a.byVersion[v] = (a.byVersion[v] ?? 0) + 1;
      const p = mapKey(str(t.detail?.platform));
      a.byPlatform[p] = (a.byPlatform[p] ?? 0) + 1;
      for (const tag of t.tags) a.byTag[mapKey(tag)] = (a.byTag[mapKey(tag)] ?? 0) + 1;
    }
    return a;
  }

  /** The largest entries of a count map: keeps the aggregate item far below DynamoDB's 400 KB. */
  function top(m: Record<string, number>): Record<string, number> {
    const entries = Object.entries(m);
    if (entries.length <= MAX_AGGREGATE_KEYS) return m;
    return Object.fromEntries(entries.sort((x, y) => y[1] - x[1]).slice(0, MAX_AGGREGATE_KEYS));
  }

  async function publishAggregate(): Promise<GatewayAggregate> {
    const a = aggregate();
    a.byVersion = top(a.byVersion);
    a.byPlatform = top(a.byPlatform);
    a.byTag = top(a.byTag);
    const load = await o.load?.().catch(() => undefined);
    if (load) a.load = load;
    await doc.send(
      new PutCommand({ TableName: configs, Item: { scope: FLEET_SCOPE.gateway, name: o.gatewayId, ...a } }),
    );
    count('aggregate');
    await refreshLimit();
    return a;
  }

  async function refreshLimit(): Promise<number | undefined> {
    const r = await doc.send(
      new GetCommand({ TableName: configs, Key: { scope: FLEET_SCOPE.limit, name: o.gatewayId } }),
    );
    limit = typeof r.Item?.limit === 'number' ? r.Item.limit : undefined;
    limitExpiresAtMs = typeof r.Item?.expiresAtMs === 'number' ? r.Item.expiresAtMs : undefined;
    return currentLimit();
  }

  function currentLimit(): number | undefined {
    if (limitExpiresAtMs !== undefined && now() >= limitExpiresAtMs) return undefined;
    return limit;
  }

  async function settle(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      await flush();
      if (pending.size === 0 && putQueue.length === 0) return;
      await Promise.allSettled([...pending]);
      if (putQueue.length > 0 && putQueue.every((t) => t.busy > 0))
        await new Promise((r) => setTimeout(r, 5));
    }
  }

  return {
    start() {
      if (timers.length > 0 || closed) return;
      const every = (ms: number, fn: () => unknown) => {
        const timer = setInterval(() => {
          try {
            const r = fn();
            if (r instanceof Promise)
              r.catch((err: unknown) => log.warn({ err }, 'agent status timer failed'));
          } catch (err) {
            log.warn({ err }, 'agent status timer failed');
          }
        }, ms);
        timer.unref();
        timers.push(timer);
      };
      every(sweepMs, sweep);
      every(flushMs, () => track(flush()));
      every(aggregateMs, () => track(publishAggregate()));
      if (limitMs < aggregateMs) every(limitMs, () => track(refreshLimit()));
      if (loadTags) {
        let polling = false;
        const pollTags = () => {
          if (polling) return;
          polling = true;
          track(tagWatch.poll(() => byAgent.values()))
            .catch((err: unknown) => log.warn({ err }, 'tag refresh failed; tags in records may lag'))
            .finally(() => {
              polling = false;
            });
        };
        pollTags();
        every(tagsMs, pollTags);
      }
      track(publishAggregate()).catch((err: unknown) => log.warn({ err }, 'first aggregate failed'));
    },
    sweep,
    settle,
    publishAggregate,
    aggregate,
    tagsOf(agentId) {
      return byAgent.get(agentId)?.tags.join(',') ?? '';
    },
    desiredLimit: currentLimit,
    refreshLimit,
    stats() {
      return { ...stats, writes: { ...stats.writes }, queuedPuts: putQueue.length, tracked: bySession.size };
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearInterval(t);
      timers = [];
      for (const [s, t] of bySession) {
        bySession.delete(s);
        gone(t);
      }
      // Bounded: with the store down, retries would otherwise hold the shutdown for ~30 s.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        settle(),
        new Promise((r) => {
          timer = setTimeout(r, closeTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      abandon = true;
      await doc
        .send(
          new DeleteCommand({ TableName: configs, Key: { scope: FLEET_SCOPE.gateway, name: o.gatewayId } }),
        )
        .catch((err: unknown) => log.warn({ err }, 'could not remove the gateway aggregate'));
    },
  };
}
