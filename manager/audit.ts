/**
 * The audit log (`audit` table): one item per state-changing API call — who (principal and
 * role), when, what (route, a summary of the parameters and the SHA-256 of the whole body),
 * which agents (up to 100 IDs and the count), from where, and the outcome. Written before the
 * response leaves (router.ts). One partition per UTC day, sort key `<ISO time>#<random>`, so a
 * day reads in time order with one Query; kept `retentionDays` (TTL, filtered on read too).
 */
import { createHash, randomBytes } from 'node:crypto';
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { ttlExpired } from '../platform/store/schema.js';
import type { ManagerStore } from './store.js';

export const MAX_AUDIT_AGENTS = 100;
const MAX_DETAIL_CHARS = 4096;

export interface AuditInput {
  actor: string;
  role?: string | undefined;
  action: string;
  sourceIp: string;
  agents?: readonly string[] | undefined;
  /** Count of targeted agents when not all are listed (e.g. a filter or a tag). */
  agentCount?: number | undefined;
  target?: string | undefined;
  detail?: unknown;
  body?: Buffer | undefined;
  status: number;
  code?: number | undefined;
}

export interface AuditEntry {
  day: string;
  tsId: string;
  at: number;
  actor: string;
  role?: string;
  action: string;
  sourceIp: string;
  target?: string;
  agents?: string[];
  agentCount?: number;
  detail?: string;
  bodySha256?: string;
  status: number;
  code?: number;
}

export interface AuditLog {
  write(input: AuditInput): Promise<AuditEntry>;
  /** Entries from day `from` to day `to` (inclusive, `YYYY-MM-DD`), oldest first. */
  list(opts: { from: string; to: string; limit: number; cursor?: string }): Promise<{
    items: AuditEntry[];
    cursor?: string;
  }>;
}

export const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function nextDay(day: string): string {
  return utcDay(Date.parse(`${day}T00:00:00Z`) + 86_400_000);
}

export function createAuditLog(
  store: ManagerStore,
  opts: { retentionDays?: number; now?: () => number } = {},
): AuditLog {
  const now = opts.now ?? Date.now;
  const retentionS = (opts.retentionDays ?? 400) * 86_400;
  const table = store.t.audit;
  return {
    async write(input) {
      const at = now();
      const iso = new Date(at).toISOString();
      const entry: AuditEntry = {
        day: iso.slice(0, 10),
        tsId: `${iso}#${randomBytes(6).toString('hex')}`,
        at,
        actor: input.actor,
        action: input.action,
        sourceIp: input.sourceIp,
        status: input.status,
      };
      if (input.role) entry.role = input.role;
      if (input.target) entry.target = input.target.slice(0, 256);
      if (input.agents && input.agents.length > 0) entry.agents = input.agents.slice(0, MAX_AUDIT_AGENTS);
      const count = input.agentCount ?? input.agents?.length;
      if (count !== undefined) entry.agentCount = count;
      if (input.detail !== undefined) {
        const text = JSON.stringify(input.detail) ?? '';
        entry.detail = text.length > MAX_DETAIL_CHARS ? `${text.slice(0, MAX_DETAIL_CHARS)}…` : text;
      }
      if (input.body && input.body.length > 0) {
        entry.bodySha256 = createHash('sha256').update(input.body).digest('hex');
      }
      if (input.code !== undefined) entry.code = input.code;
      await store.doc.send(
        new PutCommand({
          TableName: table,
          Item: { ...entry, expiresAt: Math.floor(at / 1000) + retentionS },
        }),
      );
      return entry;
    },
    async list({ from, to, limit, cursor }) {
      let day = from;
      let start: Record<string, unknown> | undefined;
      if (cursor) {
        const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as {
          day: string;
          tsId: string;
        };
        if (typeof c.day !== 'string' || !DAY_PATTERN.test(c.day) || typeof c.tsId !== 'string') {
          throw new Error('bad cursor');
        }
        day = c.day;
        start = { day: c.day, tsId: c.tsId };
      }
      const items: AuditEntry[] = [];
      const nowS = Math.floor(now() / 1000);
      let days = 0;
      while (day <= to && items.length < limit && days++ < 400) {
        const page = await store.doc.send(
          new QueryCommand({
            TableName: table,
            KeyConditionExpression: '#d = :d',
            ExpressionAttributeNames: { '#d': 'day' },
            ExpressionAttributeValues: { ':d': day },
            Limit: limit - items.length,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
        for (const raw of page.Items ?? []) {
          const { expiresAt, ...e } = raw as AuditEntry & { expiresAt?: number };
          if (ttlExpired(expiresAt, nowS * 1000)) continue;
          items.push(e);
        }
        if (page.LastEvaluatedKey) {
          start = page.LastEvaluatedKey as Record<string, unknown>;
          if (items.length >= limit) {
            const last = items[items.length - 1]!;
            return {
              items,
              cursor: Buffer.from(JSON.stringify({ day: last.day, tsId: last.tsId })).toString('base64url'),
            };
          }
          continue;
        }
        start = undefined;
        day = nextDay(day);
      }
      if (items.length >= limit && day <= to) {
        const last = items[items.length - 1]!;
        return {
          items,
          cursor: Buffer.from(JSON.stringify({ day: last.day, tsId: last.tsId })).toString('base64url'),
        };
      }
      return { items };
    },
  };
}
