/**
 * The ServiceDiscovery HTTP API, Elkeid-compatible (docs/elkeid-protocol.md §3.3), on the shared
 * handler layer: the same handler runs on uWS (service.ts), on Lambda (lambda.ts) and on
 * node:http (the benchmark's baseline).
 *
 * Byte compatibility with Elkeid's gin answers: no `code` field except on auth failures, keys in
 * Go's order (gin.H is a map, so its keys are sorted: `data` before `msg`), `<>&` escaped as Go
 * does, `application/json; charset=utf-8`. Differences, all invisible to Elkeid clients:
 * `detail` is ordered least-loaded first, honours `count`, leaves out expired and full instances
 * and adds fields to each element; register refuses an empty name/ip or a port outside 1-65535
 * (Elkeid stores them); a store failure on register answers 503 so the registrant retries.
 */
import type { Verifier } from '../platform/http/aksk.js';
import { createVerifier } from '../platform/http/aksk.js';
import { healthRoutes } from '../platform/http/health-routes.js';
import { createRouter } from '../platform/http/router.js';
import type { Handler, HttpRequest, HttpResponse, Route } from '../platform/http/types.js';
import type { Logger } from '../platform/obs/logger.js';
import {
  type AnswerCaches,
  createAnswerCaches,
  createHeardRegistrants,
  createStoreWatch,
  type HeardRegistrants,
  type StoreWatch,
} from './answer-state.js';
import { goJson, instanceId, pickDetail, sortKeysDeep } from './balance.js';
import { type CacheTiming, DEFAULT_CACHE_TIMING, type Read } from './cache.js';
import type { DiscoveryMetrics } from './metrics.js';
import type { RegisterInput, RegistryStore } from './registry-store.js';

const JSON_TYPE = 'application/json; charset=utf-8';
const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': JSON_TYPE });
/** Header on answers served from the last good read while the store is unavailable: its age in seconds. */
export const STALE_HEADER = 'x-fleetgate-stale';
/** Largest `count` of `/registry/detail` (Elkeid's Fetch limit). */
export const MAX_DETAIL_COUNT = 100;

function raw(status: number, body: string, extraHeaders?: Record<string, string>): HttpResponse {
  return {
    status,
    headers: extraHeaders ? { 'content-type': JSON_TYPE, ...extraHeaders } : JSON_HEADERS,
    body,
  };
}

const OK = () => raw(200, '{"msg":"ok"}');
const POST_DATA_ERROR = () => raw(400, '{"msg":"post data error"}');
const NO_SERVER_NAME = () => raw(400, '{"msg":"no server name"}');
const UNAVAILABLE = () => raw(503, '{"msg":"registry unavailable"}');

/** Elkeid SD's reasons (akskAuth.go) where they differ from the AgentCenter's that the verifier gives. */
export function sdAuthReason(reason: string): string {
  if (reason.startsWith('header missed')) return 'header missed: AccessKey|Signature|TimeStamp';
  if (reason === 'timestamp error') return 'TimeStamp Error';
  if (reason === 'signature error') return 'Signature Error';
  return reason;
}

export function authFailed(reason: string): HttpResponse {
  return raw(403, `{"code":-1,"data":${goJson(sdAuthReason(reason))},"msg":"auth failed"}`);
}

/** `count`: absent, empty, unparsable or < 1 → every instance; above 100 → 100. */
export function parseCount(raw: string | null): number {
  if (raw === null || raw === '') return Number.POSITIVE_INFINITY;
  const n = Number.parseInt(raw, 10);
  if (!Number.isFinite(n) || n < 1) return Number.POSITIVE_INFINITY;
  return Math.min(n, MAX_DETAIL_COUNT);
}

type Body = Record<string, unknown>;

/** Go's encoding/json matches field names case-insensitively; so do we, for Elkeid's own clients. */
function parseObject(body: Buffer): Body | undefined {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  // No prototype: a `__proto__` key stays an ordinary (ignored) field.
  const out: Body = Object.create(null) as Body;
  for (const [k, val] of Object.entries(v)) {
    const lk = k.toLowerCase();
    if (!(lk in out) || k === lk) out[lk] = val;
  }
  return out;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const isNonNegative = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
/** A name or address: no whitespace and no control characters (a NUL would reach /metrics labels). */
const isText = (v: unknown, max: number): v is string =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  typeof v === 'string' && v.length > 0 && v.length <= max && !/[\s\x00-\x1f\x7f]/.test(v);

function parseInstanceKey(b: Body): { name: string; ip: string; port: number } | undefined {
  const { name, ip, port } = b;
  if (!isText(name, 256) || !isText(ip, 256) || !isInt(port) || port < 1 || port > 65535) return undefined;
  return { name, ip, port };
}

function parseRegister(body: Buffer): RegisterInput | undefined {
  const b = parseObject(body);
  if (!b) return undefined;
  const key = parseInstanceKey(b);
  if (!key) return undefined;
  const weight = b.weight ?? 0;
  if (!isInt(weight) || weight < 0) return undefined;
  const input: RegisterInput = { ...key, weight };
  const extra = b.extra;
  if (extra === null) input.extra = null;
  else if (extra !== undefined) {
    if (typeof extra !== 'object' || Array.isArray(extra)) return undefined;
    input.extra = sortKeysDeep(extra) as Record<string, unknown>;
  }
  for (const field of ['limit', 'cpu', 'mem'] as const) {
    const v = b[field];
    if (v === undefined || v === null) continue;
    if (!isNonNegative(v)) return undefined;
    input[field] = v;
  }
  if (b.version !== undefined && b.version !== null) {
    if (typeof b.version !== 'string' || b.version.length > 128) return undefined;
    input.version = b.version;
  }
  return input;
}

export interface DiscoveryRoutesOptions {
  store: RegistryStore;
  metrics: DiscoveryMetrics;
  logger: Logger;
  /** `ip:port` this node answers as in `/endpoint/ping` (Elkeid's Server.Ip:Server.Port). */
  self: string;
  /** Discovery nodes for `/endpoint/*`. Default: just `self` (nodes share the store, not a member list). */
  members?: () => string[];
  cache?: Partial<CacheTiming>;
  /** Most service names with a cached detail answer. Default 1024. */
  maxCachedNames?: number;
  now?: () => number;
  random?: () => number;
}

export interface DiscoveryRoutes {
  routes: Route[];
  /** Forgets every cached answer (tests, benchmarks: the cost of a miss). */
  clearCache(): void;
}

/** What the handlers share: options, clock, and the state of answer-state.ts. */
interface RouteState {
  opts: DiscoveryRoutesOptions;
  now: () => number;
  random: () => number;
  watch: StoreWatch;
  heard: HeardRegistrants;
  caches: AnswerCaches;
}

function answer<T>(
  s: RouteState,
  path: string,
  r: Read<T>,
  body: (value: T, stale: boolean) => string,
): HttpResponse {
  if (!r.ok) {
    s.opts.metrics.unavailable.inc({ path });
    return UNAVAILABLE();
  }
  if (!r.stale) return raw(200, body(r.value, false));
  s.opts.metrics.staleAnswers.inc({ path });
  return raw(200, body(r.value, true), { [STALE_HEADER]: String(Math.ceil(r.ageMs / 1000)) });
}

async function detail(s: RouteState, req: HttpRequest): Promise<HttpResponse> {
  const q = new URLSearchParams(req.query);
  const name = q.get('name');
  if (!name) return NO_SERVER_NAME();
  const count = parseCount(q.get('count'));
  let cache = s.caches.detail(name);
  if (!cache) {
    if ((await s.caches.isKnown(name)) === false) return raw(200, '{"data":[],"msg":"ok"}');
    cache = s.caches.detailOrNew(name);
  }
  const r = cache.peek() ?? (await cache.read());
  return answer(s, '/registry/detail', r, (v, stale) => {
    // A stale answer cannot trust the stored expiry (renewals fail too): what this node heard
    // decides (keepWhenStale).
    const picked = stale
      ? pickDetail(v.prepared, count, undefined, s.random, s.heard.keepWhenStale)
      : pickDetail(v.prepared, count, s.now(), s.random, undefined);
    return `{"data":${picked},"msg":"ok"}`;
  });
}

async function register(s: RouteState, req: HttpRequest): Promise<HttpResponse> {
  const input = parseRegister(req.body);
  if (!input) return POST_DATA_ERROR();
  s.heard.registered(instanceId(input), s.now());
  try {
    const { created } = await s.watch.timed('register', () => s.opts.store.register(input));
    if (created) s.caches.detail(input.name)?.invalidate();
  } catch (err) {
    s.opts.logger.warn({ err, name: input.name, ip: input.ip, port: input.port }, 'register failed');
    return UNAVAILABLE();
  }
  return OK();
}

async function evict(s: RouteState, req: HttpRequest): Promise<HttpResponse> {
  const b = parseObject(req.body);
  const key = b && parseInstanceKey(b);
  if (!key) return POST_DATA_ERROR();
  s.heard.evicted(instanceId(key));
  try {
    await s.watch.timed('evict', () => s.opts.store.evict(key.name, key.ip, key.port));
    s.caches.detail(key.name)?.invalidate();
  } catch (err) {
    s.opts.logger.warn({ err, ...key }, 'evict failed');
    return UNAVAILABLE();
  }
  return OK();
}

/**
 * Elkeid nodes push their registrations to each other; ours share the store, so a sync from an
 * old Elkeid peer is acknowledged and not applied.
 */
function sync(req: HttpRequest): HttpResponse {
  const b = parseObject(req.body);
  if (!b || (b.data !== undefined && b.data !== null && !Array.isArray(b.data))) return POST_DATA_ERROR();
  return OK();
}

async function summary(s: RouteState): Promise<HttpResponse> {
  const r = s.caches.summary.peek() ?? (await s.caches.summary.read());
  return answer(s, '/registry/summary', r, (v) => {
    // Built by hand: a JS object would put integer-like names first, Go sorts every key as text.
    const fields = Object.keys(v)
      .sort()
      .map((k) => `${goJson(k)}:${v[k]}`);
    return `{"data":{${fields.join(',')}},"msg":"ok"}`;
  });
}

async function list(s: RouteState): Promise<HttpResponse> {
  const r = s.caches.list.peek() ?? (await s.caches.list.read());
  return answer(s, '/registry/list', r, (v) => `{"data":${goJson(v)},"msg":"ok"}`);
}

export function discoveryRoutes(opts: DiscoveryRoutesOptions): DiscoveryRoutes {
  const now = opts.now ?? Date.now;
  const watch = createStoreWatch(opts.metrics, opts.logger);
  const s: RouteState = {
    opts,
    now,
    random: opts.random ?? Math.random,
    watch,
    heard: createHeardRegistrants(opts.store.ttlMs, now),
    caches: createAnswerCaches({
      store: opts.store,
      metrics: opts.metrics,
      watch,
      timing: { ...DEFAULT_CACHE_TIMING, ...opts.cache },
      maxNames: opts.maxCachedNames ?? 1024,
      now,
    }),
  };
  const members = opts.members ?? (() => [opts.self]);
  const routes: Route[] = [
    { method: 'POST', path: '/registry/register', auth: 'aksk', handler: (req) => register(s, req) },
    { method: 'POST', path: '/registry/evict', auth: 'aksk', handler: (req) => evict(s, req) },
    { method: 'POST', path: '/registry/sync', auth: 'aksk', handler: sync },
    { method: 'GET', path: '/registry/detail', handler: (req) => detail(s, req) },
    { method: 'GET', path: '/registry/summary', handler: () => summary(s) },
    { method: 'GET', path: '/registry/list', handler: () => list(s) },
    {
      method: 'GET',
      path: '/endpoint/ping',
      handler: () => raw(200, `{"data":${goJson({ host: opts.self, members: members() })},"msg":"ok"}`),
    },
    {
      method: 'GET',
      path: '/endpoint/stat',
      handler: () => raw(200, `{"data":${goJson(members())},"msg":"ok"}`),
    },
  ];
  return { routes, clearCache: () => s.caches.clear() };
}

export interface DiscoveryHandlerOptions extends DiscoveryRoutesOptions {
  /** AK/SK pairs accepted on register/evict/sync. */
  aksk: ReadonlyArray<readonly [string, string]>;
  /** The registry `/metrics` serves (metrics must be registered on it). */
  registry: import('prom-client').Registry;
  /** Replaces the verifier built from `aksk` (tests with a fixed clock). */
  verifier?: Verifier;
}

export interface DiscoveryHandler {
  handler: Handler;
  clearCache(): void;
}

/** The whole discovery API (Elkeid routes + health routes) as one runtime-agnostic handler. */
export function createDiscoveryHandler(opts: DiscoveryHandlerOptions): DiscoveryHandler {
  const { routes, clearCache } = discoveryRoutes(opts);
  const { metrics } = opts;
  // Labelled children cached by route and status: the hot path then does no label hashing.
  const children = new Map<string, { c: { inc(): void }; h: { observe(v: number): void } }>();
  const handler = createRouter([...healthRoutes({ registry: opts.registry, ready: () => true }), ...routes], {
    verifier: opts.verifier ?? createVerifier({ keys: new Map(opts.aksk) }),
    onAuthFailure: (reason, req) => {
      opts.logger.warn({ reason, path: req.path, peer: req.remoteAddress }, 'discovery auth failed');
      return authFailed(reason);
    },
    logger: opts.logger,
    onRequest: (route, status, seconds) => {
      const k = `${status} ${route}`;
      let child = children.get(k);
      if (!child) {
        child = {
          c: metrics.httpApi.labels(route, String(status)),
          h: metrics.httpSeconds.labels(route),
        };
        children.set(k, child);
      }
      child.c.inc();
      child.h.observe(seconds);
    },
  });
  return { handler, clearCache };
}
