/**
 * Chunk leases with a fencing number (docs/hardening.md §4; Kleppmann, "How to do distributed
 * locking"). A lease is a conditional write on the chunk head:
 *
 *   claim    IF leaseVersion = :seen AND (no owner OR leaseUntil < :now)
 *            SET leaseOwner = :me, leaseUntil = :now + lease, leaseVersion = :seen + 1
 *   renew    IF leaseOwner = :me AND leaseVersion = :mine   SET leaseUntil = :now + lease
 *   release  IF leaseOwner = :me AND leaseVersion = :mine   REMOVE leaseOwner, SET the pass's results
 *
 * The new leaseVersion is the fence. A lease alone does not exclude a holder that paused past its
 * expiry (GC, a stopped VM, a clock that runs slow), so the lease only decides who *should* work;
 * safety comes from the writers checking the fence: the gateway refuses a fence lower than one it
 * has seen for the chunk (gateway/control/delivery-guard.ts), and the subtask writes are
 * conditioned on it. Clocks: `leaseUntil` is an absolute time, so a claimer whose clock runs
 * ahead may take a lease early — harmless for safety (the fence still orders the holders), it
 * only costs a duplicate attempt that the gateway answers `fenced`/`duplicate`.
 *
 * The decisions are pure functions (`canClaim`, `canRenew`) used by the in-memory store that the
 * model test drives; the DynamoDB store (store/lease-store.ts) states the same decisions as
 * condition expressions, and the same model test runs (shorter) against dynalite to check they agree.
 */
export interface LeaseState {
  owner?: string | undefined;
  until?: number | undefined;
  version: number;
}

export interface LeaseKey {
  taskId: string;
  chunkId: string;
}

export function canClaim(cur: LeaseState, seenVersion: number, now: number): boolean {
  return cur.version === seenVersion && (cur.owner === undefined || (cur.until ?? 0) < now);
}

export function canRenew(cur: LeaseState, owner: string, version: number): boolean {
  return cur.owner === owner && cur.version === version;
}

export type Claimed =
  | { ok: true; version: number; until: number; item: Record<string, unknown> }
  | { ok: false };

export interface LeaseStore {
  read(key: LeaseKey): Promise<LeaseState | undefined>;
  claim(key: LeaseKey, owner: string, seenVersion: number, now: number, leaseMs: number): Promise<Claimed>;
  renew(key: LeaseKey, owner: string, version: number, now: number, leaseMs: number): Promise<boolean>;
  /** Ends the lease and writes `set` (top-level attributes) in the same conditional write. */
  release(key: LeaseKey, owner: string, version: number, set?: Record<string, unknown>): Promise<boolean>;
}

/** The same decisions over a Map (the model test; a single-process dispatcher needs nothing else). */
export function createMemoryLeaseStore(): LeaseStore & {
  items: Map<string, LeaseState & Record<string, unknown>>;
} {
  const items = new Map<string, LeaseState & Record<string, unknown>>();
  const id = (k: LeaseKey) => `${k.taskId}\0${k.chunkId}`;
  const get = (k: LeaseKey) => {
    let cur = items.get(id(k));
    if (!cur) {
      cur = { version: 0 };
      items.set(id(k), cur);
    }
    return cur;
  };
  return {
    items,
    async read(k) {
      const cur = items.get(id(k));
      return cur ? { owner: cur.owner, until: cur.until, version: cur.version } : undefined;
    },
    async claim(k, owner, seen, now, leaseMs) {
      const cur = get(k);
      if (!canClaim(cur, seen, now)) return { ok: false };
      cur.owner = owner;
      cur.until = now + leaseMs;
      cur.version = seen + 1;
      return { ok: true, version: cur.version, until: cur.until, item: { ...cur } };
    },
    async renew(k, owner, version, now, leaseMs) {
      const cur = get(k);
      if (!canRenew(cur, owner, version)) return false;
      cur.until = now + leaseMs;
      return true;
    },
    async release(k, owner, version, set = {}) {
      const cur = get(k);
      if (!canRenew(cur, owner, version)) return false;
      Object.assign(cur, set);
      cur.owner = undefined;
      cur.until = 0;
      return true;
    },
  };
}
