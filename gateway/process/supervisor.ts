/**
 * The supervisor of `fleetgate gateway --processes N`: it forks N full gateway processes that
 * share the agent port (SO_REUSEPORT, process-slot.ts) and does nothing else — it opens no
 * listener, so it never accepts an agent connection. It starts `p0` first with the configured
 * agent port and the others on the port `p0` bound (so port 0 works too); it forwards
 * SIGTERM/SIGINT/SIGHUP (each child drains or reloads as a single gateway does); it restarts a
 * child that exits while not stopping, after a full-jitter backoff (platform/backoff.ts; reset
 * once a child has served for a minute), logged and counted; `stop()` resolves once every child
 * has exited, and the command exits with it.
 *
 * Children are forked in their own session (`detached`): a terminal's Ctrl-C reaches only
 * the supervisor, which forwards it once; a second signal is forwarded too (the children then
 * exit at once, as a single gateway does). A child whose supervisor dies loses its IPC channel
 * and drains (serve-command.ts), so no orphan keeps the port or a spool.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { type BackoffOptions, backoffDelay } from '../../platform/backoff.js';
import type { Logger } from '../../platform/obs/logger.js';
import { withGatewayNodeFlags } from './node-flags.js';
import { type ProcessSlot, SLOT_ENV, slotControlPort, slotName } from './process-slot.js';

/** What a child sends over the IPC channel once it serves. */
export interface ChildUp {
  type: 'up';
  grpcPort: number;
  controlPort: number;
  banner: string[];
}

export function isChildUp(m: unknown): m is ChildUp {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'up';
}

export interface SupervisorOptions {
  processes: number;
  /** The script each child runs (the `fleetgate` entry) and its arguments (`gateway`). */
  entry: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** The configured agent port (0: a free one, which `p0` picks and the others share). */
  grpcPort: number;
  /** The configured control API port: process i gets base + i (0: each a free one). */
  httpPort: number;
  logger: Logger;
  /** Restart backoff; default 500 ms doubling up to 30 s. */
  backoff?: BackoffOptions;
  /** A child that served this long before it died restarts from the first backoff step (60 s). */
  stableMs?: number;
}

export interface ChildInfo {
  name: string;
  pid: number;
  controlPort: number;
}

export interface Supervisor {
  /** The shared agent port. */
  readonly grpcPort: number;
  /** `p0`'s banner (the lines every child prints alike). */
  readonly banner: string[];
  /** The children now, in slot order. */
  children(): ChildInfo[];
  /** Children restarted after an unexpected exit so far. */
  readonly restarts: number;
  /** Forwards a signal to every live child (SIGHUP: reload certificates). */
  signal(signal: NodeJS.Signals): void;
  /** Stops restarting and forwards `signal`; resolves when every child exited: 0 if all exited 0. */
  stop(signal: NodeJS.Signals): Promise<number>;
}

interface Slot extends ProcessSlot {
  child: ChildProcess | undefined;
  pid: number;
  controlPort: number;
  upAt: number;
  /** Restarts in a row without a stable run. */
  failures: number;
  timer: NodeJS.Timeout | undefined;
  lastExit: number | null;
}

const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, capMs: 30_000 };

export async function startSupervisor(o: SupervisorOptions): Promise<Supervisor> {
  const sup = new GatewaySupervisor(o);
  await sup.start();
  return sup;
}

/** The supervisor's state: one slot per child, restarted in place. */
class GatewaySupervisor implements Supervisor {
  readonly #o: SupervisorOptions;
  readonly #log: Logger;
  readonly #slots: Slot[];
  /** Before every child first served, an exit is a failed start (reported, nothing restarted). */
  #started = false;
  #stopping = false;
  #restarts = 0;
  #grpcPort: number;
  #banner: string[] = [];

  constructor(o: SupervisorOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'supervisor' });
    this.#grpcPort = o.grpcPort;
    this.#slots = Array.from({ length: o.processes }, (_, index) => ({
      index,
      count: o.processes,
      child: undefined,
      pid: 0,
      controlPort: 0,
      upAt: 0,
      failures: 0,
      timer: undefined,
      lastExit: null,
    }));
  }

  get grpcPort(): number {
    return this.#grpcPort;
  }

  get banner(): string[] {
    return this.#banner;
  }

  get restarts(): number {
    return this.#restarts;
  }

  children(): ChildInfo[] {
    return this.#slots.map((s) => ({
      name: slotName(s),
      pid: s.child ? s.pid : 0,
      controlPort: s.controlPort,
    }));
  }

  async start(): Promise<void> {
    try {
      // p0 first: it binds the configured port (or picks one); the others join that port.
      const first = await this.#launch(this.#slots[0]!);
      this.#grpcPort = first.grpcPort;
      this.#banner = first.banner;
      await Promise.all(this.#slots.slice(1).map((s) => this.#launch(s)));
      this.#started = true;
    } catch (err) {
      await this.stop('SIGTERM');
      throw err;
    }
    this.#log.info({ processes: this.#o.processes, grpcPort: this.#grpcPort }, 'gateway processes up');
  }

  signal(signal: NodeJS.Signals): void {
    for (const s of this.#live()) s.child?.kill(signal);
  }

  async stop(signal: NodeJS.Signals): Promise<number> {
    this.#stopping = true;
    for (const s of this.#slots) if (s.timer) clearTimeout(s.timer);
    const exits = this.#live().map((s) => new Promise<void>((r) => s.child?.once('exit', () => r())));
    this.signal(signal);
    await Promise.all(exits);
    return this.#slots.every((s) => s.lastExit === 0) ? 0 : 1;
  }

  #live(): Slot[] {
    return this.#slots.filter((s) => s.child !== undefined);
  }

  /** Forks the child of `slot`; resolves with its `up` message, rejects if it exits first. */
  #launch(slot: Slot): Promise<ChildUp> {
    const o = this.#o;
    const child = fork(o.entry, o.args, {
      // The gateway's V8 flags even when the supervisor itself was started without them.
      execArgv: withGatewayNodeFlags(process.execArgv),
      env: {
        ...o.env,
        [SLOT_ENV]: String(slot.index),
        FLEETGATE_PROCESSES: String(o.processes),
        FLEETGATE_GRPC_PORT: String(this.#grpcPort),
        FLEETGATE_HTTP_PORT: String(slotControlPort(o.httpPort, slot.index)),
      },
      detached: true,
    });
    slot.child = child;
    slot.pid = child.pid ?? 0;
    return new Promise<ChildUp>((resolve, reject) => {
      child.on('message', (m) => {
        if (!isChildUp(m)) return;
        slot.upAt = Date.now();
        slot.controlPort = m.controlPort;
        resolve(m);
      });
      child.once('exit', (code, signal) => {
        slot.child = undefined;
        slot.lastExit = code;
        reject(new Error(`${slotName(slot)} exited (${signal ?? `code ${code}`}) before it served`));
        if (this.#started && !this.#stopping) this.#restartLater(slot, code, signal);
      });
    });
  }

  /** Logs and counts the exit, and forks the slot again after its backoff. */
  #restartLater(slot: Slot, code: number | null, signal: NodeJS.Signals | null): void {
    const stable = slot.upAt > 0 && Date.now() - slot.upAt >= (this.#o.stableMs ?? 60_000);
    slot.failures = stable ? 1 : slot.failures + 1;
    slot.upAt = 0;
    const delayMs = backoffDelay(slot.failures, this.#o.backoff ?? DEFAULT_BACKOFF);
    this.#restarts++;
    this.#log.warn(
      { process: slotName(slot), childPid: slot.pid, code, signal, delayMs, restarts: this.#restarts },
      'gateway process exited unexpectedly: restarting it',
    );
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (this.#stopping) return;
      this.#launch(slot).then(
        (up) =>
          this.#log.info(
            { process: slotName(slot), childPid: slot.pid, controlPort: up.controlPort },
            'gateway process restarted',
          ),
        () => {}, // its exit handler schedules the next attempt
      );
    }, delayMs);
  }
}
