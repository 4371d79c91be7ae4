/**
 * A fix for kafkajs' request queue, applied once per process (thread) before any client is used.
 *
 * Why: kafkajs 2.2.4 (its last release) re-arms a timer after every response, also when nothing
 * waits in the queue. Its delay is `throttledUntil - Date.now()`, and `throttledUntil` is -1
 * unless the broker throttled us, so the delay is about minus the epoch: Node clamps it to 1 ms,
 * the timer fires, checks the empty queue and arms itself again. Every broker connection of
 * every client then wakes its event loop 1,000 times a second for as long as it lives
 * (tulios/kafkajs#1704), and Node 24 prints a TimeoutNegativeWarning for it (#1751). Measured
 * (an idle, connected producer, Node 20, 5 s): 43.1 ms of CPU per second stock, 4.4 with this
 * fix; a gateway idle after producing, 46.8–48.5 against 7.3–10.6 ms per second (docs/capacity.md,
 * "Idle CPU"). Under load the loop's timer mostly fires while the thread is awake anyway, and
 * the difference is within the benchmarks' noise.
 *
 * The fix: no timer when the queue is empty and the broker has not throttled us. The timer still
 * runs in every other case (requests waiting for an in-flight slot or for a throttle to end), and
 * `push` arms it whenever it queues a request, so no queued request waits on a timer that was not
 * set. test/unit/kafkajs-request-queue.test.ts checks both sides on kafkajs' own class.
 */
import { createRequire } from 'node:module';

interface RequestQueueState {
  pending: unknown[];
  throttledUntil: number;
}

interface RequestQueuePrototype {
  scheduleCheckPendingRequests(this: RequestQueueState): void;
  /** Set here once patched, so that a second call (another importer) is a no-op. */
  fleetgateIdleTimerFix?: true;
}

/** kafkajs' RequestQueue class (not exported from its index: the package has no `exports` map). */
export function kafkajsRequestQueue(): { prototype: RequestQueuePrototype } {
  const require = createRequire(import.meta.url);
  return require('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueuePrototype };
}

/** Patches kafkajs' RequestQueue (idempotent). */
export function fixKafkajsIdleTimer(): void {
  const proto = kafkajsRequestQueue().prototype;
  if (proto.fleetgateIdleTimerFix) return;
  const schedule = proto.scheduleCheckPendingRequests;
  proto.scheduleCheckPendingRequests = function scheduleWhenNeeded(this: RequestQueueState) {
    if (this.pending.length === 0 && this.throttledUntil <= Date.now()) return;
    schedule.call(this);
  };
  proto.fleetgateIdleTimerFix = true;
}
