/**
 * The audit log (`audit` table): one item per state-changing API call — who (principal and
 * role), when, what (route, a summary of the parameters and the SHA-256 of the whole body),
 * which agents (up to 100 IDs and the count), from where, and the outcome. Written before the
 * response leaves (router.ts). One partition per UTC day, sort key `<ISO time>#<random>`, so a
 * day reads in time order with one Query; kept `retentionDays` (TTL, filtered on read too).
 */
import { createHash, randomBytes } from 'node:crypto';
import { ttlExpired } from '../platform/store/schema.js';
import { type AuditFilter, auditFilterExpression } from './audit-filter.js';
import { type AuditEntry, putAuditEntry, queryAuditDay } from './store/audit.js';
import type { StoreKey } from './store/pages.js';
import type { ManagerStore } from './store.js';

export type { AuditEntry } from './store/audit.js';

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

export interface AuditLog {
  write(input: AuditInput): Promise<AuditEntry>;
  /** Entries from day `from` to day `to` (inclusive, `YYYY-MM-DD`), oldest first, that match `filter`. */
  list(opts: { from: string; to: string; limit: number; cursor?: string; filter?: AuditFilter }): Promise<{
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

/** The entry an API call (or a `fleetgate users` change) leaves: bounded, the body only hashed. */
function auditEntry(input: AuditInput, at: number): AuditEntry {
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
  return entry;
}

/** Store pages one list call reads at most; items read per page when filtering. */
const MAX_PAGES_PER_CALL = 25;
const FILTERED_PAGE = 500;

/** Where a listing continues: the last entry returned, as an opaque base64url token. */
function cursorAfter(last: AuditEntry): string {
  return Buffer.from(JSON.stringify({ day: last.day, tsId: last.tsId })).toString('base64url');
}

/** Where a bounded listing stopped: at `start` within `day`, or at the start of `day`. */
function cursorAt(day: string, start: StoreKey | undefined): string {
  const tsId = start?.tsId;
  const c = typeof tsId === 'string' ? { day, tsId } : { day };
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

/** The day and key a cursor continues from; throws `bad cursor` when it is not one of ours. */
function parseCursor(cursor: string): { day: string; start: StoreKey | undefined } {
  const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as {
    day?: unknown;
    tsId?: unknown;
  };
  if (typeof c.day !== 'string' || !DAY_PATTERN.test(c.day)) throw new Error('bad cursor');
  if (c.tsId !== undefined && typeof c.tsId !== 'string') throw new Error('bad cursor');
  return { day: c.day, start: c.tsId === undefined ? undefined : { day: c.day, tsId: c.tsId } };
}

export function createAuditLog(
  store: ManagerStore,
  opts: { retentionDays?: number; now?: () => number } = {},
): AuditLog {
  const now = opts.now ?? Date.now;
  const retentionS = (opts.retentionDays ?? 400) * 86_400;
  return {
    async write(input) {
      const at = now();
      const entry = auditEntry(input, at);
      await putAuditEntry(store, entry, Math.floor(at / 1000) + retentionS);
      return entry;
    },
    async list({ from, to, limit, cursor, filter }) {
      const where = filter ? auditFilterExpression(filter) : undefined;
      let day = from;
      let start: StoreKey | undefined;
      if (cursor) ({ day, start } = parseCursor(cursor));
      const items: AuditEntry[] = [];
      const nowS = Math.floor(now() / 1000);
      let pages = 0;
      while (day <= to) {
        // A filter that matches little may read many pages: bound one call's reads, go on by cursor.
        if (pages++ >= MAX_PAGES_PER_CALL) return { items, cursor: cursorAt(day, start) };
        const page = await queryAuditDay(
          store,
          day,
          where ? FILTERED_PAGE : limit - items.length,
          start,
          where,
        );
        for (const [i, { entry, expiresAt }] of page.items.entries()) {
          if (ttlExpired(expiresAt, nowS * 1000)) continue;
          items.push(entry);
          if (items.length < limit) continue;
          const more = i < page.items.length - 1 || page.next !== undefined || nextDay(day) <= to;
          return more ? { items, cursor: cursorAfter(entry) } : { items };
        }
        if (page.next) {
          start = page.next;
          continue;
        }
        start = undefined;
        day = nextDay(day);
      }
      return { items };
    },
  };
}
