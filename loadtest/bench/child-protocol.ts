/**
 * The line protocol between the benchmark driver and its child processes (gateway servers and
 * load generators): the child prints one JSON line when ready, then answers each command line on
 * stdin with exactly one JSON line on stdout. Anything else a child prints goes to stderr.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import readline from 'node:readline';
import { openFileLimits } from '../sim/fd-limit.js';
import { procCpuTicks, procStatFields, procTicksPerS } from './machine.js';

/** The options every gateway child takes: `--pki DIR` (required), `--port` (0 picks a free one), `--host`. */
export const SERVER_CHILD_OPTIONS = {
  pki: { type: 'string' },
  port: { type: 'string', default: '0' },
  host: { type: 'string', default: '127.0.0.1' },
  /** Share the port with other gateway children (SO_REUSEPORT): bench:gateway --processes. */
  'reuse-port': { type: 'boolean', default: false },
} as const;

/** The `--pki DIR` a gateway child was given; it cannot start without one. */
export function requiredPkiDir(pki: string | undefined): string {
  if (!pki) throw new Error('--pki DIR is required');
  return pki;
}

/** Soft limit of open files of this process (Linux /proc), undefined elsewhere. */
export function openFileLimit(): number | undefined {
  return openFileLimits()?.soft;
}

/** What a gateway child reports on `stats` (and after `gc`). */
export interface ServerStats {
  /** Records accepted by the server's sink (ours) or counted by the handler (baseline). */
  records: number;
  /** Transfer calls started since the server began. */
  calls: number;
  /** Transfer calls open now. */
  openCalls: number;
  /** Agents identified by their first message and registered now. */
  agents: number;
  /** process.cpuUsage(), microseconds. */
  cpuUser: number;
  cpuSystem: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export function processStats(): Omit<ServerStats, 'records' | 'calls' | 'openCalls' | 'agents'> {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  return {
    cpuUser: cpu.user,
    cpuSystem: cpu.system,
    rss: mem.rss,
    heapUsed: mem.heapUsed,
    heapTotal: mem.heapTotal,
    external: mem.external,
    arrayBuffers: mem.arrayBuffers,
  };
}

/**
 * CPU of this process split by thread (Linux /proc, clock-tick resolution, microseconds): the
 * main thread (tid = pid) and all the others together (worker threads, the libuv pool, V8's GC
 * and compiler threads). Undefined where /proc is not available.
 */
export function threadCpu(): { mainUs: number; otherUs: number; threads: number } | undefined {
  const tickUs = 1e6 / procTicksPerS();
  try {
    let mainUs = 0;
    let otherUs = 0;
    let threads = 0;
    for (const tid of readdirSync('/proc/self/task')) {
      const f = procStatFields(`/proc/self/task/${tid}/stat`);
      if (!f) continue; // the thread ended meanwhile
      const us = procCpuTicks(f) * tickUs;
      threads++;
      if (Number(tid) === process.pid) mainUs += us;
      else otherUs += us;
    }
    return { mainUs, otherUs, threads };
  } catch {
    return undefined;
  }
}

/** Full GCs with pauses in between, so freed pages are returned before RSS is read. */
export async function settleGc(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 150));
  }
}

export type CommandHandler = (command: Record<string, unknown>) => unknown;

/**
 * Serves commands from stdin: a line is either a bare name (`stats`) or a JSON object with a
 * `cmd` field (and an optional `id` echoed back). Each command gets one JSON reply line.
 * The process exits when stdin closes (the driver went away).
 */
export function serveCommands(handlers: Record<string, CommandHandler>, onStdinEnd: () => void): void {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  rl.on('line', (line) => {
    const text = line.trim();
    if (text === '') return;
    let command: Record<string, unknown>;
    try {
      command = text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : { cmd: text };
    } catch (err) {
      reply({ ok: false, error: `bad command line: ${(err as Error).message}` });
      return;
    }
    const id = command.id;
    const handler = handlers[String(command.cmd)];
    if (!handler) {
      reply({ id, ok: false, error: `unknown command ${String(command.cmd)}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(command))
      .then(
        (result) => reply({ id, ok: true, ...(result as object | undefined) }),
        (err: unknown) => reply({ id, ok: false, error: err instanceof Error ? err.message : String(err) }),
      );
  });
  rl.on('close', onStdinEnd);
}

/**
 * Serves a server child's commands: `stats`, `gc` (full GCs, then stats) and any `extra` ones.
 * When stdin closes, runs `stop` once (errors ignored) and exits 0.
 */
export function serveServerCommands(
  stats: () => unknown,
  stop: () => unknown,
  extra: Record<string, CommandHandler> = {},
): void {
  let stopping = false;
  serveCommands(
    {
      stats,
      ...extra,
      async gc() {
        await settleGc();
        return stats();
      },
    },
    () => {
      if (stopping) return;
      stopping = true;
      Promise.resolve()
        .then(stop)
        .catch(() => {})
        .finally(() => process.exit(0));
    },
  );
}

/**
 * Event-loop delay of this process: each call returns p99 and max (ms) since the last call (to
 * `digits` decimals when given), then resets.
 */
export function loopLagMeter(digits?: number): () => { loopLagP99Ms: number; loopLagMaxMs: number } {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const ms = (ns: number) => (digits === undefined ? ns / 1e6 : Number((ns / 1e6).toFixed(digits)));
  return () => {
    const lag = { loopLagP99Ms: ms(loop.percentile(99)), loopLagMaxMs: ms(loop.max) };
    loop.reset();
    return lag;
  };
}

export function reply(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Parent side: a running child with a request/reply channel over its stdin/stdout. */
export type ChildExit = { code: number | null; signal: NodeJS.Signals | null };

/** The last 40 non-empty lines of `streams` (for error reports), kept as they arrive. */
export function keepTail(streams: readonly NodeJS.ReadableStream[]): string[] {
  const tail: string[] = [];
  for (const stream of streams) {
    readline.createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (l) => {
      if (l.trim() === '') return;
      tail.push(l);
      if (tail.length > 40) tail.splice(0, tail.length - 40);
    });
  }
  return tail;
}

/** Whether `proc` still runs, and its exit. */
export function watchExit(proc: ChildProcess): { exited: Promise<ChildExit>; alive(): boolean } {
  let alive = true;
  const exited = new Promise<ChildExit>((resolve) => {
    proc.once('exit', (code, signal) => {
      alive = false;
      resolve({ code, signal });
    });
  });
  return { exited, alive: () => alive };
}

export interface Child {
  readonly name: string;
  readonly pid: number | undefined;
  /** The first JSON line the child printed. */
  readonly hello: Record<string, unknown>;
  request<T = Record<string, unknown>>(
    cmd: string,
    args?: Record<string, unknown>,
    timeoutMs?: number,
  ): Promise<T>;
  /** Resolves with the exit code (or signal) once the child is gone. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly alive: boolean;
  /** Last lines the child wrote to stderr (for error reports). */
  stderrTail(): string;
  /** Closes stdin and waits; kills the child (by its pid) after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Spawns `node <nodeArgs> <script> <args>` (`opts.node`, else this process's Node) through /bin/sh so the open-file limit can be raised
 * first (`ulimit -n`, best effort: falls back to the hard limit), and waits for its first JSON line.
 */
export async function spawnChild(
  name: string,
  nodeArgs: string[],
  script: string,
  args: string[],
  opts: { nofile?: number; readyTimeoutMs?: number; node?: string } = {},
): Promise<Child> {
  const nofile = opts.nofile ?? 65535;
  const shell = `ulimit -n ${nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"`;
  const proc = spawn('/bin/sh', ['-c', shell, opts.node ?? process.execPath, ...nodeArgs, script, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const tail = keepTail([proc.stderr]);
  const watch = watchExit(proc);
  const exited = watch.exited;
  const lines = readline.createInterface({ input: proc.stdout, crlfDelay: Number.POSITIVE_INFINITY });
  const waiting = new Map<
    number,
    { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  let nextId = 1;
  let helloResolve: ((v: Record<string, unknown>) => void) | undefined;
  const helloPromise = new Promise<Record<string, unknown>>((resolve) => {
    helloResolve = resolve;
  });
  lines.on('line', (line) => {
    if (!line.startsWith('{')) {
      tail.push(`[stdout] ${line}`);
      return;
    }
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      tail.push(`[stdout] ${line}`);
      return;
    }
    if (helloResolve) {
      const r = helloResolve;
      helloResolve = undefined;
      r(msg);
      return;
    }
    const w = waiting.get(Number(msg.id));
    if (!w) return;
    waiting.delete(Number(msg.id));
    if (msg.ok === false) w.reject(new Error(`${name}: ${String(msg.error)}`));
    else w.resolve(msg);
  });
  void exited.then(({ code, signal }) => {
    const err = new Error(`${name} exited (code ${code}, signal ${signal})\n${tail.join('\n')}`);
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  });

  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  let readyTimer: NodeJS.Timeout | undefined;
  const hello = await Promise.race([
    helloPromise,
    exited.then(({ code, signal }) => {
      throw new Error(
        `${name} exited before it was ready (code ${code}, signal ${signal})\n${tail.join('\n')}`,
      );
    }),
    new Promise<never>((_, reject) => {
      readyTimer = setTimeout(
        () => reject(new Error(`${name} not ready after ${readyTimeoutMs} ms\n${tail.join('\n')}`)),
        readyTimeoutMs,
      );
    }),
  ]).finally(() => clearTimeout(readyTimer));

  return {
    name,
    pid: proc.pid,
    hello,
    exited,
    get alive() {
      return watch.alive();
    },
    stderrTail: () => tail.join('\n'),
    request<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 300_000): Promise<T> {
      if (!watch.alive()) return Promise.reject(new Error(`${name} is not running\n${tail.join('\n')}`));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`${name}: no reply to ${cmd} after ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(id, {
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v as T);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        proc.stdin.write(`${JSON.stringify({ ...args, cmd, id })}\n`);
      });
    },
    async stop(graceMs = 10_000) {
      if (!watch.alive()) return;
      proc.stdin.end();
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          if (watch.alive() && proc.pid !== undefined) process.kill(proc.pid, 'SIGKILL');
          resolve();
        }, graceMs);
      });
      await Promise.race([exited.then(() => undefined), killed]);
      clearTimeout(timer);
      await exited;
    },
  };
}
