/**
 * gateway/agent/load-shedder.ts on a fake clock and a fake session registry: nothing happens
 * without a limit; above one, streams are ended with status OK at most `rate` per second, spread
 * out, oldest first (or at random), each once even while its close is pending; the limit change is
 * announced once. Admission at the desired limit is SessionRegistry's (a real one here).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createLoadShedder, oldest, type ShedOrder } from '../../gateway/agent/load-shedder.js';
import type { AgentSession } from '../../gateway/agent/sessions.js';
import { SessionRegistry } from '../../gateway/agent/sessions.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { createMetrics } from '../../platform/obs/metrics.js';

class FakeSession {
  live = true;
  closedWith: number | undefined;
  constructor(
    readonly agentId: string,
    readonly connectedAt: number,
  ) {}
  close(code: number) {
    this.closedWith = code;
    this.live = false;
  }
}

/** Sessions leave the registry `detachAfterTicks` ticks after their close (a pending flush). */
class FakeRegistry {
  readonly byId = new Map<string, FakeSession>();
  desired: number | undefined;
  constructor(readonly maxAgents: number) {}
  add(s: FakeSession) {
    this.byId.set(s.agentId, s);
  }
  all() {
    return this.byId.values();
  }
  get(id: string) {
    return this.byId.get(id);
  }
  get size() {
    return this.byId.size;
  }
  setDesiredLimit(n: number | undefined) {
    this.desired = n;
  }
  get effectiveLimit() {
    return this.desired === undefined ? this.maxAgents : Math.min(this.desired, this.maxAgents);
  }
  detachClosed() {
    for (const [id, s] of this.byId) if (!s.live) this.byId.delete(id);
  }
}

function rig(o: { sessions: number; rate: number; order?: ShedOrder; random?: () => number }) {
  let now = 1_000_000;
  let desired: number | undefined;
  const reg = new FakeRegistry(1000);
  // Connected in a shuffled order: age is connectedAt, not insertion.
  const ages = Array.from({ length: o.sessions }, (_, i) => i).sort(
    (a, b) => ((a * 7919) % 101) - ((b * 7919) % 101),
  );
  for (const i of ages) reg.add(new FakeSession(`agent-${i}`, 1000 + i));
  const shed: Array<{ id: string; at: number }> = [];
  const changes: Array<[number, number | undefined]> = [];
  const registry = new Registry();
  const shedder = createLoadShedder({
    sessions: reg as unknown as SessionRegistry,
    desiredLimit: () => desired,
    ratePerSecond: o.rate,
    order: o.order ?? 'oldest',
    logger: silentLogger(),
    registry,
    onLimitChange: (e, d) => changes.push([e, d]),
    onShed: (id, at) => shed.push({ id, at }),
    now: () => now,
    ...(o.random ? { random: o.random } : {}),
  });
  return {
    reg,
    shed,
    changes,
    registry,
    shedder,
    setLimit(n: number | undefined) {
      desired = n;
    },
    /** Advances the clock `ms` in 100 ms ticks; closed sessions leave the registry a tick later. */
    run(ms: number) {
      for (let t = 0; t < ms; t += 100) {
        now += 100;
        reg.detachClosed();
        shedder.tick();
      }
    },
  };
}

function maxPerSecond(times: number[]): number {
  let max = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while (times[hi]! - times[lo]! >= 1000) lo++;
    max = Math.max(max, hi - lo + 1);
  }
  return max;
}

test('no limit, or under it: nothing is shed; the gauge says -1 without a limit', async () => {
  const r = rig({ sessions: 30, rate: 50 });
  r.run(2000);
  assert.equal(r.shed.length, 0);
  assert.match(await r.registry.metrics(), /^fleetgate_gateway_desired_limit -1$/m);
  r.setLimit(30);
  r.run(2000);
  assert.equal(r.shed.length, 0);
  assert.deepEqual(r.changes, [[30, 30]]);
  assert.match(await r.registry.metrics(), /^fleetgate_gateway_desired_limit 30$/m);
});

test('above the limit: oldest first, at most the rate per second, spread out, each once, down to the limit', async () => {
  const r = rig({ sessions: 40, rate: 5 });
  r.setLimit(10);
  r.run(3000);
  // Five per second, never two in one tick (the bucket holds 200 ms worth).
  assert.ok(r.shed.length >= 14 && r.shed.length <= 15, `shed ${r.shed.length} in 3 s`);
  assert.ok(maxPerSecond(r.shed.map((s) => s.at)) <= 5);
  const perTick = new Map<number, number>();
  for (const s of r.shed) perTick.set(s.at, (perTick.get(s.at) ?? 0) + 1);
  assert.ok([...perTick.values()].every((n) => n === 1));
  r.run(10_000);
  assert.equal(r.shed.length, 30, 'exactly the excess');
  assert.equal(new Set(r.shed.map((s) => s.id)).size, 30, 'each once');
  assert.equal(r.reg.size, 10);
  // The oldest went first: the ten left are the youngest.
  assert.deepEqual(
    [...r.reg.byId.keys()].map((id) => Number(id.slice(6))).sort((a, b) => a - b),
    [30, 31, 32, 33, 34, 35, 36, 37, 38, 39],
  );
  assert.deepEqual(
    r.shed.slice(0, 3).map((s) => s.id),
    ['agent-0', 'agent-1', 'agent-2'],
  );
  assert.match(await r.registry.metrics(), /^fleetgate_gateway_shed_connections_total 30$/m);
  assert.equal(r.shedder.shed, 30);
});

test('pending closes are not shed twice; a high rate is still capped per second', () => {
  const r = rig({ sessions: 300, rate: 100 });
  // Closed sessions never leave the registry here (their records are slow to flush).
  r.reg.detachClosed = () => {};
  r.setLimit(250);
  r.run(5000);
  assert.equal(r.shed.length, 50, 'the excess once, though every closed stream is still registered');
  assert.ok(maxPerSecond(r.shed.map((s) => s.at)) <= 100);
});

test('random order draws from the random source; removing the limit stops shedding', () => {
  let draws = 0;
  const r = rig({
    sessions: 20,
    rate: 10,
    order: 'random',
    random: () => {
      draws++;
      return 0.5;
    },
  });
  r.setLimit(10);
  r.run(300);
  assert.ok(r.shed.length > 0);
  assert.ok(draws > 0, 'random order shuffles');
  r.setLimit(undefined);
  const before = r.shed.length;
  r.run(3000);
  assert.equal(r.shed.length, before, 'no limit: no more closes');
  assert.deepEqual(r.changes.at(-1), [1000, undefined]);
});

test('admission: the registry refuses new streams at the desired limit, as at the hard limit', () => {
  const reg = new SessionRegistry({ maxAgents: 5, commandQueue: 1, commandTimeoutMs: 1 }, createMetrics());
  reg.setDesiredLimit(2);
  assert.deepEqual([reg.reserve(), reg.reserve(), reg.reserve()], [true, true, false]);
  assert.equal(reg.effectiveLimit, 2);
  reg.setDesiredLimit(100);
  assert.equal(reg.effectiveLimit, 5, 'never above FLEETGATE_MAX_CONNECTIONS');
  assert.deepEqual([reg.reserve(), reg.reserve(), reg.reserve(), reg.reserve()], [true, true, true, false]);
  reg.setDesiredLimit(undefined);
  assert.equal(reg.effectiveLimit, 5);
});

test('oldest: the n oldest by age then iteration order, the same as a full sort, for any n', () => {
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (const size of [0, 1, 5, 300, 2000]) {
    // Ages with many ties (seconds), in no particular order.
    const sessions = Array.from(
      { length: size },
      (_, i) => new FakeSession(`a${i}`, 1000 + Math.floor(rnd() * 50)),
    ) as unknown as AgentSession[];
    const sorted = sessions
      .map((s, i) => [s, i] as const)
      .sort((a, b) => a[0].connectedAt - b[0].connectedAt || a[1] - b[1])
      .map(([s]) => s);
    for (const n of [0, 1, 3, 10, 256, 257, 1000, 5000]) {
      assert.deepEqual(oldest(sessions, n), sorted.slice(0, n), `size ${size}, n ${n}`);
    }
    const odd = (s: AgentSession) => Number(s.agentId.slice(1)) % 2 === 1;
    assert.deepEqual(oldest(sessions, 10, odd), sorted.filter(odd).slice(0, 10));
  }
});

test("a shedding tick reads each stream's age about once, not a sort of every stream (ten ticks a second)", () => {
  let reads = 0;
  const reg = new FakeRegistry(1_000_000);
  const n = 20_000;
  for (let i = 0; i < n; i++) {
    const at = 1000 + ((i * 7919) % 997);
    const s = new FakeSession(`agent-${i}`, at);
    Object.defineProperty(s, 'connectedAt', {
      get: () => {
        reads++;
        return at;
      },
    });
    reg.add(s);
  }
  let now = 0;
  const shedder = createLoadShedder({
    sessions: reg as unknown as SessionRegistry,
    desiredLimit: () => n - 1000,
    ratePerSecond: 50,
    order: 'oldest',
    logger: silentLogger(),
    now: () => now,
  });
  now += 100;
  reads = 0;
  const closed = shedder.tick();
  assert.ok(closed > 0);
  assert.ok(reads <= 2 * n, `${reads} age reads for ${n} streams`);
});
