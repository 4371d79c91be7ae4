/**
 * Elkeid's filter JSON (docs/elkeid-protocol.md §4.3, `biz/common/filter.go`), parsed and evaluated in
 * process over agent documents:
 *   {"filter":[{"key":"last_heartbeat_time","rules":[{"operator":"$gt","value":1614255379}],
 *     "condition":"$and"}],"condition":"$and"}
 * Operators `$eq $gt $gte $in $lt $lte $ne $nin $regex $time`; conditions `$and $or $nor`.
 * MongoDB's semantics where a document field is an array (tags, IPs): a rule matches when any
 * element matches, and `$ne`/`$nin` when none does. Keys may be dotted paths. `$regex` runs on
 * the linear-time engine of linear-regex.ts (never JavaScript's backtracking RegExp: any viewer
 * sends these, and they run in this process), and each parsed filter, i.e. each request, has a
 * budget of regex steps: past it the request is refused as too expensive, the process stays free.
 */
import {
  compileLinearRegex,
  type LinearRegex,
  type RegexBudget,
  RegexBudgetError,
  RegexError,
} from './linear-regex.js';

export type Operator = '$eq' | '$gt' | '$gte' | '$in' | '$lt' | '$lte' | '$ne' | '$nin' | '$regex' | '$time';
export type Condition = '$and' | '$or' | '$nor';

const OPERATORS = new Set<string>([
  '$eq',
  '$gt',
  '$gte',
  '$in',
  '$lt',
  '$lte',
  '$ne',
  '$nin',
  '$regex',
  '$time',
]);
const CONDITIONS = new Set<string>(['$and', '$or', '$nor']);
const MAX_ELEMENTS = 64;
const MAX_RULES = 64;
const MAX_IN = 5000;
const MAX_REGEX = 128;
/**
 * Regex steps one request may spend (one step = one NFA state at one input position, ~50-100 ns).
 * About a second or two of CPU at most, spread over the scan (agents.ts yields the event loop
 * every few ms); an ordinary pattern over 100 000 agents' ids needs a few million.
 */
export const REGEX_STEPS_PER_REQUEST = 20_000_000;

interface Rule {
  operator: Operator;
  value: unknown;
  regex?: LinearRegex;
  range?: { start: number; end: number };
}

interface Element {
  key: string;
  path: string[];
  rules: Rule[];
  condition: Condition;
}

export interface Filter {
  elements: Element[];
  condition: Condition;
  /** Keys the filter reads (to know whether tags must be loaded). */
  keys: Set<string>;
  /** What is left of this filter's (this request's) regex work; matches() spends it. */
  budget: RegexBudget;
}

export class FilterError extends Error {}

function condition(v: unknown, where: string): Condition {
  if (v === undefined || v === null || v === '') return '$and';
  if (typeof v !== 'string' || !CONDITIONS.has(v))
    throw new FilterError(`${where}: condition must be $and, $or or $nor`);
  return v as Condition;
}

/** `YYYY-MM-DD HH:MM` in the manager's local time zone (Elkeid's `$time`), to unix seconds. */
function localTime(v: unknown, where: string): number {
  if (typeof v !== 'string') throw new FilterError(`${where} must be "YYYY-MM-DD HH:MM"`);
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$/.exec(v.trim());
  if (!m) throw new FilterError(`${where} must be "YYYY-MM-DD HH:MM"`);
  const d = new Date(
    Number(m[1]),
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6] ?? 0),
  );
  return Math.floor(d.getTime() / 1000);
}

/** A pattern of the linear-time engine's language (short; no back-references or lookaround). */
function safeRegex(v: unknown, where: string): LinearRegex {
  if (typeof v !== 'string') throw new FilterError(`${where}: $regex value must be a string`);
  if (v.length > MAX_REGEX) throw new FilterError(`${where}: $regex longer than ${MAX_REGEX} characters`);
  try {
    return compileLinearRegex(v);
  } catch (err) {
    if (err instanceof RegexError) throw new FilterError(`${where}: invalid $regex: ${err.message}`);
    throw err;
  }
}

export function parseFilter(input: unknown): Filter {
  if (input === undefined || input === null)
    return { elements: [], condition: '$and', keys: new Set(), budget: newBudget() };
  if (typeof input !== 'object' || Array.isArray(input))
    throw new FilterError('the filter must be an object');
  const o = input as Record<string, unknown>;
  const list = o.filter ?? [];
  if (!Array.isArray(list)) throw new FilterError('filter.filter must be an array');
  if (list.length > MAX_ELEMENTS) throw new FilterError(`at most ${MAX_ELEMENTS} filter elements`);
  const keys = new Set<string>();
  const elements = list.map((raw, i): Element => {
    const where = `filter[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw new FilterError(`${where} must be an object`);
    const e = raw as Record<string, unknown>;
    if (typeof e.key !== 'string' || e.key === '' || e.key.length > 128)
      throw new FilterError(`${where}.key must be a field name`);
    const rulesRaw = e.rules ?? [];
    if (!Array.isArray(rulesRaw) || rulesRaw.length > MAX_RULES)
      throw new FilterError(`${where}.rules must be an array`);
    const rules = rulesRaw.map((r, j): Rule => {
      const rw = `${where}.rules[${j}]`;
      if (typeof r !== 'object' || r === null) throw new FilterError(`${rw} must be an object`);
      const { operator, value } = r as { operator?: unknown; value?: unknown };
      if (typeof operator !== 'string' || !OPERATORS.has(operator)) {
        throw new FilterError(`${rw}.operator must be one of ${[...OPERATORS].join(' ')}`);
      }
      const rule: Rule = { operator: operator as Operator, value };
      if (operator === '$in' || operator === '$nin') {
        if (!Array.isArray(value) || value.length > MAX_IN)
          throw new FilterError(`${rw}.value must be an array (≤ ${MAX_IN})`);
      } else if (operator === '$regex') {
        rule.regex = safeRegex(value, rw);
      } else if (operator === '$time') {
        if (typeof value !== 'object' || value === null)
          throw new FilterError(`${rw}.value must be {"start","end"}`);
        const t = value as { start?: unknown; end?: unknown };
        rule.range = {
          start:
            t.start === undefined || t.start === ''
              ? Number.NEGATIVE_INFINITY
              : localTime(t.start, `${rw}.value.start`),
          end:
            t.end === undefined || t.end === ''
              ? Number.POSITIVE_INFINITY
              : localTime(t.end, `${rw}.value.end`),
        };
      }
      return rule;
    });
    keys.add(e.key.split('.')[0]!);
    return {
      key: e.key,
      path: e.key.split('.'),
      rules,
      condition: condition(e.condition, `${where}.condition`),
    };
  });
  return { elements, condition: condition(o.condition, 'filter.condition'), keys, budget: newBudget() };
}

function newBudget(): RegexBudget {
  return { steps: REGEX_STEPS_PER_REQUEST };
}

/** Values at a dotted path, arrays flattened along the way (MongoDB's traversal). */
function valuesAt(doc: unknown, path: readonly string[]): { found: boolean; values: unknown[] } {
  let current: unknown[] = [doc];
  for (const part of path) {
    const next: unknown[] = [];
    for (const v of current) {
      const items = Array.isArray(v) ? v : [v];
      for (const item of items) {
        if (item !== null && typeof item === 'object' && !Array.isArray(item) && Object.hasOwn(item, part)) {
          next.push((item as Record<string, unknown>)[part]);
        }
      }
    }
    current = next;
  }
  if (current.length === 0) return { found: false, values: [] };
  // A terminal array is matched element-wise, and as a whole for $eq of arrays.
  const flat: unknown[] = [];
  for (const v of current) {
    if (Array.isArray(v)) flat.push(...v, v);
    else flat.push(v);
  }
  return { found: true, values: flat };
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  return false;
}

function compare(a: unknown, b: unknown): number | undefined {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  return undefined;
}

function ruleMatches(rule: Rule, found: boolean, values: unknown[], budget: RegexBudget): boolean {
  const any = (f: (v: unknown) => boolean) => values.some(f);
  switch (rule.operator) {
    case '$eq':
      return rule.value === null ? !found || any((v) => v === null) : any((v) => equal(v, rule.value));
    case '$ne':
      return rule.value === null ? found && !any((v) => v === null) : !any((v) => equal(v, rule.value));
    case '$in':
      return (rule.value as unknown[]).some((x) => (x === null ? !found : any((v) => equal(v, x))));
    case '$nin':
      return !(rule.value as unknown[]).some((x) => (x === null ? !found : any((v) => equal(v, x))));
    case '$gt':
      return any((v) => (compare(v, rule.value) ?? 0) > 0 && compare(v, rule.value) !== undefined);
    case '$gte':
      return any((v) => compare(v, rule.value) !== undefined && compare(v, rule.value)! >= 0);
    case '$lt':
      return any((v) => compare(v, rule.value) !== undefined && compare(v, rule.value)! < 0);
    case '$lte':
      return any((v) => compare(v, rule.value) !== undefined && compare(v, rule.value)! <= 0);
    case '$regex':
      return any((v) => typeof v === 'string' && rule.regex!.test(v, budget));
    case '$time':
      return any((v) => typeof v === 'number' && v >= rule.range!.start && v <= rule.range!.end);
  }
}

function combine(cond: Condition, results: boolean[]): boolean {
  if (results.length === 0) return true;
  if (cond === '$and') return results.every(Boolean);
  if (cond === '$or') return results.some(Boolean);
  return !results.some(Boolean);
}

/** Throws FilterError once the filter's regex budget is spent (the request is refused, 400). */
export function matches(filter: Filter, doc: Record<string, unknown>): boolean {
  try {
    const results = filter.elements.map((e) => {
      const { found, values } = valuesAt(doc, e.path);
      return combine(
        e.condition,
        e.rules.map((r) => ruleMatches(r, found, values, filter.budget)),
      );
    });
    return combine(filter.condition, results);
  } catch (err) {
    if (err instanceof RegexBudgetError) {
      throw new FilterError(`$regex refused as too expensive (${err.message}); narrow the filter`);
    }
    throw err;
  }
}
