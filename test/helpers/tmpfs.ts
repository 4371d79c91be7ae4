/**
 * A small real filesystem that fills up: a tmpfs of a given size, mounted for one test and
 * unmounted after it. Mounting needs root (CI runs as root); where it is impossible the test is
 * skipped with a loud message that says why, never silently.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

/** Mounts a tmpfs of `bytes` at a fresh directory; undefined (test skipped, said loudly) when impossible. */
export function mountTmpfs(t: TestContext, bytes: number): string | undefined {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fg-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const why = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim();
    const message = `SKIPPED: cannot mount a tmpfs to fill a disk (needs root / CAP_SYS_ADMIN): ${why}`;
    console.error(`\n*** ${message} ***\n`);
    t.skip(message);
    return undefined;
  }
  t.after(() => {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  return dir;
}

/**
 * Fills the filesystem of `dir` with a file until a write fails with ENOSPC; returns its path
 * (delete it to give the space back).
 */
export function fillDisk(dir: string, name = 'filler'): string {
  const file = path.join(dir, name);
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  writeFileSync(file, '');
  for (let size = chunk.length; size >= 1; size = Math.floor(size / 2)) {
    try {
      for (;;) writeFileSync(file, chunk.subarray(0, size), { flag: 'a' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    }
  }
  return file;
}
