/**
 * One of several gateway processes on a host (`fleetgate gateway --processes N`, supervisor.ts):
 * what makes process `p<i>` a gateway of its own next to its siblings. They share the agent port
 * (SO_REUSEPORT: the kernel spreads new connections over their accept queues); each has its own
 * spool directory (the spool lock is per directory), control API port, instance id in the agent
 * status records (so the manager sends an agent's commands to the process holding it), and
 * discovery registration of its control API. Everything else — connection limit, load control,
 * handshake admission, readiness — is per process, as for separate gateways.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { OrphanedSpool } from '../ingest/spool-adoption.js';

export interface ProcessSlot {
  /** 0-based: process `p<index>`. */
  index: number;
  /** Processes on this host. */
  count: number;
}

/** The environment variable the supervisor sets on each child: its index. Not for operators. */
export const SLOT_ENV = 'FLEETGATE_GATEWAY_SLOT';

/** `p<i>`: the suffix of the instance id, the spool subdirectory, the name in logs. */
export function slotName(slot: ProcessSlot): string {
  return `p${slot.index}`;
}

/** `<spool>/p<i>`: a spool directory per process, each with its own lock. */
export function slotSpoolDir(spoolDir: string, slot: ProcessSlot | undefined): string {
  return slot ? path.join(spoolDir, slotName(slot)) : spoolDir;
}

/**
 * Whether the process in `slot` (undefined: the single gateway process, whose spool is the root)
 * adopts the spool directory `p<j>` of a process that no longer runs: the single process adopts
 * every one; process i of N those with j >= N and j mod N = i, so each removed process's
 * directory has exactly one adopter, and the adopters share them evenly.
 */
export function adoptsSlotDir(j: number, slot: ProcessSlot | undefined): boolean {
  if (!slot) return true;
  return j >= slot.count && j % slot.count === slot.index;
}

/**
 * The spool directories under `spoolRoot` that the process in `slot` adopts at start
 * (gateway/ingest/spool-adoption.ts), in process order: the `p<j>` its layout gives it
 * (adoptsSlotDir) and, for process p0 of several, the root itself, where a single gateway process
 * (no --processes, or --processes 1) spools. Whether one of them is still in use is the spool
 * lock's to say.
 */
export function orphanedSpoolDirs(spoolRoot: string, slot: ProcessSlot | undefined): OrphanedSpool[] {
  const slots = subdirectories(spoolRoot)
    .map((name) => /^p(0|[1-9]\d{0,5})$/.exec(name))
    .filter((m) => m !== null)
    .map((m) => Number(m[1]))
    .filter((j) => adoptsSlotDir(j, slot))
    .sort((a, b) => a - b)
    .map((j) => ({ dir: path.join(spoolRoot, `p${j}`), removeWhenDrained: true }));
  // The root is also the parent of the p<j> directories: drained, it stays.
  const root = slot?.index === 0 ? [{ dir: spoolRoot, removeWhenDrained: false }] : [];
  return [...root, ...slots];
}

function subdirectories(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * The gateway's instance id in agent status (`host:port`, what Elkeid's `source_ip`/`source_port`
 * are read from): processes sharing the port add `/p<i>`, so each is a gateway of its own.
 */
export function slotGatewayId(address: string, slot: ProcessSlot | undefined): string {
  return slot ? `${address}/${slotName(slot)}` : address;
}

/**
 * The control API port of process `i`: the configured port + i (6752, 6753, …), or 0 (a free
 * port) when the configured one is 0.
 */
export function slotControlPort(base: number, index: number): number {
  return base === 0 ? 0 : base + index;
}

/**
 * The slot of this process when the supervisor forked it (it sets SLOT_ENV and
 * FLEETGATE_PROCESSES, and gives the child an IPC channel); else undefined.
 */
export function slotFromEnv(env: NodeJS.ProcessEnv, hasIpc: boolean): ProcessSlot | undefined {
  const raw = env[SLOT_ENV];
  const count = Number(env.FLEETGATE_PROCESSES);
  if (raw === undefined || !hasIpc || !/^\d+$/.test(raw) || !Number.isInteger(count)) return undefined;
  const index = Number(raw);
  return index < count ? { index, count } : undefined;
}

/**
 * Why this runtime cannot run several gateway processes on one port, or undefined when it can:
 * `reusePort` in server.listen is Node >= 22.12 (22.x) / >= 23.1, and SO_REUSEPORT's spreading
 * of connections is Linux's.
 */
export function reusePortProblem(
  version: string = process.versions.node,
  platform: NodeJS.Platform = process.platform,
): string | undefined {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const supported = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
  if (!supported) {
    return `several gateway processes need Node.js >= 22.12 (reusePort in server.listen, SO_REUSEPORT; production runs Node 24); this is ${version}`;
  }
  if (platform !== 'linux') return `several gateway processes need Linux (SO_REUSEPORT); this is ${platform}`;
  return undefined;
}
