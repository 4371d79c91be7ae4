/**
 * The gateway's side of safe task delivery (docs/hardening.md §4: the resource checks the fence).
 * The manager's dispatchers hold chunk leases with a fencing number; a dispatcher that paused
 * past its lease may still call us. Three checks, all in memory, bounded and expiring after an
 * hour (longer than any lease, retry window or result timeout we use by default):
 *
 *   fences    per fence key (a task chunk) the highest version seen; a lower one is `fenced`.
 *   answered  (agent, token) pairs whose task-result record this gateway has seen: never re-sent,
 *             the answer is `duplicate`.
 *   sent      (agent, token) pairs already written to the agent's *current* session: a second
 *             dispatcher that took over a chunk re-sends after a crash, and gets `duplicate`
 *             instead of the agent running the task twice. A new session of the agent (it
 *             reconnected) may be sent the token again — it may have lost it with the old stream.
 *
 * Entries past the bounds are evicted oldest first and counted; an evicted entry only weakens
 * de-duplication for that pair, never blocks a delivery.
 */
export interface GuardOptions {
  /** Default 3 600 000 ms. */
  ttlMs?: number;
  /** Per map. Default 200 000. */
  maxEntries?: number;
  now?: () => number;
  onEvict?: (map: 'fences' | 'answered' | 'sent') => void;
}

/** A Map with expiry and a size bound; insertion order = age order (re-set moves to the end). */
class ExpiringMap<V> {
  readonly #m = new Map<string, { v: V; exp: number }>();
  constructor(
    private readonly max: number,
    private readonly ttl: number,
    private readonly now: () => number,
    private readonly evicted: () => void,
  ) {}
  get(k: string): V | undefined {
    const e = this.#m.get(k);
    if (!e) return undefined;
    if (e.exp <= this.now()) {
      this.#m.delete(k);
      return undefined;
    }
    return e.v;
  }
  set(k: string, v: V): void {
    const t = this.now();
    this.#m.delete(k);
    this.#m.set(k, { v, exp: t + this.ttl });
    for (const [key, e] of this.#m) {
      if (this.#m.size <= this.max && e.exp > t) break;
      this.#m.delete(key);
      if (e.exp > t) this.evicted();
    }
  }
  delete(k: string): void {
    this.#m.delete(k);
  }
  get size(): number {
    return this.#m.size;
  }
}

/** Highest fence version per key: the protected writer of the lease protocol. */
export class FenceTable {
  readonly #m: ExpiringMap<number>;
  constructor(o: GuardOptions = {}) {
    this.#m = new ExpiringMap(o.maxEntries ?? 200_000, o.ttlMs ?? 3_600_000, o.now ?? Date.now, () =>
      o.onEvict?.('fences'),
    );
  }
  /** True (and remembered) when `version` is not lower than the highest seen for `key`. */
  admit(key: string, version: number): boolean {
    const seen = this.#m.get(key);
    if (seen !== undefined && version < seen) return false;
    this.#m.set(key, version);
    return true;
  }
  highest(key: string): number | undefined {
    return this.#m.get(key);
  }
}

const pair = (agentId: string, token: string) => `${agentId}\u0000${token}`;

export class DeliveryGuard {
  readonly fences: FenceTable;
  readonly #answered: ExpiringMap<true>;
  readonly #sent: ExpiringMap<number>;
  readonly #sessionIds = new WeakMap<object, number>();
  #nextSession = 1;

  constructor(o: GuardOptions = {}) {
    const now = o.now ?? Date.now;
    const max = o.maxEntries ?? 200_000;
    const ttl = o.ttlMs ?? 3_600_000;
    this.fences = new FenceTable(o);
    this.#answered = new ExpiringMap(max, ttl, now, () => o.onEvict?.('answered'));
    this.#sent = new ExpiringMap(max, ttl, now, () => o.onEvict?.('sent'));
  }

  #sessionId(session: object): number {
    let id = this.#sessionIds.get(session);
    if (id === undefined) {
      id = this.#nextSession++;
      this.#sessionIds.set(session, id);
    }
    return id;
  }

  /** The gateway saw the agent's result record for `token`. */
  markAnswered(agentId: string, token: string): void {
    if (token !== '') this.#answered.set(pair(agentId, token), true);
  }

  answered(agentId: string, token: string): boolean {
    return this.#answered.get(pair(agentId, token)) === true;
  }

  /**
   * Reserves (agent, token) on `session` before the write, so two concurrent batches cannot both
   * send it. False when it was already sent (or is being sent) on this session, or answered.
   */
  reserve(agentId: string, token: string, session: object): boolean {
    const k = pair(agentId, token);
    if (this.#answered.get(k)) return false;
    const sid = this.#sessionId(session);
    if (this.#sent.get(k) === sid) return false;
    this.#sent.set(k, sid);
    return true;
  }

  /** The write failed: the token may be sent again. */
  unreserve(agentId: string, token: string): void {
    this.#sent.delete(pair(agentId, token));
  }

  get sizes(): { answered: number; sent: number } {
    return { answered: this.#answered.size, sent: this.#sent.size };
  }
}
