/** The `machine` block every benchmark's JSON carries (docs/environment.md, "Benchmarks"). */
import { readFileSync } from 'node:fs';
import os from 'node:os';

export function readProc(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
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
