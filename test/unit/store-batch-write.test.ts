/**
 * platform/store/batch-write.ts with a fake client that throttles: requests of 25, the parallel
 * bound, unprocessed items sent again, what is left after maxAttempts returned (batchWrite) or
 * thrown (batchWriteAll). The callers' writes are tested against dynalite in their own tests.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchWrite, batchWriteAll, type WriteRequest } from '../../platform/store/batch-write.js';

type Sent = { RequestItems: Record<string, WriteRequest[]> };

/** A client that leaves the last `stingy(n)` items of the n-th send unprocessed. */
function fakeDoc(stingy: (sendNo: number, size: number) => number) {
  const sends: WriteRequest[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const doc = {
    async send(cmd: { input: Sent }) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 2));
      inFlight--;
      const reqs = cmd.input.RequestItems.t!;
      sends.push(reqs);
      const keep = stingy(sends.length, reqs.length);
      return keep > 0 ? { UnprocessedItems: { t: reqs.slice(reqs.length - keep) } } : {};
    },
  };
  return { doc: doc as never, sends, maxInFlight: () => maxInFlight };
}

const puts = (n: number): WriteRequest[] =>
  Array.from({ length: n }, (_, i) => ({ PutRequest: { Item: { id: i } } }));

test('requests of 25, at most `parallel` in flight, every item sent once when nothing is throttled', async () => {
  const f = fakeDoc(() => 0);
  const left = await batchWrite(f.doc, 't', puts(110), { parallel: 3 });
  assert.deepEqual(left, []);
  assert.deepEqual(
    f.sends.map((s) => s.length).sort((a, b) => b - a),
    [25, 25, 25, 25, 10],
  );
  assert.ok(f.maxInFlight() <= 3 && f.maxInFlight() >= 2, `in flight ${f.maxInFlight()}`);
});

test('unprocessed items are sent again until written; onSend sees each send', async () => {
  // The first two sends leave 5 items each; later sends write everything.
  const f = fakeDoc((n) => (n <= 2 ? 5 : 0));
  const seen: Array<[number, number]> = [];
  const left = await batchWrite(f.doc, 't', puts(20), {
    baseDelayMs: 1,
    onSend: (a, b) => seen.push([a, b]),
  });
  assert.deepEqual(left, []);
  assert.deepEqual(seen, [
    [20, 5],
    [5, 5],
    [5, 0],
  ]);
});

test('after maxAttempts the rest is returned, or thrown by batchWriteAll with the caller named', async () => {
  const always = () => fakeDoc((_n, size) => Math.min(size, 3));
  const left = await batchWrite(always().doc, 't', puts(10), { maxAttempts: 3, baseDelayMs: 1 });
  assert.equal(left.length, 3);
  await assert.rejects(
    batchWriteAll(always().doc, 't', puts(10), 'registry evictions', { maxAttempts: 2, baseDelayMs: 1 }),
    /registry evictions: 3 of 10 writes left unprocessed by BatchWriteItem/,
  );
});
