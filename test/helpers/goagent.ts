/**
 * The Go interop agent (loadtest/goagent, grpc-go with the stock Elkeid agent's behaviour) as a
 * child process of a test: built once per source version (scripts/build-goagent.mjs), killed
 * after the test, its JSON event lines collected.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
// @ts-expect-error -- plain .mjs build script without type declarations
import { buildGoAgent } from '../../scripts/build-goagent.mjs';
import { tempDir, waitFor } from './gateway.js';

let binary: string | undefined;
/** The built binary's path (built on first use in this test process). */
export function goAgentBinary(): string {
  binary ??= buildGoAgent() as string;
  return binary;
}

export interface GoAgentEvent {
  ev: string;
  t: number;
  [k: string]: unknown;
}

export interface GoAgent {
  child: ChildProcess;
  events: GoAgentEvent[];
  /** Events named `ev` (and matching `pred`) so far. */
  seen(ev: string, pred?: (e: GoAgentEvent) => boolean): GoAgentEvent[];
  /** Waits for the first event named `ev` matching `pred`, at or after index `from`. */
  waitEvent(ev: string, pred?: (e: GoAgentEvent) => boolean, ms?: number): Promise<GoAgentEvent>;
  stderr(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
}

export interface GoAgentOptions {
  address: { host: string; port: number };
  tls: { ca: string | Buffer; cert: string | Buffer; key: string | Buffer };
  id: string;
  /** More flags (see `goagent -h`), e.g. ['-rate', '10']. */
  args?: string[];
}

export function startGoAgent(t: TestContext, o: GoAgentOptions): GoAgent {
  const dir = tempDir(t, 'fg-goagent-');
  const files = {
    ca: path.join(dir, 'ca.crt'),
    cert: path.join(dir, 'client.crt'),
    key: path.join(dir, 'client.key'),
  };
  writeFileSync(files.ca, o.tls.ca);
  writeFileSync(files.cert, o.tls.cert);
  writeFileSync(files.key, o.tls.key, { mode: 0o600 });
  const args = [
    '-addr',
    `${o.address.host}:${o.address.port}`,
    '-ca',
    files.ca,
    '-cert',
    files.cert,
    '-key',
    files.key,
    '-id',
    o.id,
    '-max-dial-failures',
    '0',
    ...(o.args ?? []),
  ];
  const child = spawn(goAgentBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: GoAgentEvent[] = [];
  let partial = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    partial += String(d);
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line) events.push(JSON.parse(line) as GoAgentEvent);
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += String(d);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  });
  const seen = (ev: string, pred?: (e: GoAgentEvent) => boolean) =>
    events.filter((e) => e.ev === ev && (pred?.(e) ?? true));
  return {
    child,
    events,
    seen,
    async waitEvent(ev, pred, ms = 10_000) {
      await waitFor(() => seen(ev, pred).length > 0, ms, `goagent event ${ev}`);
      return seen(ev, pred)[0]!;
    },
    stderr: () => err,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
