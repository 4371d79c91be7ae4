/**
 * The Elkeid Manager's response envelope (docs/elkeid-protocol.md §4.3): HTTP 200
 * `{"code","msg","data"}` with the Manager's codes (which differ from the AgentCenter's 0–3), and
 * its paged list shape `ModelPage`. Also the plain JSON shape of our own `/api/fleet` API.
 */
import { type HttpResponse, json } from '../platform/http/types.js';

export const MgCode = {
  Success: 0,
  AuthFailed: 1,
  DuplicateField: 2,
  DbOperateError: 3,
  ParamInvalid: 5,
  DbNoRowAffected: 6,
  TemporarilyUnavailable: 7,
  UnknownError: 10,
  Timeout: 11,
  FieldNull: 14,
  ExceedLimit: 15,
} as const;
export type MgCodeValue = (typeof MgCode)[keyof typeof MgCode];

const MESSAGES: Record<number, string> = {
  0: 'success',
  1: 'auth failed',
  2: 'duplicate field',
  3: 'db operate error',
  5: 'param invalid',
  6: 'db no row affected',
  7: 'temporarily unavailable',
  10: 'unknown error',
  11: 'timeout',
  14: 'field null',
  15: 'exceed limit',
};

export function mgOk(data: unknown, headers?: Record<string, string>): HttpResponse {
  return json(200, { code: 0, msg: 'success', data: data === undefined ? null : data }, headers);
}

export function mgFail(
  code: MgCodeValue,
  data?: unknown,
  opts: { status?: number; msg?: string; headers?: Record<string, string> } = {},
): HttpResponse {
  return json(
    opts.status ?? 200,
    { code, msg: opts.msg ?? MESSAGES[code] ?? 'error', data: data === undefined ? null : data },
    opts.headers,
  );
}

/** Elkeid's paging: `page` default 1, `page_size` default 100, at most 5000. */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 5000;

export interface PageRequest {
  page: number;
  pageSize: number;
  orderKey?: string;
  orderValue?: 1 | -1;
}

export function parsePage(q: URLSearchParams): PageRequest {
  const int = (raw: string | null, def: number) => {
    if (raw === null || raw.trim() === '') return def;
    const n = Number(raw);
    return Number.isInteger(n) ? n : def;
  };
  const page = Math.max(1, int(q.get('page'), 1));
  let pageSize = int(q.get('page_size'), DEFAULT_PAGE_SIZE);
  if (pageSize < 1) pageSize = DEFAULT_PAGE_SIZE;
  pageSize = Math.min(pageSize, MAX_PAGE_SIZE);
  const out: PageRequest = { page, pageSize };
  const orderKey = q.get('order_key');
  if (orderKey) {
    out.orderKey = orderKey.slice(0, 128);
    out.orderValue = q.get('order_value') === '-1' ? -1 : 1;
  }
  return out;
}

export interface ModelPage<T> {
  total: number;
  count: number;
  pages: number;
  page: number;
  page_size: number;
  has_prev: boolean;
  has_next: boolean;
  items: T[];
}

export function modelPage<T>(items: T[], total: number, req: PageRequest): ModelPage<T> {
  const pages = Math.ceil(total / req.pageSize);
  return {
    total,
    count: items.length,
    pages,
    page: req.page,
    page_size: req.pageSize,
    has_prev: req.page > 1,
    has_next: req.page < pages,
    items,
  };
}

/** Our own API: the resource itself on success, `{"error","message"}` with an HTTP status otherwise. */
export function apiOk(value: unknown, status = 200): HttpResponse {
  return json(status, value);
}

export function apiError(
  status: number,
  error: string,
  message: string,
  headers?: Record<string, string>,
): HttpResponse {
  return json(status, { error, message }, headers);
}
