/**
 * Retry scheduling: a failed delivery attempt becomes `failed` with the time of its next try
 * (exponential backoff with full jitter, platform/backoff.ts), or `result_failed` when it cannot
 * be retried or the task's attempts are used up. Reasons read as Elkeid's messages.
 */
import { backoffDelay } from '../../../platform/backoff.js';
import type { SubtaskItem } from '../model.js';
import type { DispatchEngine } from './engine.js';

const REASON_MSG: Record<string, string> = {
  not_connected: 'agentID not found',
  queue_full: 'the sendPool of the agent is full',
  timed_out: 'the command has been sent but get results timed out',
  closed: 'the connection closed before the command was sent',
  offline: 'agent offline (no gateway holds it)',
};

/** Applies a failed attempt to `item` (whose `attempts` already counts it), at time `at`. */
export function failAttempt(
  engine: DispatchEngine,
  item: SubtaskItem,
  out: { reason: string; final?: boolean },
  maxAttempts: number,
  at: number,
): void {
  item.msg = REASON_MSG[out.reason] ?? out.reason;
  if (out.final || item.attempts >= maxAttempts) {
    item.state = 'result_failed';
    engine.metrics.exhausted.inc({ reason: 'attempts' });
  } else {
    item.state = 'failed';
    item.retryAt = at + backoffDelay(item.attempts, engine.settings.backoff, engine.random);
    engine.metrics.retries.inc();
  }
}
