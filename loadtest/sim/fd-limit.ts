/**
 * The open-file limits of this process (Linux /proc; undefined elsewhere). Every simulated agent
 * holds one socket, and Node cannot raise its own limit: `ulimit -n` before starting (up to the
 * hard limit, which only a process with CAP_SYS_RESOURCE can raise).
 */
import { readFileSync } from 'node:fs';

export function openFileLimits(): { soft: number; hard: number } | undefined {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m) return undefined;
    const n = (v: string) => (v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v));
    return { soft: n(m[1]!), hard: n(m[2]!) };
  } catch {
    return undefined;
  }
}

/** Sockets and files a simulator process needs besides its agents' sockets. */
export const FD_MARGIN = 256;

/** Why `perProcess` agents do not fit this process's open-file limit, or undefined when they do. */
export function fdLimitProblem(perProcess: number, limits = openFileLimits()): string | undefined {
  if (!limits || perProcess + FD_MARGIN <= limits.soft) return undefined;
  const fit = Math.max(0, limits.soft - FD_MARGIN);
  const raise =
    limits.hard > limits.soft
      ? `raise it with \`ulimit -n ${Math.min(limits.hard, perProcess + FD_MARGIN)}\` (the hard limit is ${limits.hard})`
      : `the hard limit is ${limits.hard} and cannot be raised here without CAP_SYS_RESOURCE`;
  return `${perProcess} agents per process need ~${perProcess + FD_MARGIN} open files, this process may open ${limits.soft} (room for ${fit} agents): ${raise}, or spread the agents over more --processes`;
}
