/**
 * A value read from the store, kept for about a second and refreshed behind the readers' backs;
 * when the store fails, the last good value keeps being served, marked stale.
 *
 * States of one entry, by the age of its last good value:
 *   age < freshMs                      → served as is
 *   freshMs ≤ age < maxAgeMs, last ok  → served as is; one refresh starts in the background
 *   last refresh failed                → served stale (age reported); a refresh is retried at
 *                                        most every retryMs, in the background
 *   age ≥ maxAgeMs, last ok (idle)     → the reader waits for a refresh; if it fails, stale
 *   never loaded                       → the reader waits for the load; if it fails, no value
 * With `background: false` (Lambda: a frozen container cannot finish background work) every
 * refresh is awaited by the reader that triggers it.
 *
 * Refreshes are single-flight per entry: any number of concurrent readers cause one store call.
 */

export interface CacheTiming {
  /** Default 1000 ms. */
  freshMs: number;
  /** Past this a value is not served without trying the store first. Default 5000 ms. */
  maxAgeMs: number;
  /** Least time between two attempts while the store fails. Default 1000 ms. */
  retryMs: number;
  /** Default true. */
  background: boolean;
}

export const DEFAULT_CACHE_TIMING: CacheTiming = {
  freshMs: 1000,
  maxAgeMs: 5000,
  retryMs: 1000,
  background: true,
};

export type Read<T> =
  | { ok: true; value: T; fetchedAt: number; stale: false }
  | { ok: true; value: T; fetchedAt: number; stale: true; ageMs: number; error: unknown }
  | { ok: false; error: unknown };

export interface CacheHooks {
  /** Called once per store attempt. */
  onLoad?(ok: boolean, seconds: number, error?: unknown): void;
}

export class CachedValue<T> {
  #value: T | undefined;
  #has = false;
  #fetchedAt = 0;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  #lastError: unknown;
  #failing = false;
  #invalid = false;
  #inflight: Promise<void> | undefined;
  readonly #load: () => Promise<T>;
  readonly #timing: CacheTiming;
  readonly #now: () => number;
  readonly #hooks: CacheHooks;

  constructor(load: () => Promise<T>, timing: CacheTiming, now: () => number, hooks: CacheHooks = {}) {
    this.#load = load;
    this.#timing = timing;
    this.#now = now;
    this.#hooks = hooks;
  }

  /** Makes the next read wait for the store (after a write through this process). */
  invalidate(): void {
    this.#invalid = true;
  }

  get loaded(): boolean {
    return this.#has;
  }

  /**
   * The value if it can be answered without waiting, else undefined (the caller then awaits
   * `read()`). Kept synchronous so the hot path of a cache hit allocates no promise.
   */
  peek(): Read<T> | undefined {
    if (!this.#has || this.#invalid) return undefined;
    const t = this.#now();
    const age = t - this.#fetchedAt;
    if (this.#failing) {
      if (t - this.#lastAttemptAt >= this.#timing.retryMs) {
        if (!this.#timing.background) return undefined;
        void this.#refresh();
      }
      return this.#staleRead(age);
    }
    if (age < this.#timing.freshMs)
      return { ok: true, value: this.#value!, fetchedAt: this.#fetchedAt, stale: false };
    if (age < this.#timing.maxAgeMs && this.#timing.background) {
      void this.#refresh();
      return { ok: true, value: this.#value!, fetchedAt: this.#fetchedAt, stale: false };
    }
    return undefined;
  }

  async read(): Promise<Read<T>> {
    const quick = this.peek();
    if (quick) return quick;
    await this.#refresh();
    if (!this.#has) return { ok: false, error: this.#lastError };
    if (this.#failing) return this.#staleRead(this.#now() - this.#fetchedAt);
    return { ok: true, value: this.#value!, fetchedAt: this.#fetchedAt, stale: false };
  }

  #staleRead(ageMs: number): Read<T> {
    return {
      ok: true,
      value: this.#value!,
      fetchedAt: this.#fetchedAt,
      stale: true,
      ageMs: Math.max(0, ageMs),
      error: this.#lastError,
    };
  }

  #refresh(): Promise<void> {
    this.#inflight ??= (async () => {
      const started = this.#now();
      this.#lastAttemptAt = started;
      const t0 = performance.now();
      try {
        const value = await this.#load();
        this.#value = value;
        this.#has = true;
        this.#fetchedAt = this.#now();
        this.#failing = false;
        this.#invalid = false;
        this.#lastError = undefined;
        this.#hooks.onLoad?.(true, (performance.now() - t0) / 1000);
      } catch (err) {
        this.#failing = true;
        this.#lastError = err;
        this.#lastAttemptAt = this.#now();
        this.#hooks.onLoad?.(false, (performance.now() - t0) / 1000, err);
      } finally {
        this.#inflight = undefined;
      }
    })();
    return this.#inflight;
  }
}
