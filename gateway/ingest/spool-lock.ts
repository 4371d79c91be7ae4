/**
 * One process per spool directory: two writers would interleave segments and acks. A `LOCK`
 * file holds the owner's pid; a lock left by a dead process (kill -9, crash) is taken over.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Spool, type SpoolOptions } from './spool.js';

export class SpoolLockedError extends Error {}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function lockSpoolDir(dir: string): () => void {
  const file = path.join(dir, 'LOCK');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new SpoolLockedError(`spool ${dir} is in use by process ${pid}; stop it first`);
      }
      rmSync(file, { force: true }); // stale: its owner is gone
    }
  }
  throw new SpoolLockedError(`could not lock spool ${dir}`);
}

/** Opens a spool for exclusive use; closing the returned spool releases the lock. */
export async function openSpoolExclusive(dir: string, opts?: SpoolOptions): Promise<Spool> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const release = lockSpoolDir(dir);
  try {
    const spool = await Spool.open(dir, opts);
    const close = spool.close.bind(spool);
    spool.close = async () => {
      try {
        await close();
      } finally {
        release();
      }
    };
    return spool;
  } catch (err) {
    release();
    throw err;
  }
}
