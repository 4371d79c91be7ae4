/**
 * Tags (Elkeid §2.8, §4.4): membership items in the `tags` table (pk tag, sk agentId; GSI
 * `byAgent`), written with BatchWriteItem. After each change the tag's member count is recounted
 * with a COUNT Query and kept in `fleet#tagcount` (platform/store/fleet-items.ts), which is what the tag
 * list and the statistics read instead of scanning memberships.
 */

import { putTagCount, readTagCounts } from './store/fleet.js';
import {
  countTagMembers,
  deleteMemberships,
  putMemberships,
  queryTagMembers,
  queryTagsOfAgent,
  scanMemberships,
} from './store/tags.js';
import { type ManagerStore, mapLimit } from './store.js';

/** No commas (Elkeid joins tags with them), no control characters, 1–64 characters. */
export const TAG_PATTERN = /^[^,\s\p{Cc}][^,\p{Cc}]{0,62}[^,\s\p{Cc}]$|^[^,\s\p{Cc}]$/u;
export const MAX_TAG_TARGETS = 100_000;

export function isTag(v: unknown): v is string {
  return typeof v === 'string' && TAG_PATTERN.test(v);
}

export interface TagStore {
  add(tag: string, agentIds: readonly string[], by: string): Promise<number>;
  remove(tag: string, agentIds: readonly string[]): Promise<number>;
  ofAgent(agentId: string): Promise<string[]>;
  ofAgents(agentIds: readonly string[]): Promise<Map<string, string[]>>;
  members(tag: string): Promise<string[]>;
  /** Tags with at least one member and their counts. */
  counts(): Promise<Map<string, number>>;
  /** agentId → tags, from a Scan of the memberships (filters over tags). */
  all(): Promise<Map<string, string[]>>;
}

export function createTagStore(store: ManagerStore, opts: { now?: () => number } = {}): TagStore {
  const now = opts.now ?? Date.now;

  /** The tag's member count, recounted after a change (what lists and statistics read). */
  async function recount(tag: string): Promise<number> {
    const n = await countTagMembers(store, tag);
    await putTagCount(store, tag, n, now());
    return n;
  }

  const ofAgent = (agentId: string) => queryTagsOfAgent(store, agentId);

  return {
    async add(tag, agentIds, by) {
      const ids = [...new Set(agentIds)];
      await putMemberships(store, tag, ids, { createdAt: now(), createdBy: by });
      await recount(tag);
      return ids.length;
    },
    async remove(tag, agentIds) {
      const ids = [...new Set(agentIds)];
      await deleteMemberships(store, tag, ids);
      await recount(tag);
      return ids.length;
    },
    ofAgent,
    async ofAgents(agentIds) {
      const ids = [...new Set(agentIds)];
      const tags = await mapLimit(ids, 16, (id) => ofAgent(id));
      return new Map(ids.map((id, i) => [id, tags[i]!]));
    },
    members: (tag) => queryTagMembers(store, tag),
    counts: () => readTagCounts(store),
    all: () => scanMemberships(store),
  };
}
