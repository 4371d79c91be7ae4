/**
 * Agents' connection history (`connections` table): one item per connect or disconnect, written
 * by the gateway that saw it (its status writer calls `record`; items are batched and written
 * every `flushMs`), read by the manager for one agent, newest first. Bounded four ways: the
 * reader asks for the newest `limit`; items expire after `retentionDays` (TTL, and filtered on
 * read); a gateway records at most `perAgentPerWindow` events per agent per window (a flapping
 * agent's further events are skipped, counted and logged); and a writer keeps at most `maxQueued`
 * unwritten events (older ones dropped, counted, logged) so a store outage cannot grow its memory.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../../platform/obs/logger.js';
import { batchWrite, type WriteRequest } from '../../platform/store/batch-write.js';
import { tableName } from '../../platform/store/schema.js';
import type { ManagerStore } from '../store.js';

export interface ConnectionEvent {
  agentId: string;
  kind: 'connect' | 'disconnect';
  /** The gateway's identity (`host:port` of its agent port). */
  gateway: string;
  atMs: number;
  /** The agent's `ip:port` as the gateway saw it. */
  peer: string;
}

export interface ConnectionRecorder {
  record(e: ConnectionEvent): void;
  /** Writes what is queued now. */
  flush(): Promise<void>;
  /** Events dropped because the queue was full (store down). */
  readonly dropped: number;
  /** Events skipped because their agent exceeded its per-window count (flapping). */
  readonly skipped: number;
  start(): void;
  /** Stops the timer and writes what is queued. */
  close(): Promise<void>;
}

export interface ConnectionRecorderOptions {
  client: DynamoDBClient;
  tablePrefix: string;
  logger: Logger;
  retentionDays?: number;
  flushMs?: number;
  maxQueued?: number;
  /** Events recorded per agent per window (default 20 per 10 minutes); more are skipped and counted. */
  perAgentPerWindow?: number;
  windowMs?: number;
  now?: () => number;
  /** Where `fleetgate_connection_events_total{result}` is registered (written, skipped, dropped). */
  registry?: Registry;
}

/** Log lines about the same trouble at most this often. */
const WARN_EVERY_MS = 60_000;

export const CONNECTION_RETENTION_DAYS = 30;

function toItem(e: ConnectionEvent, retentionS: number): Record<string, unknown> {
  const iso = new Date(e.atMs).toISOString();
  return {
    agentId: e.agentId,
    atId: `${iso}#${e.kind}#${e.gateway}`,
    kind: e.kind,
    gateway: e.gateway,
    atMs: e.atMs,
    peer: e.peer,
    expiresAt: Math.floor(e.atMs / 1000) + retentionS,
  };
}

export function createConnectionRecorder(o: ConnectionRecorderOptions): ConnectionRecorder {
  const doc = DynamoDBDocumentClient.from(o.client);
  const table = tableName(o.tablePrefix, 'connections');
  const retentionS = (o.retentionDays ?? CONNECTION_RETENTION_DAYS) * 86_400;
  const maxQueued = o.maxQueued ?? 50_000;
  const log = o.logger.child({ component: 'connection-history' });
  const perAgentMax = o.perAgentPerWindow ?? 20;
  const windowMs = o.windowMs ?? 600_000;
  const now = o.now ?? Date.now;
  // Events recorded per agent in the current window: a flapping agent cannot fill the table.
  let perAgent = new Map<string, number>();
  let windowStart = now();
  let queue: WriteRequest[] = [];
  let dropped = 0;
  let flapping = 0;
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();
  const events = o.registry
    ? new Counter({
        name: 'fleetgate_connection_events_total',
        help: "agents' connects and disconnects for the connection history, by result (written, skipped: the agent reconnects too often, dropped: the queue was full while the store failed)",
        labelNames: ['result'],
        registers: [o.registry],
      })
    : undefined;
  const lastWarn = new Map<string, number>();
  function warn(key: string, fields: Record<string, unknown>, message: string): void {
    const at = now();
    if (at - (lastWarn.get(key) ?? Number.NEGATIVE_INFINITY) < WARN_EVERY_MS) return;
    lastWarn.set(key, at);
    log.warn(fields, message);
  }

  /** Puts `requests` back in front of the queue, dropping (and counting) the oldest beyond the bound. */
  function requeue(requests: WriteRequest[]): void {
    queue = [...requests, ...queue];
    const over = queue.length - maxQueued;
    if (over <= 0) return;
    queue = queue.slice(over);
    dropped += over;
    events?.inc({ result: 'dropped' }, over);
    warn('full', { dropped }, 'connection history queue full: oldest events dropped');
  }

  async function writeQueued(): Promise<void> {
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    try {
      const left = await batchWrite(doc, table, batch, { parallel: 2 });
      events?.inc({ result: 'written' }, batch.length - left.length);
      if (left.length > 0) requeue(left);
    } catch (err) {
      requeue(batch);
      warn('write', { err, queued: queue.length }, 'connection history write failed; retried');
    }
  }

  return {
    record(e) {
      if (now() - windowStart >= windowMs) {
        perAgent = new Map();
        windowStart = now();
      }
      const seen = perAgent.get(e.agentId) ?? 0;
      perAgent.set(e.agentId, seen + 1);
      if (seen >= perAgentMax) {
        flapping++;
        events?.inc({ result: 'skipped' });
        warn(
          'flapping',
          { agentId: e.agentId, skipped: flapping },
          'agent reconnects too often: connection events not recorded',
        );
        return;
      }
      queue.push({ PutRequest: { Item: toItem(e, retentionS) } });
      if (queue.length > maxQueued) requeue([]);
    },
    flush() {
      writing = writing.then(writeQueued);
      return writing;
    },
    get dropped() {
      return dropped;
    },
    get skipped() {
      return flapping;
    },
    start() {
      timer ??= setInterval(() => void this.flush(), o.flushMs ?? 1000);
      timer.unref();
    },
    async close() {
      clearInterval(timer);
      timer = undefined;
      await this.flush();
    },
  };
}

export interface ConnectionView {
  kind: 'connect' | 'disconnect';
  gateway: string;
  /** Unix milliseconds. */
  at: number;
  peer: string;
}

function parseConnectionItem(raw: Record<string, unknown>, nowS: number): ConnectionView | undefined {
  if (typeof raw.expiresAt === 'number' && raw.expiresAt < nowS) return undefined;
  if (raw.kind !== 'connect' && raw.kind !== 'disconnect') return undefined;
  if (typeof raw.gateway !== 'string' || typeof raw.atMs !== 'number') return undefined;
  return {
    kind: raw.kind,
    gateway: raw.gateway,
    at: raw.atMs,
    peer: typeof raw.peer === 'string' ? raw.peer : '',
  };
}

/** The newest `limit` connects and disconnects of one agent, newest first. */
export async function connectionHistoryOf(
  store: ManagerStore,
  agentId: string,
  limit: number,
  nowMs: number,
): Promise<ConnectionView[]> {
  const r = await store.doc.send(
    new QueryCommand({
      TableName: tableName(store.prefix, 'connections'),
      KeyConditionExpression: '#a = :a',
      ExpressionAttributeNames: { '#a': 'agentId' },
      ExpressionAttributeValues: { ':a': agentId },
      ScanIndexForward: false,
      Limit: limit,
    }),
  );
  const nowS = Math.floor(nowMs / 1000);
  return (r.Items ?? [])
    .map((i) => parseConnectionItem(i, nowS))
    .filter((v): v is ConnectionView => v !== undefined);
}
