/**
 * Another gateway (not ours, e.g. Elkeid's own AgentCenter built from upstream) as a server of
 * `bench:ingest --external-cmd CMD` and of bench:gateway's handshakes test (there the Go client
 * reads the CPU of the tree's processes itself): the driver runs CMD through /bin/sh in a process group of
 * its own, with the bench's settings in the environment (`externalEnv`), waits until the agent
 * port accepts TCP connections, and measures the process tree CMD started from /proc the way it
 * measures our gateway children: CPU = utime+stime of every thread of every process in the tree,
 * RSS = the sum of their resident sets. It exposes the same `Child` handle as our children
 * (`stats`, `gc`), so the phases run unchanged; what such a gateway cannot report comes from the
 * driver: `records` is a callback (the measuring consumer's count of its topic) and `agents` is
 * absent. `gc` is `stats` (a foreign runtime has no GC hook here). `stop` sends SIGTERM to the
 * group and SIGKILL after the grace period.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type Child, keepTail, type ServerStats, watchExit } from './child-protocol.js';
import { procCpuTicks, procStatFields, procTicksPerS } from './machine.js';

/** What the external gateway is told, through the environment its command sees. */
export interface ExternalSettings {
  host: string;
  port: number;
  brokers: readonly string[];
  topic: string;
  /** Directory with the bench PKI: ca.crt, server.crt, server.key (bench-setup.ts). */
  pkiDir: string;
  /** A fresh directory for the gateway's files (logs); also its working directory. */
  workDir: string;
}

/** The environment variables `--external-cmd` documents, from the settings. */
export function externalEnv(s: ExternalSettings): Record<string, string> {
  return {
    FLEETGATE_BENCH_AGENT_HOST: s.host,
    FLEETGATE_BENCH_AGENT_PORT: String(s.port),
    FLEETGATE_BENCH_KAFKA_BROKERS: s.brokers.join(','),
    FLEETGATE_BENCH_KAFKA_TOPIC: s.topic,
    FLEETGATE_BENCH_TLS_CA: path.join(s.pkiDir, 'ca.crt'),
    FLEETGATE_BENCH_TLS_CERT: path.join(s.pkiDir, 'server.crt'),
    FLEETGATE_BENCH_TLS_KEY: path.join(s.pkiDir, 'server.key'),
    FLEETGATE_BENCH_WORKDIR: s.workDir,
  };
}

/** The help text of those variables (bench:ingest --help). */
export const EXTERNAL_ENV_HELP = `FLEETGATE_BENCH_AGENT_HOST/_PORT (where to listen for agents: mTLS gRPC
                        Transfer), FLEETGATE_BENCH_KAFKA_BROKERS (comma-separated),
                        FLEETGATE_BENCH_KAFKA_TOPIC (one record per agent Record, keyed by
                        AgentID, the Record body carried verbatim, as Elkeid's MQData does),
                        FLEETGATE_BENCH_TLS_CA/_CERT/_KEY (PEM files), FLEETGATE_BENCH_WORKDIR
                        (a fresh directory, also the working directory)`;

const PAGE_KIB = 4;

interface ProcInfo {
  pid: number;
  ppid: number;
  cpuTicks: number;
  rssPages: number;
}

function readProcInfo(pid: number): ProcInfo | undefined {
  const f = procStatFields(`/proc/${pid}/stat`);
  return f && { pid, ppid: Number(f[1]), cpuTicks: procCpuTicks(f), rssPages: Number(f[21]) };
}

/** Live (not zombie) processes of process group `pgid`. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = procStatFields(`/proc/${name}/stat`);
    if (f && f[0] !== 'Z' && Number(f[2]) === pgid) out.push(Number(name));
  }
  return out;
}

/** Waits until process group `pgid` has no live member, at most `ms`; true if it emptied. */
async function groupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (groupMembers(pgid).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The processes of the tree rooted at `root` (itself included) that are alive now. */
export function processTree(root: number): ProcInfo[] {
  const all: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProcInfo(Number(name));
    if (p) all.push(p);
  }
  const inTree = new Set([root]);
  // Parents may be listed after their children: repeat until nothing joins.
  for (let grown = true; grown; ) {
    grown = false;
    for (const p of all) {
      if (!inTree.has(p.pid) && inTree.has(p.ppid)) {
        inTree.add(p.pid);
        grown = true;
      }
    }
  }
  return all.filter((p) => inTree.has(p.pid));
}

/** CPU seconds (all threads) and RSS bytes of the tree rooted at `root` now. */
export function treeUsage(root: number): { cpuS: number; rssBytes: number; processes: number } {
  const tree = processTree(root);
  return {
    cpuS: tree.reduce((s, p) => s + p.cpuTicks, 0) / procTicksPerS(),
    rssBytes: tree.reduce((s, p) => s + p.rssPages, 0) * PAGE_KIB * 1024,
    processes: tree.length,
  };
}

/** Resolves once host:port accepts a TCP connection; rejects when `gone` settles first or at the deadline. */
async function waitForPort(host: string, port: number, timeoutMs: number, gone: Promise<unknown>) {
  let exited = false;
  void gone.then(() => {
    exited = true;
  });
  const deadline = Date.now() + timeoutMs;
  while (!exited && Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(exited ? 'exited before its port was open' : `port ${port} not open after ${timeoutMs} ms`);
}

/** A free TCP port on `host` (bound and released: another process could take it meanwhile). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface ExternalOptions {
  name: string;
  cmd: string;
  settings: ExternalSettings;
  /** Records the gateway has delivered so far (the driver's consumer count). */
  records: () => number;
  readyTimeoutMs?: number;
}

/** Starts CMD and returns a `Child` handle once its agent port is open. */
export async function startExternalGateway(o: ExternalOptions): Promise<Child> {
  const { settings } = o;
  const proc = spawn('/bin/sh', ['-c', o.cmd], {
    cwd: settings.workDir,
    env: { ...process.env, ...externalEnv(settings) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // a process group of its own: stop() ends the whole tree
  });
  const root = proc.pid!;
  const tail = keepTail([proc.stdout, proc.stderr]);
  const watch = watchExit(proc);
  const exited = watch.exited;
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-root, signal);
    } catch {
      // the group is gone
    }
  };
  try {
    await waitForPort(settings.host, settings.port, o.readyTimeoutMs ?? 60_000, exited);
  } catch (err) {
    signalGroup('SIGKILL');
    throw new Error(`${o.name}: ${(err as Error).message}\n${tail.join('\n')}`);
  }

  const stats = (): ServerStats & { processes: number } => {
    const u = treeUsage(root);
    const cpuUs = Math.round(u.cpuS * 1e6);
    return {
      records: o.records(),
      calls: 0,
      openCalls: 0,
      agents: Number.NaN, // unknown: the driver skips its registration check
      cpuUser: cpuUs, // utime and stime together: the split is not needed
      cpuSystem: 0,
      rss: u.rssBytes,
      heapUsed: 0,
      heapTotal: 0,
      external: 0,
      arrayBuffers: 0,
      processes: u.processes,
    };
  };
  return {
    name: o.name,
    pid: root,
    hello: { port: settings.port, pid: root, impl: o.name, external: true },
    exited,
    get alive() {
      return watch.alive();
    },
    stderrTail: () => tail.join('\n'),
    async request<T>(cmd: string): Promise<T> {
      if (!watch.alive()) throw new Error(`${o.name} is not running\n${tail.join('\n')}`);
      if (cmd === 'stats' || cmd === 'gc') return stats() as T;
      throw new Error(`${o.name}: an external gateway answers only stats and gc, not ${cmd}`);
    },
    // The whole group, not only the shell: a gateway left running would load the next one's run.
    async stop(graceMs = 10_000) {
      signalGroup('SIGTERM');
      if (!(await groupGone(root, graceMs))) {
        signalGroup('SIGKILL');
        await groupGone(root, 5000);
      }
      await exited;
    },
  };
}
