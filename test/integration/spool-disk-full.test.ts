/**
 * The spool on a real filesystem that runs out of space (a small tmpfs): a full disk is
 * backpressure, never a lost, failed or duplicated entry, and the spool resumes by itself when
 * space comes back. The ack path survives ENOSPC too.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Spool, type SpoolDiskError, type SpoolEntry } from '../../gateway/ingest/spool.js';
import { waitFor } from '../helpers/gateway.js';
import { fillDisk, mountTmpfs } from '../helpers/tmpfs.js';

const KIB = 1024;

function entry(n: number): SpoolEntry {
  const value = Buffer.alloc(900 + (n % 200), n % 251);
  value.write(`entry-${n}:`);
  return { key: `agent-${n % 5}`, value };
}

async function readAll(spool: Spool): Promise<Array<{ seq: number; key: string; value: Buffer }>> {
  return spool.read(spool.pendingFrom(), 1_000_000);
}

function assertExactly(got: Array<{ seq: number; key: string; value: Buffer }>, n: number, from = 0) {
  assert.equal(got.length, n, `${n} entries, each once`);
  got.forEach((r, i) => {
    const want = entry(from + i);
    assert.equal(r.seq, from + i + 1, 'seqs are contiguous');
    assert.equal(r.key, want.key);
    assert.deepEqual(r.value, Buffer.from(want.value));
  });
}

test('a full disk makes appends wait (blocked, retried), and they complete exactly once when space returns', async (t) => {
  const mount = mountTmpfs(t, 512 * KIB);
  if (!mount) return;
  const dir = path.join(mount, 'spool');
  const errors: SpoolDiskError[] = [];
  // Small segments, so retried groups also cross segment rolls.
  const spool = await Spool.open(dir, {
    segmentBytes: 16 * KIB,
    fsyncIntervalMs: 2,
    retryMs: 20,
    onDiskError: (e) => errors.push(e),
  });
  t.after(() => spool.close().catch(() => {}));
  await spool.append([entry(0), entry(1)]);
  const filler = fillDisk(mount);

  // Appends keep coming (one batch per "agent" in flight, as the gateway does), none may fail.
  const results: Array<Promise<unknown>> = [];
  let n = 2;
  const batch = () => {
    const b: SpoolEntry[] = [];
    for (let k = 0; k < 3; k++) b.push(entry(n++));
    return b;
  };
  for (let i = 0; i < 60; i++) results.push(spool.append(batch()));
  await waitFor(() => spool.stats().blocked, 5000, 'the spool blocked on ENOSPC');
  assert.equal(spool.isFull(), true, 'a blocked spool reports itself full');
  assert.ok(errors.length > 0 && errors.every((e) => e.op === 'write'));
  assert.ok(
    errors.some((e) => e.code === 'ENOSPC'),
    `ENOSPC reported: ${errors.map((e) => e.code)}`,
  );
  // Still blocked a while later: retried, not failed.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(spool.stats().blocked, true);
  // Appends arriving now wait behind it, counted as the full spool's waits are.
  for (let i = 0; i < 5; i++) results.push(spool.append(batch()));
  assert.ok(spool.stats().fullWaits > 0, 'appends arriving meanwhile count as full waits');

  rmSync(filler);
  const outcomes = await Promise.allSettled(results);
  assert.deepEqual(
    outcomes.filter((o) => o.status === 'rejected'),
    [],
    'no append failed',
  );
  assert.equal(spool.stats().blocked, false, 'resumed by itself');
  assertExactly(await readAll(spool), n);
  await spool.close();

  // And exactly that is on disk: no torn or doubled entry survives a reopen.
  const again = await Spool.open(dir);
  t.after(() => again.close());
  assertExactly(await readAll(again), n);
  assert.equal(again.recovery.truncatedBytes, 0);
});

test('an ack while the disk is full does not fail: shipping moves on, the ack is written when space returns', async (t) => {
  const mount = mountTmpfs(t, 256 * KIB);
  if (!mount) return;
  const dir = path.join(mount, 'spool');
  const errors: SpoolDiskError[] = [];
  const spool = await Spool.open(dir, {
    fsyncIntervalMs: 0,
    retryMs: 20,
    onDiskError: (e) => errors.push(e),
  });
  t.after(() => spool.close().catch(() => {}));
  for (let i = 0; i < 20; i++) await spool.append([entry(i)]);
  const filler = fillDisk(mount);

  // A partial ack frees no segment, so the ack file itself cannot be written.
  await spool.ack(10);
  assert.equal(spool.pendingFrom(), 11, 'shipping resumes after the ack in memory');
  assert.equal(spool.stats().ackUnpersisted, true);
  assert.ok(
    errors.some((e) => e.op === 'ack' && e.code === 'ENOSPC'),
    'the failed ack write is reported',
  );
  await spool.ack(12);
  assert.equal(spool.pendingFrom(), 13);

  rmSync(filler);
  await waitFor(() => !spool.stats().ackUnpersisted, 5000, 'the ack written after space returned');
  await spool.close();
  const again = await Spool.open(dir);
  t.after(() => again.close());
  assert.equal(again.pendingFrom(), 13, 'the persisted ack is the latest one');
  assertExactly(await readAll(again), 8, 12);
});

test('close while the disk stays full gives up after closeRetryMs and rejects what it could not write', async (t) => {
  const mount = mountTmpfs(t, 256 * KIB);
  if (!mount) return;
  const spool = await Spool.open(path.join(mount, 'spool'), {
    fsyncIntervalMs: 0,
    retryMs: 10,
    closeRetryMs: 100,
  });
  await spool.append([entry(0)]);
  fillDisk(mount);
  // More than the page the segment already has: it needs new space.
  const stuck = spool.append(Array.from({ length: 12 }, (_, i) => entry(i + 1)));
  const refused = assert.rejects(stuck, /spool closed while writing failed/);
  await waitFor(() => spool.stats().blocked, 5000, 'blocked');
  await spool.close();
  await refused;
});
