/**
 * Two live agents with one AgentID (cloned images with a copied `machine-id`, hosts without DMI
 * data): each reconnect replaces the other (newest wins, sessions.ts), every 5 s, for ever, and
 * both hosts' records interleave under one ID. This tracks replacements per AgentID; three or
 * more within a minute is flapping: counted, logged at warn (at most once per 5 min per ID) with
 * what to do, and while it lasts a newcomer is held back when the connected session has sent
 * something in the last few seconds (it is demonstrably alive), as Elkeid's AgentCenter always
 * does ("agentID conflict"). A connected session that went quiet is still replaced, so a host
 * whose old connection died reconnects as before.
 */
import type { Logger } from '../../platform/obs/logger.js';

export const FLAP_WINDOW_MS = 60_000;
export const FLAP_REPLACEMENTS = 3;
/** A connected session that sent a message this recently is alive: a newcomer is held back. */
export const ALIVE_WITHIN_MS = 5_000;
const WARN_EVERY_MS = 5 * 60_000;
/** AgentIDs tracked at once; the oldest are forgotten first. */
const MAX_TRACKED = 10_000;

interface History {
  replacedAt: number[];
  peers: Set<string>;
  warnedAt: number;
}

export class AgentIdConflicts {
  readonly #byId = new Map<string, History>();
  readonly #log: Logger;
  readonly #onFlapping: () => void;

  constructor(log: Logger, onFlapping: () => void) {
    this.#log = log;
    this.#onFlapping = onFlapping;
  }

  #recent(id: string, now: number): History | undefined {
    const h = this.#byId.get(id);
    if (!h) return undefined;
    h.replacedAt = h.replacedAt.filter((t) => now - t < FLAP_WINDOW_MS);
    if (h.replacedAt.length === 0 && now - h.warnedAt >= WARN_EVERY_MS) {
      this.#byId.delete(id);
      return undefined;
    }
    return h;
  }

  /** True while `id` is flapping (FLAP_REPLACEMENTS replacements within FLAP_WINDOW_MS). */
  flapping(id: string, now = Date.now()): boolean {
    return (this.#recent(id, now)?.replacedAt.length ?? 0) >= FLAP_REPLACEMENTS;
  }

  /** Records that a session of `id` from `oldPeer` was replaced by one from `newPeer`. */
  replaced(id: string, oldPeer: string, newPeer: string, now = Date.now()): void {
    let h = this.#recent(id, now);
    if (!h) {
      if (this.#byId.size >= MAX_TRACKED) this.#byId.delete(this.#byId.keys().next().value!);
      h = { replacedAt: [], peers: new Set(), warnedAt: 0 };
      this.#byId.set(id, h);
    }
    h.replacedAt.push(now);
    if (h.peers.size < 8) h.peers.add(oldPeer).add(newPeer);
    if (h.replacedAt.length !== FLAP_REPLACEMENTS) return;
    this.#onFlapping();
    if (now - h.warnedAt < WARN_EVERY_MS) return;
    h.warnedAt = now;
    this.#log.warn(
      { agentId: id, peers: [...h.peers], replacements: h.replacedAt.length, windowS: FLAP_WINDOW_MS / 1000 },
      'several live agents share this AgentID and keep replacing each other; give each host its own ID ' +
        '(SPECIFIED_AGENT_ID in the agent environment, or delete the copied machine-id file in the agent ' +
        'working directory of cloned hosts); meanwhile a newcomer is refused while the connected one is alive',
    );
  }
}
