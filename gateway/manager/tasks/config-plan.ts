/**
 * What a config task sends each agent (elkeid-protocol.md §4.5 step 3): the agent's effective
 * config (default ⊕ its tags' overrides in sorted order ⊕ its own override, configs.ts) with the
 * task's items applied by the same `updateConfig` merge. The agent replaces its whole plugin set
 * with what it receives, so this must be the complete list, never just the task's items.
 *
 * configs.ts reads one scope per Query and an agent's tags per Query: right for one agent at its
 * first heartbeat, too slow for a chunk of a 10,000-agent task. Here one Scan of the (small)
 * configs table gives every scope at once, and only the tags that *have* a config scope are
 * expanded into members, each snapshot reused for `cacheMs`. Agents with identical results share
 * one command (the dispatcher groups by it), so a fleet-wide task is a few distinct commands.
 */
import { QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { agentScope, type ConfigMsg, defaultScope, mergeConfig } from '../configs.js';
import type { TaskContext } from './context.js';

interface Snapshot {
  at: number;
  scopes: Map<string, ConfigMsg[]>;
  /** agent → tags that have a config scope (sorted). */
  tagsOf: Map<string, string[]>;
}

function fromItem(i: Record<string, unknown>): ConfigMsg {
  return {
    name: String(i.name),
    type: String(i.type ?? ''),
    signature: String(i.signature ?? ''),
    version: String(i.version ?? ''),
    sha256: String(i.sha256 ?? ''),
    download_url: Array.isArray(i.downloadUrls) ? i.downloadUrls.map(String) : [],
    detail: String(i.detail ?? ''),
  };
}

export interface ConfigPlanner {
  /** The full config list to send each agent for a task with `items`. */
  forAgents(agentIds: readonly string[], items: readonly ConfigMsg[]): Promise<Map<string, ConfigMsg[]>>;
}

export function createConfigPlanner(ctx: TaskContext, o: { cacheMs?: number } = {}): ConfigPlanner {
  const cacheMs = o.cacheMs ?? 2000;
  let snap: Promise<Snapshot> | undefined;
  let snapAt = 0;

  async function load(): Promise<Snapshot> {
    const raw = new Map<string, Record<string, unknown>[]>();
    let start: Record<string, unknown> | undefined;
    do {
      const page = await ctx.store.doc.send(
        new ScanCommand({ TableName: ctx.tables.configs, ...(start ? { ExclusiveStartKey: start } : {}) }),
      );
      for (const item of page.Items ?? []) {
        const scope = String(item.scope);
        if (scope.startsWith('fleet#')) continue;
        const list = raw.get(scope);
        if (list) list.push(item);
        else raw.set(scope, [item]);
      }
      start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
    } while (start);
    const scopes = new Map<string, ConfigMsg[]>();
    for (const [scope, items] of raw) {
      items.sort(
        (a, b) => Number(a.pos ?? 0) - Number(b.pos ?? 0) || String(a.name).localeCompare(String(b.name)),
      );
      scopes.set(scope, items.map(fromItem));
    }
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
    return { at: ctx.now(), scopes, tagsOf };
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

  return {
    async forAgents(agentIds, items) {
      const s = await snapshot();
      const out = new Map<string, ConfigMsg[]>();
      for (const id of agentIds) {
        let list: ConfigMsg[] = [];
        const chain = [defaultScope, ...(s.tagsOf.get(id) ?? []).map((t) => `tag#${t}`), agentScope(id)];
        for (const scope of chain) {
          const l = s.scopes.get(scope);
          if (l) list = mergeConfig(list, l);
        }
        out.set(id, mergeConfig(list, items));
      }
      return out;
    },
  };
}
