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
