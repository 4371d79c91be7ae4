/**
 * What the discovery routes (routes.ts) keep between requests: the store's health as the routes see
 * it (metrics and one log line per change), what this node heard from registrants itself (to
 * judge stale answers), and the cached answers per service name, the name list and the summary.
 */
import type { Logger } from '../platform/obs/logger.js';
import { type PreparedDetail, type PreparedEntry, prepareDetail } from './balance.js';
import { CachedValue, type CacheTiming } from './cache.js';
import type { DiscoveryMetrics } from './metrics.js';
import type { RegistryStore } from './registry-store.js';

export interface StoreWatch {
  /** Counts one store call and logs when the store becomes unavailable or available again. */
  result(op: string, ok: boolean, seconds: number, err?: unknown): void;
  /** Runs a store call, timed and counted as `op`. */
  timed<T>(op: string, fn: () => Promise<T>): Promise<T>;
}

export function createStoreWatch(metrics: DiscoveryMetrics, log: Logger): StoreWatch {
  let storeUp: boolean | undefined;
  const result = (op: string, ok: boolean, seconds: number, err?: unknown) => {
    metrics.storeOps.inc({ op, result: ok ? 'ok' : 'error' });
    metrics.storeSeconds.observe({ op }, seconds);
    metrics.storeUp.set(ok ? 1 : 0);
    if (storeUp === ok) return;
    if (!ok)
      log.error({ err, op }, 'registry store unavailable: serving the last good answers, marked stale');
    else if (storeUp === false) log.info({ op }, 'registry store available again');
    storeUp = ok;
  };
  return {
    result,
    async timed(op, fn) {
      const t0 = performance.now();
      try {
        const v = await fn();
        result(op, true, (performance.now() - t0) / 1000);
        return v;
      } catch (err) {
        result(op, false, (performance.now() - t0) / 1000, err);
        throw err;
      }
    },
  };
}

/**
 * What this node heard from registrants itself, whatever the store made of it: while the store is
 * down (stale answers) a gateway that deregistered, or whose renewals stopped for longer than the
 * TTL, is left out, and one that keeps renewing through this node stays.
 */
export interface HeardRegistrants {
  registered(id: string, at: number): void;
  evicted(id: string): void;
  /** Whether a stale answer keeps this entry. */
  keepWhenStale(entry: PreparedEntry): boolean;
}

export function createHeardRegistrants(ttlMs: number, now: () => number): HeardRegistrants {
  const heard = new Map<string, number>(); // instance id -> last register request
  const evicted = new Set<string>();
  return {
    registered(id, at) {
      evicted.delete(id);
      heard.set(id, at);
      if (heard.size > 100_000) for (const [k, t] of heard) if (t < at - ttlMs) heard.delete(k);
    },
    evicted(id) {
      evicted.add(id);
      heard.delete(id);
    },
    keepWhenStale(e) {
      if (evicted.has(e.id)) return false;
      const t = now();
      return e.expiresAtMs > t || (heard.get(e.id) ?? Number.NEGATIVE_INFINITY) > t - ttlMs;
    },
  };
}

export interface DetailValue {
  prepared: PreparedDetail;
}

export interface AnswerCaches {
  /** The cached detail answer of `name`, when one is held. */
  detail(name: string): CachedValue<DetailValue> | undefined;
  /** The cached detail answer of `name`, created when none is held (the oldest name goes past the bound). */
  detailOrNew(name: string): CachedValue<DetailValue>;
  readonly list: CachedValue<string[]>;
  readonly summary: CachedValue<Record<string, number>>;
  /**
   * Whether `name` has instances, from the store's cached name list (rescanned at most every
   * freshMs for a name it does not know). Keeps requests for made-up names from costing a Query
   * each. Undefined when the store cannot say.
   */
  isKnown(name: string): Promise<boolean | undefined>;
  clear(): void;
}

export function createAnswerCaches(o: {
  store: RegistryStore;
  metrics: DiscoveryMetrics;
  watch: StoreWatch;
  timing: CacheTiming;
  maxNames: number;
  now: () => number;
}): AnswerCaches {
  const { store, metrics, watch, timing, now } = o;
  const details = new Map<string, CachedValue<DetailValue>>();
  const loadDetail = async (name: string) => {
    const instances = await store.list(name);
    metrics.instances.set({ name }, instances.length);
    return { prepared: prepareDetail(instances, now()) };
  };
  const onScan = { onLoad: (ok: boolean, s: number, err?: unknown) => watch.result('scan', ok, s, err) };
  const list = new CachedValue(() => store.names({ maxAgeMs: timing.freshMs }), timing, now, onScan);
  const summary = new CachedValue(
    async () => {
      const counts = await store.summary();
      for (const [name, n] of Object.entries(counts)) metrics.instances.set({ name }, n);
      return counts;
    },
    timing,
    now,
    onScan,
  );
  return {
    detail: (name) => details.get(name),
    detailOrNew(name) {
      let c = details.get(name);
      if (c) return c;
      c = new CachedValue(() => loadDetail(name), timing, now, {
        onLoad: (ok, s, err) => watch.result('query', ok, s, err),
      });
      details.set(name, c);
      if (details.size > o.maxNames) {
        const oldest = details.keys().next();
        if (!oldest.done) details.delete(oldest.value);
      }
      return c;
    },
    list,
    summary,
    async isKnown(name) {
      try {
        if ((await store.names()).includes(name)) return true;
        return (await watch.timed('scan', () => store.names({ maxAgeMs: timing.freshMs }))).includes(name);
      } catch {
        return undefined;
      }
    },
    clear() {
      details.clear();
      list.invalidate();
      summary.invalidate();
    },
  };
}
