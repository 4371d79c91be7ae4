/**
 * The gateways' writes to the `agents` table (agent-status-writer.ts has when and why). Every
 * single-item write is conditional so that writes of different gateways for one agent never
 * undo each other: a connection lands only if not older than the stored one (`connectedAtMs`),
 * and a disconnect or stale mark only applies to the connection that wrote it (`conn`).
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { batchWrite } from '../../platform/store/batch-write.js';
import { conditional, isConditionFailed } from '../../platform/store/errors.js';
import type { ManagerStore } from './handle.js';

/** `#x` → `x` for each attribute: DynamoDB reserves hundreds of words (online, state, name…). */
function names(...attrs: string[]): Record<string, string> {
  return Object.fromEntries(attrs.map((a) => [`#${a}`, a]));
}

/** What a connection write records. */
export interface ConnectWrite {
  agentId: string;
  gatewayId: string;
  conn: string;
  connectedAtMs: number;
  hostname: string;
  version: string;
  product: string;
  ipv4: string[];
  ipv6: string[];
  /** This write's time; also the agent's firstSeenMs when it is new. */
  at: number;
}

/**
 * Records a connection (newest wins). `superseded` when a newer connection of the agent is
 * already stored; else the agent's firstSeenMs before this write (undefined for a new agent).
 */
export async function recordConnect(
  store: ManagerStore,
  c: ConnectWrite,
): Promise<{ superseded: true } | { superseded: false; previousFirstSeenMs: unknown }> {
  try {
    const r = await store.doc.send(
      new UpdateCommand({
        TableName: store.t.agents,
        Key: { agentId: c.agentId },
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
          ':g': c.gatewayId,
          ':c': c.conn,
          ':t': true,
          ':ca': c.connectedAtMs,
          ':h': c.hostname,
          ':v': c.version,
          ':p': c.product,
          ':i4': c.ipv4,
          ':i6': c.ipv6,
          ':now': c.at,
        },
        ReturnValues: 'UPDATED_OLD',
      }),
    );
    return { superseded: false, previousFirstSeenMs: r.Attributes?.firstSeenMs };
  } catch (err) {
    if (isConditionFailed(err)) return { superseded: true };
    throw err;
  }
}

/** Marks the connection `conn` offline; false when the agent has another connection since. */
export async function recordDisconnect(
  store: ManagerStore,
  d: { agentId: string; conn: string; gatewayId: string; at: number },
): Promise<boolean> {
  return conditional(() =>
    store.doc.send(
      new UpdateCommand({
        TableName: store.t.agents,
        Key: { agentId: d.agentId },
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
        ExpressionAttributeValues: { ':f': false, ':now': d.at, ':g': d.gatewayId, ':c': d.conn },
      }),
    ),
  );
}

/** Marks the connection `conn` silent (no heartbeat); false when the agent has another connection since. */
export async function markStale(
  store: ManagerStore,
  s: { agentId: string; conn: string; at: number },
): Promise<boolean> {
  return conditional(() =>
    store.doc.send(
      new UpdateCommand({
        TableName: store.t.agents,
        Key: { agentId: s.agentId },
        UpdateExpression: 'SET #stale = :t, #writtenAtMs = :now',
        ConditionExpression: '#conn = :c',
        ExpressionAttributeNames: names('stale', 'writtenAtMs', 'conn'),
        ExpressionAttributeValues: { ':t': true, ':now': s.at, ':c': s.conn },
      }),
    ),
  );
}

/**
 * Puts full agent items, 25 per BatchWriteItem, at most five sends each; resolves with the ids
 * of the agents still unprocessed (the caller puts them again later).
 */
export async function putAgentItems(
  store: ManagerStore,
  items: ReadonlyArray<{ agentId: string } & Record<string, unknown>>,
  onSend: (sent: number, unprocessed: number) => void,
): Promise<Set<string>> {
  const left = await batchWrite(
    store.doc,
    store.t.agents,
    items.map((Item) => ({ PutRequest: { Item } })),
    { maxAttempts: 5, baseDelayMs: 50, maxDelayMs: Number.POSITIVE_INFINITY, onSend },
  );
  return new Set(left.map((q) => ('PutRequest' in q ? String(q.PutRequest.Item.agentId) : '')));
}
