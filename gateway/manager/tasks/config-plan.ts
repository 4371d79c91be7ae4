/**
 * What a config task sends each agent (elkeid-protocol.md §4.5 step 3): the agent's effective
 * config (default ⊕ its tags' overrides in sorted order ⊕ its own override, configs.ts) with the
 * task's items applied by the same `updateConfig` merge. The agent replaces its whole plugin set
 * with what it receives, so this must be the complete list, never just the task's items.
 *
 * Elkeid also writes the merged config back into the agent's document at distribution time, so a
 * reconnecting agent keeps it. Here (`persist`) the task's items are written into each agent's
 * `agent#<id>` scope before the command is sent (write-ahead: an agent offline now gets the new
 * config when it reconnects): one item per (agent, plugin name), merged by the same rule into the
 * item of that name the scope already has; a removal is stored as a tombstone (name only, every
 * other field empty) so that the scope merge removes the plugin even when the default or a tag
 * scope brings it. Items already equal are not written again (retries and re-claims write nothing).
 *
 * Reads: the default and tag scopes are small and shared, so they are one snapshot (a Query of
 * `default`, the tags with members from `fleet#tagcount`, a Query per tag scope, the members of
 * the tags that have one), reused for `cacheMs`. Agent scopes are per agent, and config tasks
 * write them: they are read per call (one consistent Query per agent), never from the snapshot.
 */
import { BatchWriteCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { agentScope, type ConfigMsg, defaultScope, isRemoval, mergeConfig, tagScope } from '../configs.js';
import { mapLimit } from '../store.js';
import type { TaskContext } from './context.js';

interface Snapshot {
  at: number;
  scopes: Map<string, ConfigMsg[]>;
  /** agent → tags that have a config scope (sorted). */
  tagsOf: Map<string, string[]>;
}

interface Stored extends ConfigMsg {
  pos: number;
}

function fromItem(i: Record<string, unknown>): Stored {
  return {
    name: String(i.name),
    type: String(i.type ?? ''),
    signature: String(i.signature ?? ''),
    version: String(i.version ?? ''),
    sha256: String(i.sha256 ?? ''),
    download_url: Array.isArray(i.downloadUrls) ? i.downloadUrls.map(String) : [],
    detail: String(i.detail ?? ''),
    pos: Number(i.pos ?? 0),
  };
}

function plain({ pos: _pos, ...c }: Stored): ConfigMsg {
  return c;
}

function sameItem(a: ConfigMsg, b: ConfigMsg): boolean {
  return (
    a.name === b.name &&
    a.type === b.type &&
    a.signature === b.signature &&
    a.version === b.version &&
    a.sha256 === b.sha256 &&
    a.detail === b.detail &&
    a.download_url.length === b.download_url.length &&
    a.download_url.every((u, i) => u === b.download_url[i])
  );
}

/** What the agent scope keeps for a task item `d`, given its current item of that name. */
function storedItem(current: ConfigMsg | undefined, d: ConfigMsg): ConfigMsg {
  if (isRemoval(d))
    return { name: d.name, type: '', signature: '', version: '', sha256: '', download_url: [], detail: '' };
  if (current && !isRemoval(current)) return mergeConfig([current], [d])[0]!;
  return { ...d, download_url: [...d.download_url] };
}

export interface ConfigPlanner {
  /**
   * The full config list to send each agent for a task with `items`. With `persist`, the items
   * are first written into each agent's `agent#<id>` scope (`by` recorded as `updatedBy`).
   */
  forAgents(
    agentIds: readonly string[],
    items: readonly ConfigMsg[],
    opts?: { persist?: { by: string } },
  ): Promise<Map<string, ConfigMsg[]>>;
}

export function createConfigPlanner(ctx: TaskContext, o: { cacheMs?: number } = {}): ConfigPlanner {
  const cacheMs = o.cacheMs ?? 2000;
  let snap: Promise<Snapshot> | undefined;
  let snapAt = 0;

  async function queryScope(scope: string, consistent: boolean): Promise<Stored[] | undefined> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await ctx.store.doc.send(
        new QueryCommand({
          TableName: ctx.tables.configs,
          KeyConditionExpression: '#s = :s',
          ExpressionAttributeNames: { '#s': 'scope' },
          ExpressionAttributeValues: { ':s': scope },
          ...(consistent ? { ConsistentRead: true } : {}),
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...((page.Items ?? []) as Record<string, unknown>[]));
      start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
    } while (start);
    if (items.length === 0) return undefined;
    items.sort(
      (a, b) => Number(a.pos ?? 0) - Number(b.pos ?? 0) || String(a.name).localeCompare(String(b.name)),
    );
    return items.map(fromItem);
  }

  async function load(): Promise<Snapshot> {
    const at = ctx.now();
    const scopes = new Map<string, ConfigMsg[]>();
    const tags = [...(await ctx.tags.counts()).keys()];
    const names = [defaultScope, ...tags.map(tagScope)];
    const lists = await mapLimit(names, 8, (s) => queryScope(s, false));
    names.forEach((s, i) => {
      const l = lists[i];
      if (l) scopes.set(s, l.map(plain));
    });
    const tagsOf = new Map<string, string[]>();
    for (const scope of scopes.keys()) {
      if (!scope.startsWith('tag#')) continue;
      const tag = scope.slice(4);
      let s: Record<string, unknown> | undefined;
      do {
        const page = await ctx.store.doc.send(
          new QueryCommand({
            TableName: ctx.tables.tags,
            KeyConditionExpression: '#t = :t',
            ExpressionAttributeNames: { '#t': 'tag' },
            ExpressionAttributeValues: { ':t': tag },
            ...(s ? { ExclusiveStartKey: s } : {}),
          }),
        );
        for (const m of page.Items ?? []) {
          const id = String(m.agentId);
          const list = tagsOf.get(id);
          if (list) list.push(tag);
          else tagsOf.set(id, [tag]);
        }
        s = page.LastEvaluatedKey as Record<string, unknown> | undefined;
      } while (s);
    }
    for (const list of tagsOf.values()) list.sort();
    return { at, scopes, tagsOf };
  }

  function snapshot(): Promise<Snapshot> {
    const t = ctx.now();
    if (!snap || t - snapAt >= cacheMs) {
      snapAt = t;
      const p = load();
      p.catch(() => {
        if (snap === p) snap = undefined;
      });
      snap = p;
    }
    return snap;
  }

  /** BatchWriteItem, 25 per request, 4 in flight, unprocessed items retried with backoff. */
  async function write(items: Record<string, unknown>[]): Promise<void> {
    const groups: Record<string, unknown>[][] = [];
    for (let i = 0; i < items.length; i += 25) groups.push(items.slice(i, i + 25));
    await mapLimit(groups, 4, async (group) => {
      let pending: unknown[] = group.map((Item) => ({ PutRequest: { Item } }));
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 10) throw new Error('BatchWriteItem kept returning unprocessed items');
        if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 20 * 2 ** attempt)));
        const r = await ctx.store.doc.send(
          new BatchWriteCommand({ RequestItems: { [ctx.tables.configs]: pending as never } }),
        );
        pending = (r.UnprocessedItems?.[ctx.tables.configs] ?? []) as unknown[];
      }
    });
  }

  /** Merges `items` into each agent's own scope (in `own`, updated in place) and writes the changes. */
  async function persist(
    own: Map<string, Stored[]>,
    agentIds: readonly string[],
    items: readonly ConfigMsg[],
    by: string,
  ): Promise<void> {
    const at = ctx.now();
    const puts: Record<string, unknown>[] = [];
    for (const id of agentIds) {
      const list = own.get(id) ?? [];
      let nextPos = list.reduce((m, c) => Math.max(m, c.pos + 1), 0);
      for (const d of items) {
        const i = list.findIndex((c) => c.name === d.name);
        const current = i >= 0 ? list[i] : undefined;
        const next = storedItem(current, d);
        if (current && sameItem(current, next)) continue;
        const stored: Stored = { ...next, pos: current ? current.pos : nextPos++ };
        if (current) list[i] = stored;
        else list.push(stored);
        puts.push({
          scope: agentScope(id),
          name: stored.name,
          type: stored.type,
          signature: stored.signature,
          version: stored.version,
          sha256: stored.sha256,
          downloadUrls: stored.download_url,
          detail: stored.detail,
          pos: stored.pos,
          updatedAt: at,
          updatedBy: by,
        });
      }
      if (list.length > 0) own.set(id, list);
    }
    if (puts.length === 0) return;
    await write(puts);
    ctx.metrics.configWrites.inc(puts.length);
  }

  return {
    async forAgents(agentIds, rawItems, opts = {}) {
      // A delConfig task stores its items as `{name}` only (create.ts): complete every item, or
      // the merge would not see a removal (and would fail appending one).
      const items = rawItems.map((c) => fromItem({ ...c, downloadUrls: c.download_url })).map(plain);
      const [s, lists] = await Promise.all([
        snapshot(),
        mapLimit(agentIds, 16, (id) => queryScope(agentScope(id), true)),
      ]);
      const own = new Map<string, Stored[]>();
      agentIds.forEach((id, i) => {
        const l = lists[i];
        if (l) own.set(id, l);
      });
      if (opts.persist) await persist(own, agentIds, items, opts.persist.by);
      const out = new Map<string, ConfigMsg[]>();
      for (const id of agentIds) {
        let list: ConfigMsg[] = [];
        const chain = [defaultScope, ...(s.tagsOf.get(id) ?? []).map(tagScope)];
        for (const scope of chain) {
          const l = s.scopes.get(scope);
          if (l) list = mergeConfig(list, l);
        }
        const mine = own.get(id);
        if (mine) list = mergeConfig(list, mine.map(plain));
        out.set(id, mergeConfig(list, items));
      }
      return out;
    },
  };
}
