/**
 * The dispatcher's timer: a tick every `busyMs` while tasks are active, every `idleMs` otherwise;
 * `wake()` runs the next tick at once (a task was just run), or right after the one in progress.
 */
import type { Logger } from '../../../platform/obs/logger.js';
import type { TickResult } from './tick.js';

export class TickLoop {
  readonly #tick: () => Promise<TickResult>;
  readonly #log: Logger;
  readonly #busyMs: number;
  readonly #idleMs: number;
  #stopped = true;
  #killed = false;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;
  #ticking = false;
  #wakeRequested = false;

  constructor(o: { tick: () => Promise<TickResult>; log: Logger; busyMs: number; idleMs: number }) {
    this.#tick = o.tick;
    this.#log = o.log;
    this.#busyMs = o.busyMs;
    this.#idleMs = o.idleMs;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule(0);
  }

  wake(): void {
    if (this.#stopped || this.#killed) return;
    if (this.#ticking) this.#wakeRequested = true;
    else this.#schedule(0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running?.catch(() => {});
  }

  kill(): void {
    this.#killed = true;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  #schedule(ms: number): void {
    if (this.#stopped || this.#killed) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#run(), ms);
  }

  #run(): void {
    this.#timer = undefined;
    this.#ticking = true;
    this.#wakeRequested = false;
    this.#running = this.#tick().then(
      (r) => {
        this.#ticking = false;
        const busy = r.didWork || r.activeTasks > 0;
        this.#schedule(this.#wakeRequested ? 0 : busy ? this.#busyMs : this.#idleMs);
      },
      (err: unknown) => {
        this.#ticking = false;
        this.#log.error({ err }, 'dispatcher tick failed');
        this.#schedule(this.#idleMs);
      },
    );
  }
}
