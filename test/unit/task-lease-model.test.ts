/**
 * docs/hardening.md §4 test 23, lease safety under pauses, as a fast-check `fc.commands` model test:
 * three holders with clocks skewed by up to ±5 s claim, renew (renewals may be dropped), pause
 * for up to 3× the lease, commit to the protected writer (the gateway's FenceTable) whenever
 * they *believe* they hold the lease, and release. Pass: the writer never accepts a fence out of
 * order, and no fence is ever committed by two holders. 1,000 runs against the in-memory store
 * (the same decision functions), a shorter run against dynalite (the condition expressions), and
 * a check that the model does catch a broken store.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { FenceTable } from '../../gateway/control/delivery-guard.js';
import { createManagerStore } from '../../manager/store.js';
import { createMemoryLeaseStore, type LeaseKey, type LeaseStore } from '../../manager/tasks/lease.js';
import { createDynamoLeaseStore } from '../../manager/tasks/store/lease-store.js';
import { tableName } from '../../platform/store/schema.js';
import { startTestDynamo, type TestDynamo } from '../helpers/dynalite.js';

const LEASE = 10_000;
const HOLDERS = 3;

interface Holder {
  skew: number;
  lease?: { version: number; until: number };
}

interface Real {
  store: LeaseStore;
  key: LeaseKey;
  fence: FenceTable;
  t: number;
  holders: Holder[];
  lastAccepted: number;
  committedBy: Map<number, Set<number>>;
}

const local = (r: Real, h: number) => r.t + r.holders[h]!.skew;
const owner = (h: number) => `holder-${h}`;

type Cmd = fc.AsyncCommand<object, Real>;

class Claim implements Cmd {
  constructor(readonly h: number) {}
  check() {
    return true;
  }
  async run(_m: object, r: Real) {
    const seen = (await r.store.read(r.key))?.version ?? 0;
    const now = local(r, this.h);
    const c = await r.store.claim(r.key, owner(this.h), seen, now, LEASE);
    if (c.ok) r.holders[this.h]!.lease = { version: c.version, until: now + LEASE };
  }
  toString() {
    return `claim(${this.h})`;
  }
}

class Renew implements Cmd {
  constructor(
    readonly h: number,
    readonly dropped: boolean,
  ) {}
  check() {
    return true;
  }
  async run(_m: object, r: Real) {
    const holder = r.holders[this.h]!;
    if (!holder.lease || this.dropped) return;
    const now = local(r, this.h);
    if (await r.store.renew(r.key, owner(this.h), holder.lease.version, now, LEASE))
      holder.lease.until = now + LEASE;
    else delete holder.lease;
  }
  toString() {
    return `renew(${this.h}${this.dropped ? ', dropped' : ''})`;
  }
}

class Pause implements Cmd {
  constructor(readonly ms: number) {}
  check() {
    return true;
  }
  async run(_m: object, r: Real) {
    r.t += this.ms;
  }
  toString() {
    return `pause(${this.ms})`;
  }
}

class Commit implements Cmd {
  constructor(readonly h: number) {}
  check() {
    return true;
  }
  async run(_m: object, r: Real) {
    const holder = r.holders[this.h]!;
    // The holder acts on its own belief: its lease has not run out on its own clock.
    if (!holder.lease || local(r, this.h) >= holder.lease.until) return;
    const v = holder.lease.version;
    if (!r.fence.admit('chunk', v)) return;
    assert.ok(v >= r.lastAccepted, `fence ${v} accepted after ${r.lastAccepted}`);
    r.lastAccepted = v;
    const who = r.committedBy.get(v) ?? new Set<number>();
    who.add(this.h);
    r.committedBy.set(v, who);
    assert.ok(who.size <= 1, `fence ${v} committed by holders ${[...who].join(', ')}`);
  }
  toString() {
    return `commit(${this.h})`;
  }
}

class Release implements Cmd {
  constructor(readonly h: number) {}
  check() {
    return true;
  }
  async run(_m: object, r: Real) {
    const holder = r.holders[this.h]!;
    if (!holder.lease) return;
    await r.store.release(r.key, owner(this.h), holder.lease.version);
    delete holder.lease;
  }
  toString() {
    return `release(${this.h})`;
  }
}

const holder = fc.integer({ min: 0, max: HOLDERS - 1 });
const commands = fc.commands(
  [
    holder.map((h) => new Claim(h)),
    fc.tuple(holder, fc.boolean()).map(([h, d]) => new Renew(h, d)),
    fc.integer({ min: 0, max: 3 * LEASE }).map((ms) => new Pause(ms)),
    fc.integer({ min: 0, max: 500 }).map((ms) => new Pause(ms)),
    holder.map((h) => new Commit(h)),
    holder.map((h) => new Release(h)),
  ],
  { maxCommands: 60, size: 'medium' },
);
const skews = fc.array(fc.integer({ min: -5000, max: 5000 }), { minLength: HOLDERS, maxLength: HOLDERS });

function property(setup: () => Promise<{ store: LeaseStore; key: LeaseKey }>) {
  return fc.asyncProperty(skews, commands, async (sk, cmds) => {
    const { store, key } = await setup();
    const real: Real = {
      store,
      key,
      fence: new FenceTable(),
      t: 1_700_000_000_000,
      holders: sk.map((skew) => ({ skew })),
      lastAccepted: 0,
      committedBy: new Map(),
    };
    await fc.asyncModelRun(() => ({ model: {}, real }), cmds);
  });
}

test('lease + fence: in memory, 1,000 runs', async () => {
  await fc.assert(
    property(async () => ({ store: createMemoryLeaseStore(), key: { taskId: 't', chunkId: 'h#0000000' } })),
    { numRuns: 1000 },
  );
});

test('the model catches a store that ignores the version (it can fail)', async () => {
  const broken = (): LeaseStore => {
    const inner = createMemoryLeaseStore();
    return {
      ...inner,
      // Wrong: anyone may claim at any time, and the version is not bumped.
      claim: async (k, o, seen, now, ms) => {
        const cur = await inner.read(k);
        const version = Math.max(1, cur?.version ?? 0);
        inner.items.set(`${k.taskId}\u0000${k.chunkId}`, { owner: o, until: now + ms, version });
        void seen;
        return { ok: true, version, until: now + ms, item: {} };
      },
    };
  };
  const out = await fc.check(
    property(async () => ({ store: broken(), key: { taskId: 't', chunkId: 'h#0000000' } })),
    { numRuns: 1000 },
  );
  assert.equal(out.failed, true, 'a store handing the same fence to two holders must be caught');
});

let db: TestDynamo;
before(async () => {
  db = await startTestDynamo();
});
after(async () => {
  await db.close();
});

test('lease + fence: against dynalite (the condition expressions), 60 runs', async () => {
  const store = createManagerStore(db.client, db.prefix);
  const table = tableName(db.prefix, 'chunks');
  const leases = createDynamoLeaseStore(store, table);
  let n = 0;
  await fc.assert(
    property(async () => {
      // A fresh chunk head per run, as task creation writes it (leaseVersion 0, no owner).
      const key = { taskId: `model-${++n}`, chunkId: 'h#0000000' };
      await store.doc.send(new PutCommand({ TableName: table, Item: { ...key, leaseVersion: 0 } }));
      return { store: leases, key };
    }),
    { numRuns: 60 },
  );
});
