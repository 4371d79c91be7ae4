/** The writer's periodic jobs: unref'd intervals whose failures are logged, never thrown. */
import type { Logger } from '../../platform/obs/logger.js';

export interface Timers {
  /** Runs `fn` every `ms` (a returned promise's rejection is logged too). */
  every(ms: number, fn: () => unknown): void;
  readonly running: boolean;
  stop(): void;
}

export function createTimers(log: Logger): Timers {
  let timers: NodeJS.Timeout[] = [];
  const failed = (err: unknown) => log.warn({ err }, 'agent status timer failed');
  return {
    every(ms, fn) {
      const timer = setInterval(() => {
        try {
          const r = fn();
          if (r instanceof Promise) r.catch(failed);
        } catch (err) {
          failed(err);
        }
      }, ms);
      timer.unref();
      timers.push(timer);
    },
    get running() {
      return timers.length > 0;
    },
    stop() {
      for (const timer of timers) clearInterval(timer);
      timers = [];
    },
  };
}
