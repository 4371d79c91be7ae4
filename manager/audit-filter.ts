/**
 * Server-side filters of the audit log (`GET /api/fleet/audit`): by actor (exact), action (a part
 * of the route label, e.g. `gateways`), target (a part of the target, or one agent ID among the
 * entry's agents) and result (`ok`: status < 400, `failed`: ≥ 400). Applied by DynamoDB as a
 * FilterExpression on each day's Query (audit.ts), so only matching entries leave the store.
 */
import { badRequest } from './router.js';

export interface AuditFilter {
  actor?: string;
  action?: string;
  target?: string;
  result?: 'ok' | 'failed';
}

export interface AuditFilterExpression {
  FilterExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues: Record<string, unknown>;
}

const MAX_FILTER_CHARS = 256;

/** The filter of a request's query string; unknown `result` values and overlong text are refused. */
export function auditFilterOf(query: URLSearchParams): AuditFilter {
  const f: AuditFilter = {};
  for (const key of ['actor', 'action', 'target'] as const) {
    const v = query.get(key)?.trim();
    if (!v) continue;
    if (v.length > MAX_FILTER_CHARS) throw badRequest(`${key} is longer than ${MAX_FILTER_CHARS} characters`);
    f[key] = v;
  }
  const result = query.get('result');
  if (result) {
    if (result !== 'ok' && result !== 'failed') throw badRequest('result must be ok or failed');
    f.result = result;
  }
  return f;
}

/** The DynamoDB filter for `f`, or undefined when it filters nothing. */
export function auditFilterExpression(f: AuditFilter): AuditFilterExpression | undefined {
  const parts: string[] = [];
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  if (f.actor !== undefined) {
    parts.push('#fActor = :fActor');
    names['#fActor'] = 'actor';
    values[':fActor'] = f.actor;
  }
  if (f.action !== undefined) {
    parts.push('contains(#fAction, :fAction)');
    names['#fAction'] = 'action';
    values[':fAction'] = f.action;
  }
  if (f.target !== undefined) {
    parts.push('(contains(#fTarget, :fTarget) OR contains(#fAgents, :fTarget))');
    names['#fTarget'] = 'target';
    names['#fAgents'] = 'agents';
    values[':fTarget'] = f.target;
  }
  if (f.result !== undefined) {
    parts.push(f.result === 'ok' ? '#fStatus < :fStatus' : '#fStatus >= :fStatus');
    names['#fStatus'] = 'status';
    values[':fStatus'] = 400;
  }
  if (parts.length === 0) return undefined;
  return {
    FilterExpression: parts.join(' AND '),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}
