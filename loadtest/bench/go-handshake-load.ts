/**
 * The handshake storm of `bench:gateway` from the Go load client (`goagent handshake-load`,
 * loadtest/goagent/load_handshake.go): grpc-go dialling as the stock Elkeid agent does, so the
 * server's per-session cost is measured against the agent's own TLS and HTTP/2 client and the
 * load is not bound by a Node client on the same cores. The Go client takes the window itself
 * and reads the server's CPU (utime+stime of every thread, /proc/<pid>/stat; summed over the
 * processes of a gateway of several) and its own at both ends.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
// @ts-expect-error -- plain .mjs build script without type declarations
import { buildGoAgent } from '../../scripts/build-goagent.mjs';

export interface GoHandshakeLoad {
  /** Sessions completed (OK status read) and failed inside the measured window. */
  completed: number;
  failed: number;
  /** Server CPU seconds over the window (all threads, /proc), and the window's wall seconds. */
  serverCpuS: number;
  /** The Go client's own CPU seconds over the window (it shares the cores with the server). */
  clientCpuS: number;
  windowS: number;
  errors: Record<string, number>;
}

export interface GoHandshakeOptions {
  target: { host: string; port: number };
  /** Directory with ca.crt, client.crt, client.key (writeBenchPki). */
  pkiDir: string;
  /** The server's processes (one, or every gateway process sharing the port). */
  serverPids: readonly number[];
  concurrency: number;
  warmupS: number;
  durationS: number;
  encoding: 'snappy' | 'identity';
  localAddresses: string[];
  /** One session's timeout (dial to status), the agent's dial timeout by default (15 s). */
  dialTimeoutS?: number;
  /** Key exchange groups the client offers (goagent -curves): `stock` (the agent's, default) or `go`. */
  curves?: string;
}

/** Runs one storm and returns the client's report; rejects if the client fails or reports no CPU. */
export async function goHandshakeLoad(o: GoHandshakeOptions): Promise<GoHandshakeLoad> {
  const bin = buildGoAgent() as string;
  const args = [
    'handshake-load',
    '-addr',
    `${o.target.host}:${o.target.port}`,
    '-ca',
    path.join(o.pkiDir, 'ca.crt'),
    '-cert',
    path.join(o.pkiDir, 'client.crt'),
    '-key',
    path.join(o.pkiDir, 'client.key'),
    '-concurrency',
    String(o.concurrency),
    '-warmup',
    `${o.warmupS}s`,
    '-duration',
    `${o.durationS}s`,
    '-server-pid',
    o.serverPids.join(','),
    '-encoding',
    o.encoding,
    ...(o.localAddresses.length > 0 ? ['-local-addrs', o.localAddresses.join(',')] : []),
    ...(o.dialTimeoutS !== undefined ? ['-dial-timeout', `${o.dialTimeoutS}s`] : []),
    ...(o.curves !== undefined ? ['-curves', o.curves] : []),
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += String(d);
  });
  child.stderr.on('data', (d: Buffer) => {
    err = (err + String(d)).slice(-4000);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  const line = out.split('\n').find((l) => l.includes('"handshake_load"'));
  if (code !== 0 || !line) throw new Error(`goagent handshake-load exited ${code}: ${err || out}`);
  const r = JSON.parse(line) as Record<string, unknown>;
  if (typeof r.server_cpu_s !== 'number' || r.server_cpu_s <= 0) {
    throw new Error(
      `goagent handshake-load could not read the server's CPU (pid ${o.serverPids.join(',')}): ${line}`,
    );
  }
  return {
    completed: Number(r.completed),
    failed: Number(r.failed),
    serverCpuS: r.server_cpu_s,
    clientCpuS: Number(r.client_cpu_s ?? 0),
    windowS: Number(r.window_s),
    errors: (r.errors as Record<string, number> | undefined) ?? {},
  };
}
