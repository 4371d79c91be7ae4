/**
 * Keeps the tags of a gateway's connected agents current without a store read per record or
 * per agent: every change of a tag's membership recounts the tag and rewrites its
 * `fleet#tagcount` item with a new `updatedAtMs` (tags.ts). The watch reads those items (one
 * Query of one scope, an item per tag) and, for each tag whose item changed or vanished, the
 * tag's members once, and applies them to every tracked agent. MQData.Tag then lags a tag
 * change by at most one poll interval plus the reads (docs/manager.md, "Tags in records").
 *
 * The reads are passed in (tag-cache.ts gives it the repository's: store/fleet.ts
 * readTagRevisions, store/tags.ts queryTagMembers), so the watch itself is plain logic.
 */

/** What the watch updates: an agent's sorted tag list. */
export interface TaggedAgent {
  readonly agentId: string;
  tags: string[];
}

export interface TagReads {
  /** Tag → updatedAtMs of its `fleet#tagcount` item. */
  revisions(): Promise<Map<string, number>>;
  /** The agents holding `tag` now. */
  members(tag: string): Promise<Set<string>>;
}

export interface TagWatch {
  /**
   * Reads the tag revisions; for changed tags, their members, applied to `agents`. The first
   * call only records the revisions (agents read their own tags when they connect). Returns the
   * number of tags that changed.
   */
  poll(agents: () => Iterable<TaggedAgent>): Promise<number>;
}

export function createTagWatch(reads: TagReads): TagWatch {
  let known: Map<string, number> | undefined;
  return {
    async poll(agents) {
      const now = await reads.revisions();
      const previous = known;
      known = now;
      if (!previous) return 0;
      const changed = new Set<string>();
      for (const [tag, at] of now) if (previous.get(tag) !== at) changed.add(tag);
      for (const tag of previous.keys()) if (!now.has(tag)) changed.add(tag);
      for (const tag of changed) {
        const holders = now.has(tag) ? await reads.members(tag) : new Set<string>();
        for (const a of agents()) {
          const has = a.tags.includes(tag);
          if (holders.has(a.agentId) && !has) a.tags = [...a.tags, tag].sort();
          else if (!holders.has(a.agentId) && has) a.tags = a.tags.filter((x) => x !== tag);
        }
      }
      return changed.size;
    },
  };
}
