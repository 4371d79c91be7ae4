/** The one retry helper: attempts, full-jitter waits, retryable filter, abort. */
import assert from 'node:assert/strict';
import test from 'node:test';
import { retryWithBackoff } from '../../platform/backoff.js';

const noSleep = (waits: number[]) => async (ms: number) => {
  waits.push(ms);
};

test('retries until success, waiting random(0, ceiling) between attempts', async () => {
  const waits: number[] = [];
  let calls = 0;
  const v = await retryWithBackoff(
    async () => {
      calls++;
      if (calls < 4) throw new Error(`fail ${calls}`);
      return 'ok';
    },
    { attempts: 10, baseMs: 100, capMs: 250, random: () => 0.5, sleep: noSleep(waits) },
  );
  assert.equal(v, 'ok');
  assert.equal(calls, 4);
  // ceilings 100, 200, 250 (capped); full jitter at 0.5 is half of each
  assert.deepEqual(waits, [50, 100, 125]);
});

test('gives up after `attempts` and throws the last error', async () => {
  const waits: number[] = [];
  let calls = 0;
  await assert.rejects(
    retryWithBackoff(
      async () => {
        calls++;
        throw new Error(`fail ${calls}`);
      },
      { attempts: 3, baseMs: 10, capMs: 1000, sleep: noSleep(waits) },
    ),
    /fail 3/,
  );
  assert.equal(calls, 3);
  assert.equal(waits.length, 2);
});

test('a failure that is not retryable is thrown at once', async () => {
  let calls = 0;
  await assert.rejects(
    retryWithBackoff(
      async () => {
        calls++;
        throw new TypeError('bad input');
      },
      { attempts: 5, baseMs: 1, capMs: 1, retryable: (e) => !(e instanceof TypeError) },
    ),
    TypeError,
  );
  assert.equal(calls, 1);
});

test('an abort ends the waiting and the last error is thrown', async () => {
  const ac = new AbortController();
  let calls = 0;
  const run = retryWithBackoff(
    async () => {
      calls++;
      throw new Error('down');
    },
    { attempts: Number.POSITIVE_INFINITY, baseMs: 60_000, capMs: 60_000, random: () => 1, signal: ac.signal },
  );
  setTimeout(() => ac.abort(), 20);
  await assert.rejects(run, /down/);
  assert.equal(calls, 2);
});

test('onRetry sees each failure with its attempt number and delay', async () => {
  const seen: Array<[string, number, number]> = [];
  let calls = 0;
  await retryWithBackoff(
    async () => {
      if (++calls < 3) throw new Error(`e${calls}`);
    },
    {
      attempts: 5,
      baseMs: 8,
      capMs: 100,
      random: () => 0.25,
      sleep: async () => {},
      onRetry: (err, n, d) => seen.push([(err as Error).message, n, d]),
    },
  );
  assert.deepEqual(seen, [
    ['e1', 1, 2],
    ['e2', 2, 4],
  ]);
});
