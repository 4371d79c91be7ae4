import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { elkeidStatus, goJson, pickDetail, prepareDetail } from '../../discovery/balance.js';
import { CachedValue, DEFAULT_CACHE_TIMING } from '../../discovery/cache.js';
import type { RegistryInstance } from '../../discovery/registry-store.js';
import { parseCount, sdAuthReason } from '../../discovery/routes.js';

const NOW = 1_700_000_000_000;
const inst = (
  port: number,
  weight: number,
  limit?: number,
  expiresAtMs = NOW + 10_000,
): RegistryInstance => ({
  name: 'hids_svr_grpc',
  ip: '10.0.0.1',
  port,
  weight,
  extra: null,
  ...(limit !== undefined ? { limit } : {}),
  createdAt: NOW - 5000,
  updatedAt: NOW - 1000,
  expiresAtMs,
});
const portsOf = (json: string) => (JSON.parse(json) as Array<{ port: number }>).map((i) => i.port);

describe('balance', () => {
  test('order: ratio, then limit-less by weight; expired and full left out', () => {
    const p = prepareDetail(
      [
        inst(1, 5),
        inst(2, 50, 100),
        inst(3, 1, 100),
        inst(4, 0),
        inst(5, 100, 100),
        inst(6, 0, 100, NOW - 1),
      ],
      NOW,
    );
    assert.equal(p.total, 4);
    assert.deepEqual(portsOf(pickDetail(p, Number.POSITIVE_INFINITY, NOW)), [3, 2, 4, 1]);
    assert.deepEqual(portsOf(pickDetail(p, 2, NOW)), [3, 2]);
    // Expired since prepare: left out of a fresh answer, kept in a stale one.
    assert.deepEqual(portsOf(pickDetail(p, 10, NOW + 20_000)), []);
    assert.deepEqual(portsOf(pickDetail(p, 10, undefined)), [3, 2, 4, 1]);
  });

  test('ties are shuffled per request with the given random source', () => {
    const p = prepareDetail([inst(1, 10, 100), inst(2, 10, 100), inst(3, 10, 100), inst(4, 20, 100)], NOW);
    assert.equal(p.groups.length, 2);
    const seen = new Set<string>();
    let seed = 1;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    for (let i = 0; i < 50; i++) {
      const order = portsOf(pickDetail(p, 10, NOW, random));
      assert.equal(order[3], 4);
      assert.deepEqual([...order.slice(0, 3)].sort(), [1, 2, 3]);
      seen.add(order.join());
    }
    assert.equal(seen.size, 6, 'every permutation of the tie occurs');
  });

  test('Go JSON details', () => {
    assert.equal(goJson({ a: '<&>\u2028' }), '{"a":"\\u003c\\u0026\\u003e\\u2028"}');
    assert.deepEqual([0, 45, 46, 60, 61, 75, 90, 91, 500].map(elkeidStatus), [0, 0, 1, 1, 2, 2, 3, 4, 4]);
    assert.equal(parseCount(null), Number.POSITIVE_INFINITY);
    assert.equal(parseCount('0'), Number.POSITIVE_INFINITY);
    assert.equal(parseCount('10'), 10);
    assert.equal(parseCount('101'), 100);
    assert.equal(sdAuthReason('header missed: Signature'), 'header missed: AccessKey|Signature|TimeStamp');
    assert.equal(sdAuthReason('timestamp error'), 'TimeStamp Error');
    assert.equal(sdAuthReason('User not exist'), 'User not exist');
  });
});

describe('CachedValue', () => {
  function harness(background = true) {
    let t = 0;
    let fail = false;
    let loads = 0;
    let release: (() => void) | undefined;
    let gate = false;
    const c = new CachedValue(
      async () => {
        loads++;
        if (gate) await new Promise<void>((r) => (release = r));
        if (fail) throw new Error('store down');
        return `v${loads}`;
      },
      { ...DEFAULT_CACHE_TIMING, background },
      () => t,
    );
    return {
      c,
      at: (ms: number) => (t = ms),
      setFail: (f: boolean) => (fail = f),
      setGate: (g: boolean) => (gate = g),
      release: () => release?.(),
      loads: () => loads,
    };
  }

  test('fresh, refreshed in the background, stale while failing, recovered', async () => {
    const h = harness();
    assert.equal(h.c.peek(), undefined);
    const first = await h.c.read();
    assert.deepEqual([first.ok, first.ok && first.value], [true, 'v1']);
    h.at(500);
    const early = h.c.peek();
    assert.ok(early?.ok && !early.stale);
    assert.equal(h.loads(), 1);
    // Past freshness: served, one background refresh.
    h.at(1500);
    const r = h.c.peek();
    assert.ok(r?.ok && r.value === 'v1' && !r.stale);
    h.c.peek();
    await new Promise((res) => setImmediate(res));
    assert.equal(h.loads(), 2, 'single flight');
    // The store fails: after the next refresh the old value is stale.
    h.setFail(true);
    h.at(3000);
    h.c.peek();
    await new Promise((res) => setImmediate(res));
    const s = h.c.peek();
    assert.ok(s?.ok && s.stale && s.value === 'v2' && s.ageMs === 1500, JSON.stringify(s));
    // Retries at most every retryMs.
    const loads = h.loads();
    h.at(3500);
    h.c.peek();
    assert.equal(h.loads(), loads);
    h.at(4100);
    h.setFail(false);
    h.c.peek();
    await new Promise((res) => setImmediate(res));
    const back = h.c.peek();
    assert.ok(back?.ok && !back.stale && back.value === `v${h.loads()}`);
  });

  test('never loaded and failing: no value; idle past maxAge: the reader waits', async () => {
    const h = harness();
    h.setFail(true);
    const r = await h.c.read();
    assert.equal(r.ok, false);
    h.setFail(false);
    assert.equal((await h.c.read()).ok, true);
    h.at(60_000);
    assert.equal(h.c.peek(), undefined, 'too old to serve without asking');
    const fresh = await h.c.read();
    assert.ok(fresh.ok && !fresh.stale && fresh.fetchedAt === 60_000);
  });

  test('without background refresh (Lambda) a stale-aged read waits for the store', async () => {
    const h = harness(false);
    await h.c.read();
    h.at(1500);
    assert.equal(h.c.peek(), undefined);
    h.setGate(true);
    const pending = h.c.read();
    const pending2 = h.c.read();
    await new Promise((res) => setImmediate(res));
    h.release();
    const [a, b] = await Promise.all([pending, pending2]);
    assert.ok(a.ok && b.ok);
    assert.equal(h.loads(), 2, 'concurrent readers share one load');
  });
});

test('goJson escapes every unsafe character on every call (no stateful regex)', () => {
  for (let i = 0; i < 3; i++) assert.equal(goJson(['a<', 'b>', 'c&']), '["a\\u003c","b\\u003e","c\\u0026"]');
});
