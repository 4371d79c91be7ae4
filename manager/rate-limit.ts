/**
 * Token buckets per key (a principal, or an address for sign-in attempts). In-process: each
 * manager instance (and each Lambda container) limits on its own, so the fleet-wide limit of N
 * instances is N times the configured one; the point is to stop one runaway script or a password
 * guesser from taking an instance, not exact global quotas. Idle buckets are forgotten.
 */
export interface RateLimitOptions {
  /** Tokens added per second. */
  ratePerSecond: number;
  /** Bucket size (the burst). */
  burst: number;
  now?: () => number;
  /** Buckets kept; the least recently used is dropped past it. */
  maxKeys?: number;
}

export interface RateLimiter {
  /** Takes `cost` tokens; `ok: false` carries the seconds until that many are available. */
  take(key: string, cost?: number): { ok: true } | { ok: false; retryAfterS: number };
}

export function createRateLimiter(o: RateLimitOptions): RateLimiter {
  const now = o.now ?? Date.now;
  const maxKeys = o.maxKeys ?? 50_000;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(key, cost = 1) {
      const t = now();
      let b = buckets.get(key);
      if (b) {
        buckets.delete(key); // re-inserted below: Map order = recency
        b.tokens = Math.min(o.burst, b.tokens + ((t - b.at) / 1000) * o.ratePerSecond);
        b.at = t;
      } else {
        b = { tokens: o.burst, at: t };
      }
      buckets.set(key, b);
      if (buckets.size > maxKeys) buckets.delete(buckets.keys().next().value!);
      if (b.tokens >= cost) {
        b.tokens -= cost;
        return { ok: true };
      }
      return { ok: false, retryAfterS: Math.max(1, Math.ceil((cost - b.tokens) / o.ratePerSecond)) };
    },
  };
}
