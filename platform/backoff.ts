/**
 * Retry delays for failed deliveries: exponential backoff with full jitter (AWS Architecture
 * Blog, "Exponential Backoff And Jitter"): delay = random(0, min(cap, base × 2^(attempt-1))).
 * Full jitter spreads the retries of a thousand agents that failed together (a gateway restart)
 * over the whole window instead of bunching them at the same instants.
 */
export interface BackoffOptions {
  /** Default 1000 ms. */
  baseMs: number;
  /** Default 30 000 ms. */
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1000, capMs: 30_000 };

/** The upper bound of the delay after `attempt` failed attempts (attempt ≥ 1). */
export function backoffCeiling(attempt: number, o: BackoffOptions = DEFAULT_BACKOFF): number {
  const exp = Math.min(30, Math.max(0, attempt - 1));
  return Math.min(o.capMs, o.baseMs * 2 ** exp);
}

/** Delay before the next attempt after `attempt` failed ones, in [0, ceiling]. */
export function backoffDelay(
  attempt: number,
  o: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * backoffCeiling(attempt, o));
}

export interface RetryOptions extends BackoffOptions {
  /** Attempts in all, the first included (≥ 1). Infinity retries until `signal` aborts. */
  attempts: number;
  /** Whether a failure is worth another attempt (default: every failure). */
  retryable?: (err: unknown) => boolean;
  /** Called before each wait, e.g. to log or count the failure. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Stops the waiting; the last error is thrown. */
  signal?: AbortSignal;
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Runs `attempt` until it resolves, waiting a full-jitter backoff between failures. Why one
 * helper: every retry loop in the project spreads its retries the same way, and the AWS SDK
 * already retries each call (platform/store/dynamo-client.ts: 3 attempts), so callers size
 * `attempts` knowing each of theirs is up to three requests.
 */
export async function retryWithBackoff<T>(attempt: (n: number) => Promise<T>, o: RetryOptions): Promise<T> {
  const random = o.random ?? Math.random;
  const sleep = o.sleep ?? abortableSleep;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      const last = n >= o.attempts || o.signal?.aborted === true || (o.retryable && !o.retryable(err));
      if (last) throw err;
      const delayMs = backoffDelay(n, o, random);
      o.onRetry?.(err, n, delayMs);
      await sleep(delayMs, o.signal);
    }
  }
}

/** A timer that resolves early when `signal` aborts (the caller then sees `signal.aborted`). */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
