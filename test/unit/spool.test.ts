import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { Spool, SpoolCorruptError, type SpoolEntry } from '../../gateway/ingest/spool.js';

const KIB = 1024;

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fleetgate-spool-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => /^segment-\d{20}\.log$/.test(f)).sort();
}

/** Entry `n`: its key and a value of varying size that names n, so content checks are exact. */
function entry(n: number, size = 50 + ((n * 37) % 250)): SpoolEntry {
  const head = Buffer.from(`entry-${n}:`);
  const value = Buffer.alloc(Math.max(size, head.length), n % 251);
  head.copy(value);
  return { key: `agent-${n % 7}`, value };
}

function assertEntries(
  got: Array<{ seq: number; key: string; value: Buffer }>,
  fromSeq: number,
  n: number,
  make: (n: number) => SpoolEntry = entry,
) {
  assert.equal(got.length, n);
  got.forEach((r, i) => {
    const want = make(fromSeq + i - 1); // seqs start at 1, entry numbers at 0
    assert.equal(r.seq, fromSeq + i);
    assert.equal(r.key, want.key);
    assert.deepEqual(r.value, Buffer.from(want.value));
  });
}

/** Appends entries 0..n-1 (seqs 1..n) in batches of 1..5. */
async function fill(spool: Spool, n: number, start = 0): Promise<void> {
  let i = start;
  while (i < start + n) {
    const batch: SpoolEntry[] = [];
    for (let k = 0; k < 1 + (i % 5) && i < start + n; k++) batch.push(entry(i++));
    const r = await spool.append(batch);
    assert.equal(r.lastSeq - r.firstSeq + 1, batch.length);
  }
}

/** Size of the frame at `offset`: header, key, payload. */
function frameSize(segment: Buffer, offset: number): number {
  return 10 + segment.readUInt16LE(offset + 8) + segment.readUInt32LE(offset);
}

async function pendingAfter(p: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await new Promise((r) => setTimeout(r, ms));
  return !settled;
}

test('append/read round trip in order across segment rolls, and after reopen', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open(dir, { segmentBytes: 4 * KIB, fsyncIntervalMs: 1 });
  assert.equal(spool.nextSeq(), 1);
  assert.equal(spool.firstSeq(), 1);
  await fill(spool, 300);
  assert.equal(spool.nextSeq(), 301);

  const files = await segmentFiles(dir);
  assert.ok(files.length > 10, `expected many segments, got ${files.length}`);
  assert.equal(files[0], 'segment-00000000000000000001.log');
  for (const f of files) assert.ok((await stat(path.join(dir, f))).size <= 4 * KIB);

  assertEntries(await spool.read(1, 1000), 1, 300);
  assertEntries(await spool.read(123, 40), 123, 40); // from the middle, via the sparse index
  assertEntries(await spool.read(163, 10), 163, 10); // continues from the read cursor
  const limited = await spool.read(10, 1000, 1000); // byte budget
  assert.ok(limited.length > 1 && limited.length < 20);
  assert.ok(limited.reduce((n, r) => n + r.key.length + r.value.length, 0) <= 1000);
  assertEntries(limited, 10, limited.length);
  assert.equal((await spool.read(1, 10, 1)).length, 1, 'an entry over the byte budget still comes alone');
  assert.deepEqual(await spool.read(301, 10), []);

  const s = spool.stats();
  assert.equal(s.entries, 300);
  assert.equal(s.segments, files.length);
  assert.equal(s.ackedSeq, 0);
  await spool.close();
  await assert.rejects(spool.append([entry(0)]), { name: 'SpoolClosedError' });

  const again = await Spool.open(dir, { segmentBytes: 4 * KIB });
  t.after(() => again.close());
  assert.equal(again.recovery.truncatedBytes, 0);
  assert.equal(again.nextSeq(), 301);
  assert.equal(again.pendingFrom(), 1);
  assertEntries(await again.read(1, 1000), 1, 300);
  assert.deepEqual(await again.append([entry(300)]), { firstSeq: 301, lastSeq: 301 });
  assertEntries(await again.read(295, 1000), 295, 7);
});

test('an entry larger than segmentBytes gets a segment of its own', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open(dir, { segmentBytes: 4 * KIB, fsyncIntervalMs: 0 });
  t.after(() => spool.close());
  const make = (n: number) => entry(n, n === 1 ? 10 * KIB : 100);
  await spool.append([make(0), make(1), make(2)]);
  assert.equal((await segmentFiles(dir)).length, 3);
  assertEntries(await spool.read(1, 10), 1, 3, make);
});

test('group commit: concurrent appends share fsyncs and resolve in call order', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open(dir, { fsyncIntervalMs: 20 });
  t.after(() => spool.close());
  const resolved: number[] = [];
  const results = await Promise.all(
    Array.from({ length: 500 }, (_, i) =>
      spool.append([entry(i)]).then((r) => {
        resolved.push(i);
        return r;
      }),
    ),
  );
  assert.deepEqual(
    results,
    results.map((_, i) => ({ firstSeq: i + 1, lastSeq: i + 1 })),
  );
  assert.deepEqual(
    resolved,
    Array.from({ length: 500 }, (_, i) => i),
  );
  const { fsyncs } = spool.stats();
  assert.ok(fsyncs >= 1 && fsyncs <= 5, `500 concurrent appends took ${fsyncs} fsyncs`);
  assertEntries(await spool.read(1, 1000), 1, 500);
});

test('read sees only fsynced entries', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open(dir, { fsyncIntervalMs: 200 });
  t.after(() => spool.close());
  const p = spool.append([entry(0)]);
  assert.equal(spool.nextSeq(), 2);
  assert.deepEqual(await spool.read(1, 10), []);
  await assert.rejects(spool.ack(1), RangeError);
  await p;
  assertEntries(await spool.read(1, 10), 1, 1);
});

test('ack persists, deletes fully shipped segments, and reopen resumes at ack + 1', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open(dir, { segmentBytes: 4 * KIB, fsyncIntervalMs: 1 });
  await fill(spool, 200);
  const before = await segmentFiles(dir);
  const bytesBefore = spool.stats().bytes;

  // Seq 100 sits inside some segment: that one must stay, every earlier one goes.
  await spool.ack(100);
  const after = await segmentFiles(dir);
  const firstKept = Number(after[0]!.slice(8, 28));
  assert.ok(firstKept <= 101, 'the segment holding seq 101 is kept');
  assert.ok(after.length < before.length);
  assert.deepEqual(after, before.slice(before.length - after.length));
  assert.equal(spool.firstSeq(), firstKept);
  assert.equal(spool.pendingFrom(), 101);
  assert.equal(spool.stats().ackedSeq, 100);
  assert.equal(spool.stats().entries, 100);
  assert.ok(spool.stats().bytes < bytesBefore);
  assert.equal(await readFile(path.join(dir, 'ack'), 'utf8'), '100\n');
  assertEntries(await spool.read(spool.pendingFrom(), 1000), 101, 100);
  // A read from a deleted seq starts at the first entry still stored.
  assert.equal((await spool.read(1, 1))[0]!.seq, firstKept);
  await spool.ack(50); // an older ack is a no-op
  assert.equal(spool.stats().ackedSeq, 100);
  await assert.rejects(spool.ack(201), RangeError);
  await spool.close();

  const again = await Spool.open(dir, { segmentBytes: 4 * KIB, fsyncIntervalMs: 1 });
  assert.equal(again.pendingFrom(), 101);
  assert.equal(again.stats().ackedSeq, 100);
  assert.equal(again.nextSeq(), 201);
  assertEntries(await again.read(again.pendingFrom(), 1000), 101, 100);

  // Acking everything removes the active segment too; the next append starts a fresh one.
  await again.ack(200);
  assert.deepEqual(await segmentFiles(dir), []);
  assert.equal(again.stats().bytes, 0);
  assert.deepEqual(await again.read(1, 10), []);
  assert.deepEqual(await again.append([entry(200)]), { firstSeq: 201, lastSeq: 201 });
  assert.deepEqual(await segmentFiles(dir), ['segment-00000000000000000201.log']);
  await again.close();

  const third = await Spool.open(dir);
  t.after(() => third.close());
  assert.equal(third.pendingFrom(), 201);
  assertEntries(await third.read(third.pendingFrom(), 10), 201, 1);
});

test('reopen after all segments were deleted continues the sequence from the ack', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open(dir, { fsyncIntervalMs: 0 });
  await fill(spool, 10);
  await spool.ack(10);
  await spool.close();
  assert.deepEqual(await segmentFiles(dir), []);
  const again = await Spool.open(dir, { fsyncIntervalMs: 0 });
  t.after(() => again.close());
  assert.equal(again.nextSeq(), 11);
  assert.equal(again.pendingFrom(), 11);
  assert.deepEqual(await again.append([entry(10)]), { firstSeq: 11, lastSeq: 11 });
});

for (const damage of ['cut inside an entry', 'garbage appended'] as const) {
  test(`a torn tail (${damage}) is truncated on open and every complete entry is recovered`, async (t) => {
    const dir = await tempDir(t);
    const spool = await Spool.open(dir, { segmentBytes: 4 * KIB, fsyncIntervalMs: 1 });
    await fill(spool, 100);
    await spool.close();
    const files = await segmentFiles(dir);
    const last = path.join(dir, files.at(-1)!);
    const size = (await stat(last)).size;
    const firstInLast = Number(files.at(-1)!.slice(8, 28));
    let kept: number; // complete entries expected in the last segment afterwards
    if (damage === 'cut inside an entry') {
      // Entries are at least 60 bytes: cutting 5 bytes tears exactly the last one.
      await truncate(last, size - 5);
      kept = 100 - firstInLast; // seqs firstInLast..99
    } else {
      await appendFile(last, Buffer.from([7, 0, 0, 0, 1, 2, 3, 4, 0, 0, 9, 9, 9]));
      kept = 101 - firstInLast;
    }

    const again = await Spool.open(dir, { segmentBytes: 4 * KIB, fsyncIntervalMs: 1 });
    t.after(() => again.close());
    const expectedTruncated = damage === 'cut inside an entry' ? size - 5 - (await stat(last)).size : 13;
    assert.equal(again.recovery.truncatedBytes, expectedTruncated);
    assert.ok(again.recovery.truncatedBytes > 0);
    assert.equal(again.stats().truncatedBytes, again.recovery.truncatedBytes);
    const total = firstInLast - 1 + kept;
    assert.equal(again.nextSeq(), total + 1);
    assertEntries(await again.read(1, 1000), 1, total);
    // Appends continue right after the recovered prefix, and survive another reopen.
    assert.deepEqual(await again.append([entry(total)]), { firstSeq: total + 1, lastSeq: total + 1 });
    await again.close();
    const third = await Spool.open(dir, { segmentBytes: 4 * KIB });
    t.after(() => third.close());
    assert.equal(third.recovery.truncatedBytes, 0);
    assertEntries(await third.read(1, 1000), 1, total + 1);
  });
}

test('a flipped byte in a middle segment throws on open; skipCorrupt counts and skips it', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open(dir, { segmentBytes: 4 * KIB, fsyncIntervalMs: 1 });
  await fill(spool, 150);
  await spool.close();
  const files = await segmentFiles(dir);
  assert.ok(files.length >= 4);
  const victim = files[2]!;
  const victimPath = path.join(dir, victim);
  const bytes = await readFile(victimPath);
  // Flip the last payload byte of the segment's second entry: its frame stays well-formed, its CRC not.
  const second = frameSize(bytes, 0);
  const flipAt = second + frameSize(bytes, second) - 1;
  bytes[flipAt]! ^= 0x40;
  await writeFile(victimPath, bytes);

  await assert.rejects(Spool.open(dir), (err: unknown) => {
    assert.ok(err instanceof SpoolCorruptError);
    assert.equal(err.file, victim);
    assert.equal(err.offset, second);
    assert.match(err.message, new RegExp(`CRC mismatch in ${victim} at offset ${second}`));
    return true;
  });
  // Nothing was truncated or deleted by the failed open.
  assert.deepEqual(await segmentFiles(dir), files);
  assert.equal((await stat(victimPath)).size, bytes.length);

  const skipping = await Spool.open(dir, { skipCorrupt: true, segmentBytes: 4 * KIB });
  t.after(() => skipping.close());
  const { skippedBytes, truncatedBytes } = skipping.stats();
  assert.equal(skippedBytes, bytes.length - second);
  assert.equal(truncatedBytes, 0);
  const victimFirst = Number(victim.slice(8, 28));
  const nextFirst = Number(files[3]!.slice(8, 28));
  const all = await skipping.read(1, 1000);
  const seqs = all.map((r) => r.seq);
  // Everything outside the damaged segment is intact; inside it, only entries before the damage.
  assertEntries(
    all.filter((r) => r.seq < victimFirst),
    1,
    victimFirst - 1,
  );
  assertEntries(
    all.filter((r) => r.seq >= nextFirst),
    nextFirst,
    150 - nextFirst + 1,
  );
  assert.deepEqual(
    seqs.filter((s) => s >= victimFirst && s < nextFirst),
    [victimFirst],
  );
  assert.equal(skipping.nextSeq(), 151);
});

test('a middle segment cut at an entry boundary is corruption too', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open(dir, { segmentBytes: 4 * KIB, fsyncIntervalMs: 1 });
  await fill(spool, 100);
  await spool.close();
  const files = await segmentFiles(dir);
  const victim = path.join(dir, files[1]!);
  // Keep exactly the first entry of the segment: every frame is valid, entries are missing.
  await truncate(victim, frameSize(await readFile(victim), 0));
  await assert.rejects(Spool.open(dir), SpoolCorruptError);
});

test('maxBytes makes append wait (backpressure) until an ack frees a segment', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open(dir, { segmentBytes: 4 * KIB, maxBytes: 12 * KIB, fsyncIntervalMs: 1 });
  t.after(() => spool.close());
  const big = (n: number) => entry(n, 1000);
  const frame = 10 + 'agent-0'.length + 1000; // 4 fit in a 4 KiB segment
  let n = 0;
  // Fill until two more entries would not fit.
  while (spool.stats().bytes + 2 * frame <= 12 * KIB) await spool.append([big(n++)]);
  assert.equal(spool.isFull(), false);
  const blocked = spool.append([big(n++), big(n++)]);
  const behind = spool.append([big(n++)]); // must wait behind it, even if it would fit alone
  assert.equal(await pendingAfter(blocked, 100), true, 'append waits while the spool is full');
  assert.equal(await pendingAfter(behind, 0), true);
  assert.equal(spool.isFull(), true);
  assert.equal(spool.stats().fullWaits, 2);
  assert.ok(spool.stats().bytes <= 12 * KIB);

  await spool.ack(4); // entries 1..4 fill the first segment exactly: it is deleted
  const r = await blocked;
  assert.deepEqual(r, { firstSeq: n - 2, lastSeq: n - 1 });
  assert.deepEqual(await behind, { firstSeq: n, lastSeq: n });
  assert.equal(spool.isFull(), false);
  assert.ok(spool.stats().bytes <= 12 * KIB);
  assertEntries(await spool.read(5, 1000), 5, n - 4, big);
  await assert.rejects(
    spool.append([entry(0, 13 * KIB)]),
    RangeError,
    'a batch that can never fit is refused',
  );
});

test('close rejects appends still waiting for space and writes everything admitted', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open(dir, { segmentBytes: 4 * KIB, maxBytes: 4 * KIB, fsyncIntervalMs: 1000 });
  const admitted = spool.append([entry(0, 3000)]);
  const waiting = assert.rejects(spool.append([entry(1, 3000)]), { name: 'SpoolClosedError' });
  const started = Date.now();
  await spool.close();
  assert.ok(Date.now() - started < 500, 'close does not wait out the 1 s group-commit window');
  assert.deepEqual(await admitted, { firstSeq: 1, lastSeq: 1 });
  await waiting;
  const again = await Spool.open(dir);
  t.after(() => again.close());
  assertEntries(await again.read(1, 10), 1, 1, (n) => entry(n, 3000));
});

test('bad input is refused, not written', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open(dir, { fsyncIntervalMs: 0 });
  t.after(() => spool.close());
  await assert.rejects(spool.append([{ key: 'k'.repeat(70_000), value: new Uint8Array(1) }]), RangeError);
  assert.equal(spool.nextSeq(), 1);
  await assert.rejects(Spool.open(dir, { segmentBytes: 0 }), RangeError);
  assert.deepEqual(await spool.append([]), { firstSeq: 1, lastSeq: 0 });
  assert.deepEqual(await spool.append([{ key: 'ключ', value: new Uint8Array(0) }]), {
    firstSeq: 1,
    lastSeq: 1,
  });
  assert.deepEqual(await spool.read(1, 10), [{ seq: 1, key: 'ключ', value: Buffer.alloc(0) }]);
});

test('a damaged ack file is an error unless skipCorrupt (which re-ships everything)', async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open(dir, { fsyncIntervalMs: 0 });
  await fill(spool, 5);
  await spool.ack(3);
  await spool.close();
  await writeFile(path.join(dir, 'ack'), 'x1');
  await assert.rejects(Spool.open(dir), SpoolCorruptError);
  const again = await Spool.open(dir, { skipCorrupt: true });
  t.after(() => again.close());
  assert.equal(again.pendingFrom(), 1);
  assertEntries(await again.read(again.pendingFrom(), 10), 1, 5);
});

test('property: any sequence of append batches reads back identically after close and reopen', async (t) => {
  const root = await tempDir(t);
  let run = 0;
  const entryArb = fc.record({
    key: fc.string({ maxLength: 40, unit: 'grapheme' }),
    value: fc.uint8Array({ maxLength: 2 * KIB }),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(entryArb, { maxLength: 8 }), { maxLength: 25 }),
      fc.integer({ min: 1 * KIB, max: 16 * KIB }),
      fc.boolean(),
      async (batches, segmentBytes, concurrent) => {
        const dir = path.join(root, String(run++));
        const spool = await Spool.open(dir, { segmentBytes, fsyncIntervalMs: 1 });
        if (concurrent) await Promise.all(batches.map((b) => spool.append(b)));
        else for (const b of batches) await spool.append(b);
        await spool.close();

        const again = await Spool.open(dir, { segmentBytes });
        try {
          const want = batches.flat();
          assert.equal(again.recovery.truncatedBytes, 0);
          assert.equal(again.nextSeq(), want.length + 1);
          const got = await again.read(1, want.length + 10);
          assert.deepEqual(
            got.map((r) => ({ key: r.key, value: new Uint8Array(r.value) })),
            want.map((e) => ({ key: e.key, value: new Uint8Array(e.value) })),
          );
          assert.deepEqual(
            got.map((r) => r.seq),
            want.map((_, i) => i + 1),
          );
        } finally {
          await again.close();
          await rm(dir, { recursive: true, force: true });
        }
      },
    ),
    { numRuns: 40 },
  );
});
