/**
 * The tags of the connected agents, for the aggregates and for records (`tagsOf`): each agent's
 * own tags read when it connects and at each refresh, and tag changes applied to every tracked
 * agent within a poll of the tag watch (tag-watch.ts).
 */
import { readTagRevisions } from '../store/fleet.js';
import { queryTagMembers, queryTagsOfAgent } from '../store/tags.js';
import { createTagWatch, type TaggedAgent } from './tag-watch.js';
import type { PendingWork, TrackedAgent, WriterContext } from './types.js';

export interface TagCache {
  /** Reads the agent's tags now (at connect); on failure they stay as they were. No-op when disabled. */
  load(agent: TrackedAgent): Promise<void>;
  /** Reads them again in the background (at a refresh). */
  reload(agent: TrackedAgent): void;
  /** One poll of the tag watch over `agents`, unless one is still running. */
  poll(agents: () => Iterable<TaggedAgent>): void;
}

export function createTagCache(ctx: WriterContext, pending: PendingWork, enabled: boolean): TagCache {
  const watch = createTagWatch({
    revisions: () => readTagRevisions(ctx.store),
    members: async (tag) => new Set(await queryTagMembers(ctx.store, tag, { consistent: true })),
  });
  let polling = false;
  return {
    async load(agent) {
      if (!enabled) return;
      agent.tags = await queryTagsOfAgent(ctx.store, agent.agentId).catch(() => agent.tags);
    },
    reload(agent) {
      if (!enabled) return;
      pending.track(
        queryTagsOfAgent(ctx.store, agent.agentId).then(
          (tags) => {
            agent.tags = tags;
          },
          () => {},
        ),
      );
    },
    poll(agents) {
      if (polling) return;
      polling = true;
      pending
        .track(watch.poll(agents))
        .catch((err: unknown) => ctx.log.warn({ err }, 'tag refresh failed; tags in records may lag'))
        .finally(() => {
          polling = false;
        });
    },
  };
}
