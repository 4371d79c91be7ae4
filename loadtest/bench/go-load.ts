/**
 * The Go load client (loadtest/goagent, `goagent load`) as a child of a benchmark driver: many
 * Elkeid-like agents on grpc-go in one process, each on its own mTLS connection, so the load is
 * not bound by a Node client sharing the cores with the server under test. See load.go for the
 * modes and the JSON lines it prints; this module starts it, waits for `load_ready`, and on
 * `stop()` closes its stdin and returns the `load_done` report.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
// @ts-expect-error -- plain .mjs build script without type declarations
import { buildGoAgent } from '../../scripts/build-goagent.mjs';

export type GoLoadMode = 'paced' | 'saturated' | 'idle';

export interface GoLoadOptions {
  pkiDir: string;
  target: { host: string; port: number };
  mode: GoLoadMode;
  agents: number;
  records: number;
  recordBytes: number;
  intervalMs: number;
  compression: 'snappy' | 'none';
  indexBase?: number;
}

export interface GoLoadReady {
  connected: number;
  failed: number;
  errors: Record<string, number>;
  connect_ms: number;
  raw_bytes_per_message: number;
  body_bytes_per_record: number;
}

export interface GoLoadDone {
  agents: number;
  messages_sent: number;
  records_sent: number;
  records_confirmed: number;
  records_unconfirmed: number;
  statuses: Record<string, number>;
  errors: Record<string, number>;
  max_behind: number;
  end_ms: number;
}

export interface GoLoad {
  pid: number;
  ready: GoLoadReady;
  stop(timeoutMs?: number): Promise<GoLoadDone>;
  kill(): void;
}

let binary: string | undefined;
/** The built goagent binary (built on first use into .cache/goagent/). */
export function goAgentBinary(): string {
  binary ??= buildGoAgent() as string;
  return binary;
}

export async function startGoLoad(o: GoLoadOptions, timeoutMs = 180_000): Promise<GoLoad> {
  const args = [
    'load',
    `-addr=${o.target.host}:${o.target.port}`,
    `-ca=${path.join(o.pkiDir, 'ca.crt')}`,
    `-cert=${path.join(o.pkiDir, 'client.crt')}`,
    `-key=${path.join(o.pkiDir, 'client.key')}`,
    `-mode=${o.mode}`,
    `-agents=${o.agents}`,
    `-records=${o.records}`,
    `-record-bytes=${o.recordBytes}`,
    `-interval=${o.intervalMs}ms`,
    `-compression=${o.compression}`,
    `-index-base=${o.indexBase ?? 0}`,
  ];
  const child = spawn(goAgentBinary(), args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const events = new Map<string, (v: Record<string, unknown>) => void>();
  const waitFor = (ev: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      events.set(ev, resolve);
      child.once('exit', (code, signal) =>
        reject(
          new Error(
            `goagent load exited (code ${code}, signal ${signal}) before ${ev}: ${stderr.slice(-2000)}`,
          ),
        ),
      );
    });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8000);
  });
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    events.get(String(v.ev))?.(v);
  });
  const readyP = waitFor('load_ready');
  const doneP = waitFor('load_done');
  doneP.catch(() => {}); // observed in stop()
  const ready = (await withTimeout(
    readyP,
    timeoutMs,
    'goagent load: no load_ready',
  )) as unknown as GoLoadReady;
  return {
    pid: child.pid!,
    ready,
    async stop(stopTimeoutMs = 120_000) {
      child.stdin!.end();
      const done = await withTimeout(doneP, stopTimeoutMs, 'goagent load: no load_done');
      await exited(child);
      return done as unknown as GoLoadDone;
    },
    kill() {
      child.kill('SIGKILL');
    },
  };
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
