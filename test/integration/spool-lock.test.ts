/**
 * The spool lock is released by the kernel when its owner dies: a gateway
 * killed with SIGKILL — here left a zombie, never reaped, so its pid still "exists" — does not
 * block the next opener, while a live owner is refused with its pid. A spool path too long for
 * a socket file locks through Linux's abstract namespace the same way.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { lockAddress, lockSpoolDir, openSpoolExclusive } from '../../gateway/ingest/spool-lock.js';
import { ROOT, tempDir, waitFor } from '../helpers/gateway.js';

const OWNER = `
import { openSpoolExclusive } from './gateway/ingest/spool-lock.ts';
await openSpoolExclusive(process.argv[1]);
console.log('locked');
setInterval(() => {}, 1000);
`;

test('a SIGKILLed owner (a zombie, pid still present) does not block; a live one is refused with its pid', async (t) => {
  const dir = path.join(tempDir(t), 'spool');
  // sh starts the owner in the background and becomes \`sleep\`, which never reaps it: after
  // SIGKILL the owner stays a zombie whose pid answers kill(pid, 0).
  const sh = spawn(
    'sh',
    [
      '-c',
      `${process.execPath} --import tsx --input-type=module -e "$0" "$1" & echo "pid $!"; exec sleep 60`,
      OWNER,
      dir,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => sh.kill('SIGKILL'));
  let out = '';
  sh.stdout!.on('data', (d) => {
    out += String(d);
  });
  await waitFor(() => out.includes('locked'), 30_000, 'the owner locked the spool');
  const pid = Number(/pid (\d+)/.exec(out)![1]);

  await assert.rejects(openSpoolExclusive(dir), new RegExp(`in use by process ${pid}`));

  process.kill(pid, 'SIGKILL');
  await waitFor(() => readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z', 5000, 'a zombie');
  process.kill(pid, 0); // still "exists": a pid check would call the spool in use
  const spool = await openSpoolExclusive(dir);
  await spool.close();
  // Released on close: the next one gets it too.
  const again = await openSpoolExclusive(dir);
  await again.close();
});

test('a spool path too long for a socket file locks through the abstract namespace', async (t) => {
  const dir = path.join(tempDir(t), 'x'.repeat(60), 'y'.repeat(60), 'spool');
  mkdirSync(dir, { recursive: true });
  assert.equal(lockAddress(dir).abstract, true);
  const release = await lockSpoolDir(dir);
  await assert.rejects(lockSpoolDir(dir), new RegExp(`in use by process ${process.pid}`));
  await release();
  const second = await lockSpoolDir(dir);
  await second();
});
