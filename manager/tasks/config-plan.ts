/**
 * What a config task sends each agent (docs/elkeid-protocol.md §4.5 step 3): the agent's effective
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
 * the tags that have one, through the tag store), reused for `cacheMs`. Agent scopes are per agent, and config tasks
 * write them: they are read per call by key (readOwn: BatchGet over the `fleet#agentnames` registry), never from the snapshot.
 */
import { FLEET_SCOPE } from '../../platform/store/fleet-items.js';
import {
  agentScope,
  type ConfigMsg,
  defaultScope,
  isRemoval,
  mergeConfig,
  queryConfigScope,
  type StoredConfig,
  storedConfigOf,
  tagScope,
  withoutPos,
} from '../configs.js';
import { mapLimit } from '../store.js';
import { batchPut, type TaskContext } from './context.js';
import { batchGet } from './store/batch-get.js';

interface Snapshot {
  at: number;
  scopes: Map<string, ConfigMsg[]>;
  /** agent → tags that have a config scope (sorted). */
  tagsOf: Map<string, string[]>;
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

function queryScope(
  ctx: TaskContext,
  scope: string,
  consistent: boolean,
): Promise<StoredConfig[] | undefined> {
  return queryConfigScope(ctx.store.doc, ctx.tables.configs, scope, { consistent });
}

/** The default and tag scopes, and which agents are in the tags that have a scope. */
async function loadSnapshot(ctx: TaskContext): Promise<Snapshot> {
  const at = ctx.now();
  const scopes = new Map<string, ConfigMsg[]>();
  const tags = [...(await ctx.tags.counts()).keys()];
  const names = [defaultScope, ...tags.map(tagScope)];
  const lists = await mapLimit(names, 8, (s) => queryScope(ctx, s, false));
  names.forEach((s, i) => {
    const l = lists[i];
    if (l) scopes.set(s, l.map(withoutPos));
  });
  const tagsOf = new Map<string, string[]>();
  for (const scope of scopes.keys()) {
    if (!scope.startsWith('tag#')) continue;
    const tag = scope.slice(4);
    for (const id of await ctx.tags.members(tag)) {
      const list = tagsOf.get(id);
      if (list) list.push(tag);
      else tagsOf.set(id, [tag]);
    }
  }
  for (const list of tagsOf.values()) list.sort();
  return { at, scopes, tagsOf };
}

/** The snapshot, reused for `cacheMs`; a failed load is not kept. */
class SnapshotCache {
  readonly #ctx: TaskContext;
  readonly #cacheMs: number;
  #snap: Promise<Snapshot> | undefined;
  #snapAt = 0;

  constructor(ctx: TaskContext, cacheMs: number) {
    this.#ctx = ctx;
    this.#cacheMs = cacheMs;
  }

  get(): Promise<Snapshot> {
    const t = this.#ctx.now();
    if (!this.#snap || t - this.#snapAt >= this.#cacheMs) {
      this.#snapAt = t;
      const p = loadSnapshot(this.#ctx);
      p.catch(() => {
        if (this.#snap === p) this.#snap = undefined;
      });
      this.#snap = p;
    }
    return this.#snap;
  }
}

/** The agent-scope record of `stored` (configs table attributes). */
function scopeRecord(agentId: string, stored: StoredConfig, at: number, by: string): Record<string, unknown> {
  return {
    scope: agentScope(agentId),
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
  };
}

/** Merges `items` into each agent's own scope (in `own`, updated in place) and writes the changes. */
async function persist(
  ctx: TaskContext,
  own: Map<string, StoredConfig[]>,
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
      const stored: StoredConfig = { ...next, pos: current ? current.pos : nextPos++ };
      if (current) list[i] = stored;
      else list.push(stored);
      puts.push(scopeRecord(id, stored, at, by));
    }
    if (list.length > 0) own.set(id, list);
  }
  if (puts.length === 0) return;
  // BatchWriteItem, 25 per request, 4 in flight, unprocessed items retried (context.ts batchPut).
  const write = (records: Record<string, unknown>[]) => batchPut(ctx.store, ctx.tables.configs, records, 4);
  // Names first (see readOwn): a reader must never miss an item that is already written.
  await write(
    [...new Set(puts.map((p) => String(p.name)))].map((name) => ({ scope: FLEET_SCOPE.agentNames, name })),
  );
  await write(puts);
  ctx.metrics.configWrites.inc(puts.length);
}

/**
 * The agents' own scopes, read by key: every (agent, name) for the names any agent scope may
 * hold — strongly consistent, so items a task wrote a moment ago are seen. One BatchGet per 100
 * keys instead of one Query per agent (bench:dispatch: 11,800 Queries for 10,000 agents were
 * most of the run). The name registry is written before any agent-scope item and read fresh
 * before the items, so a name the reader has not seen belongs to an item written after its read
 * began — as if the reader had run just before that write.
 */
async function readOwn(
  ctx: TaskContext,
  agentIds: readonly string[],
  names: readonly string[],
): Promise<Map<string, StoredConfig[]>> {
  const unique = [...new Set(names)];
  const keys: Record<string, unknown>[] = [];
  for (const id of agentIds) for (const name of unique) keys.push({ scope: agentScope(id), name });
  const found = await batchGet(ctx.store, ctx.tables.configs, keys, { consistent: true, parallel: 8 });
  const own = new Map<string, StoredConfig[]>();
  for (const item of found) {
    const id = String(item.scope).slice('agent#'.length);
    const list = own.get(id);
    if (list) list.push(storedConfigOf(item));
    else own.set(id, [storedConfigOf(item)]);
  }
  for (const list of own.values()) list.sort((a, b) => a.pos - b.pos || a.name.localeCompare(b.name));
  return own;
}

/** default ⊕ the agent's tag scopes (sorted) ⊕ its own scope ⊕ the task's items. */
function effectiveConfig(
  s: Snapshot,
  mine: readonly StoredConfig[] | undefined,
  id: string,
  items: ConfigMsg[],
): ConfigMsg[] {
  let list: ConfigMsg[] = [];
  for (const scope of [defaultScope, ...(s.tagsOf.get(id) ?? []).map(tagScope)]) {
    const l = s.scopes.get(scope);
    if (l) list = mergeConfig(list, l);
  }
  if (mine) list = mergeConfig(list, mine.map(withoutPos));
  return mergeConfig(list, items);
}

export function createConfigPlanner(ctx: TaskContext, o: { cacheMs?: number } = {}): ConfigPlanner {
  const snapshots = new SnapshotCache(ctx, o.cacheMs ?? 2000);
  return {
    async forAgents(agentIds, rawItems, opts = {}) {
      // A delConfig task stores its items as `{name}` only (create.ts): complete every item, or
      // the merge would not see a removal (and would fail appending one).
      const items = rawItems
        .map((c) => storedConfigOf({ ...c, downloadUrls: c.download_url }))
        .map(withoutPos);
      // The name registry is read fresh (consistent, one Query per call, not per agent): another
      // task or the API may have registered a name a moment ago.
      const [s, registered] = await Promise.all([
        snapshots.get(),
        queryScope(ctx, FLEET_SCOPE.agentNames, true),
      ]);
      const own = await readOwn(ctx, agentIds, [
        ...(registered ?? []).map((c) => c.name),
        ...items.map((c) => c.name),
      ]);
      if (opts.persist) await persist(ctx, own, agentIds, items, opts.persist.by);
      return new Map(agentIds.map((id) => [id, effectiveConfig(s, own.get(id), id, items)]));
    },
  };
}
