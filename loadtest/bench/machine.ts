/** The `machine` block every benchmark's JSON carries (docs/environment.md, "Benchmarks"). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export function readProc(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * The fields of a /proc stat line (`/proc/<pid>/stat`, `/proc/<pid>/task/<tid>/stat`) after the
 * command name, which may hold spaces and parentheses: [0] state (field 3), [1] ppid, [2] pgrp,
 * [11] utime, [12] stime (clock ticks), [21] rss (pages). Undefined when unreadable (gone).
 */
export function procStatFields(file: string): string[] | undefined {
  const stat = readProc(file);
  return stat === undefined ? undefined : stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of `procStatFields`, in clock ticks. */
export const procCpuTicks = (fields: readonly string[]): number => Number(fields[11]) + Number(fields[12]);

let ticksPerS: number | undefined;
/** The clock ticks of /proc's utime and stime per second (`getconf CLK_TCK`; 100 if unknown). */
export function procTicksPerS(): number {
  ticksPerS ??= (() => {
    try {
      return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      return 100;
    }
  })();
  return ticksPerS;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryBytes: number;
  memory: string;
  node: string;
  openssl: string;
  os: string;
  loadAverageAtStart: number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.version,
    openssl: process.versions.openssl,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}
