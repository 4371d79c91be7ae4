/**
 * The spool lock is released by the kernel when its owner dies: a gateway
 * killed with SIGKILL — here left a zombie, never reaped, so its pid still "exists" — does not
 * block the next opener, while a live owner is refused with its pid. A spool path too long for
 * a socket file locks through Linux's abstract namespace the same way. The adoption of another
 * process's spool (spool-adoption.ts) leaves one in use to its owner and takes it once free.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { IngestPipeline } from '../../gateway/ingest/pipeline.js';
import { Spool } from '../../gateway/ingest/spool.js';
import { adoptOrphanedSpools } from '../../gateway/ingest/spool-adoption.js';
import { lockAddress, lockSpoolDir, openSpoolExclusive } from '../../gateway/ingest/spool-lock.js';
import { createLogger } from '../../platform/obs/logger.js';
import { createMetrics } from '../../platform/obs/metrics.js';
import { ROOT, tempDir, waitFor } from '../helpers/gateway.js';
import { writeSpoolRecords } from '../helpers/spool.js';

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

test('adoption: a spool whose lock a live process holds is left to it, taken once free; without Kafka it keeps its records', async (t) => {
  const root = path.join(tempDir(t), 'spool');
  const orphan = path.join(root, 'p3');
  await writeSpoolRecords(orphan, 'old/p3', 'orphan-p3', 30);
  const release = await lockSpoolDir(orphan); // p3 of an earlier run, still running
  const lines: string[] = [];
  const logger = createLogger('info', { write: (l: string) => lines.push(l) });
  const own = await openSpoolExclusive(root);
  const pipeline = new IngestPipeline({
    spool: own,
    kafka: undefined,
    workers: 0,
    gatewayId: 'gw',
    metrics: createMetrics(),
    logger,
  });
  t.after(() => pipeline.close());
  const adoption = adoptOrphanedSpools({
    orphans: [{ dir: orphan, removeWhenDrained: true }],
    pipeline,
    logger,
    metrics: createMetrics(),
    retryMs: 50,
  });
  t.after(() => adoption.stop());
  await waitFor(() => lines.some((l) => l.includes('is in use')), 5000, 'the in-use line');
  await release();
  // The retry timer is unref'd (a gateway's listeners keep its process alive): so is nothing here.
  const alive = setInterval(() => {}, 1000);
  t.after(() => clearInterval(alive));
  await adoption.finished;
  const said = (text: string) =>
    lines.filter((l) => l.includes(text)).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(said('is in use').length, 1, 'said once, however often it was tried');
  const [warning] = said('no Kafka is configured');
  assert.deepEqual([warning?.dir, warning?.records], [orphan, 30]);
  // Left as it was: every record still pending there, the directory kept.
  const spool = await Spool.open(orphan);
  assert.equal(spool.stats().entries, 30);
  await spool.close();
});
