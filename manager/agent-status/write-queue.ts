/**
 * Single-item writes of the status writer: each agent's writes run one after another (its
 * `chain`: they never overlap or reorder), at most `maxInFlight` of all agents at once (the
 * slots, shared with the batch puts), and a failed write is retried with full-jitter backoff
 * (platform/backoff.ts) while its `retry()` holds: the store being slow or briefly down must not
 * leave an agent unrecorded.
 */
import { retryWithBackoff } from '../../platform/backoff.js';
import type { PendingWork, TrackedAgent, WriterContext } from './types.js';

/** Attempts of one write, the first included (each is up to three SDK requests). */
const WRITE_ATTEMPTS = 9;
/** Backoff between them: up to 0.2 s after the first failure, doubling to at most 10 s. */
const WRITE_BACKOFF = { baseMs: 200, capMs: 10_000 };

/** A counting semaphore: how many writes may be in flight at once. */
export interface WriteSlots {
  run<T>(fn: () => Promise<T>): Promise<T>;
}

export function createWriteSlots(maxInFlight: number): WriteSlots {
  let inFlight = 0;
  const waiters: Array<() => void> = [];
  return {
    async run(fn) {
      if (inFlight >= maxInFlight) await new Promise<void>((r) => waiters.push(r));
      inFlight++;
      try {
        return await fn();
      } finally {
        inFlight--;
        waiters.shift()?.();
      }
    },
  };
}

export interface WriteQueue {
  /** Appends `op` to the agent's chain; retried while `retry()` holds (default: never). */
  enqueue(agent: TrackedAgent, op: () => Promise<void>, retry?: () => boolean): void;
  /** Stops retrying (close() gave up waiting). */
  abandon(): void;
}

export function createWriteQueue(ctx: WriterContext, slots: WriteSlots, pending: PendingWork): WriteQueue {
  let abandoned = false;
  return {
    enqueue(agent, op, retry = () => false) {
      agent.chain = pending.track(
        agent.chain.then(async () => {
          agent.busy++;
          try {
            await retryWithBackoff(() => slots.run(op), {
              attempts: WRITE_ATTEMPTS,
              ...WRITE_BACKOFF,
              retryable: () => !abandoned && retry(),
              onRetry: () => {
                ctx.stats.errors++;
              },
            });
          } catch (err) {
            ctx.stats.errors++;
            ctx.log.warn({ err, agentId: agent.agentId }, 'agent status write failed');
          } finally {
            agent.busy--;
          }
        }),
      );
    },
    abandon() {
      abandoned = true;
    },
  };
}
