/**
 * The audit log (`audit` table): one item per state-changing API call — who (principal and
 * role), when, what (route, a summary of the parameters and the SHA-256 of the whole body),
 * which agents (up to 100 IDs and the count), from where, and the outcome. Written before the
 * response leaves (router.ts). One partition per UTC day, sort key `<ISO time>#<random>`, so a
 * day reads in time order with one Query; kept `retentionDays` (TTL, filtered on read too).
 */
import { createHash, randomBytes } from 'node:crypto';
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { type AuditFilter, auditFilterExpression } from './audit-filter.js';
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
  /** Entries from day `from` to day `to` (inclusive, `YYYY-MM-DD`), oldest first, that match `filter`. */
  list(opts: { from: string; to: string; limit: number; cursor?: string; filter?: AuditFilter }): Promise<{
    items: AuditEntry[];
    cursor?: string;
  }>;
}

export const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

/** Store pages one list call reads at most; items evaluated per page when filtering. */
const MAX_PAGES_PER_CALL = 25;
const FILTERED_PAGE = 500;

/** Where the next page starts: after entry `tsId` of `day`, or at the start of `day`. */
function encodeCursor(day: string, tsId: unknown): string {
  const c = typeof tsId === 'string' ? { day, tsId } : { day };
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function parseCursor(cursor: string): { day: string; tsId?: string } {
  const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as {
    day?: unknown;
    tsId?: unknown;
  };
  if (typeof c.day !== 'string' || !DAY_PATTERN.test(c.day)) throw new Error('bad cursor');
  if (c.tsId !== undefined && typeof c.tsId !== 'string') throw new Error('bad cursor');
  return c.tsId === undefined ? { day: c.day } : { day: c.day, tsId: c.tsId };
}

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
    async list({ from, to, limit, cursor, filter }) {
      const where = filter ? auditFilterExpression(filter) : undefined;
      let day = from;
      let start: Record<string, unknown> | undefined;
      if (cursor) {
        const c = parseCursor(cursor);
        day = c.day;
        if (c.tsId !== undefined) start = { day: c.day, tsId: c.tsId };
      }
      const items: AuditEntry[] = [];
      const nowS = Math.floor(now() / 1000);
      let pages = 0;
      while (day <= to) {
        // A filter that matches little may read many pages: bound one call's reads, go on by cursor.
        if (pages++ >= MAX_PAGES_PER_CALL) return { items, cursor: encodeCursor(day, start?.tsId) };
        const page = await store.doc.send(
          new QueryCommand({
            TableName: table,
            KeyConditionExpression: '#d = :d',
            ExpressionAttributeNames: { '#d': 'day', ...where?.ExpressionAttributeNames },
            ExpressionAttributeValues: { ':d': day, ...where?.ExpressionAttributeValues },
            ...(where ? { FilterExpression: where.FilterExpression } : {}),
            Limit: where ? FILTERED_PAGE : limit - items.length,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
        const found = page.Items ?? [];
        for (const [i, raw] of found.entries()) {
          const { expiresAt, ...e } = raw as AuditEntry & { expiresAt?: number };
          if (typeof expiresAt === 'number' && expiresAt < nowS) continue;
          items.push(e);
          if (items.length < limit) continue;
          const more = i < found.length - 1 || page.LastEvaluatedKey !== undefined || nextDay(day) <= to;
          return more ? { items, cursor: encodeCursor(e.day, e.tsId) } : { items };
        }
        if (page.LastEvaluatedKey) {
          start = page.LastEvaluatedKey as Record<string, unknown>;
          continue;
        }
        start = undefined;
        day = nextDay(day);
      }
      return { items };
    },
  };
}
