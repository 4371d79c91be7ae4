/**
 * Plugin configuration (docs/elkeid-protocol.md §2.7, §4.5) in the `configs` table: one item per
 * (scope, plugin name), scopes `default`, `tag#<tag>` and `agent#<agentId>`.
 *
 * The effective config of an agent = the default list, then each of its tags' overrides (tags in
 * sorted order), then its own override, each applied with Elkeid's `updateConfig` merge: per
 * item by name, an item whose other fields are all empty removes that plugin; otherwise its
 * non-empty fields overwrite; an unknown name is appended. A config task writes its items
 * into each target's `agent#<id>` scope as it dispatches (a removal is stored as such an empty
 * item, a tombstone, so it also removes a plugin that the default or a tag scope brings). That list is what a gateway pushes at
 * an agent's first heartbeat (`createStoreConfigSource`) and what `getConfig/:id` answers.
 *
 * No scope configured at all → `undefined` ("no opinion": the gateway pushes nothing), never an
 * empty list, which would make a stock agent uninstall every plugin. Replacing a scope writes
 * the new items before deleting the ones that left, so a reader in between sees a superset,
 * never a plugin missing that both versions keep (there are no transactions to do better).
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { ConfigSource } from '../gateway/agent/config-source.js';
import { retryWithBackoff } from '../platform/backoff.js';
import type { grpc } from '../proto/gen/elkeid.js';
import type { ConfigMsg, StoredConfig } from './config-msg.js';
import {
  deleteConfigItems,
  putConfigItems,
  readConfigScope,
  registerAgentScopeNames,
} from './store/configs.js';
import { queryTagsOfAgent } from './store/tags.js';
import { createManagerStore, mapLimit } from './store.js';

export type { ConfigMsg, StoredConfig } from './config-msg.js';
export { queryConfigScope, storedConfigOf } from './store/configs.js';

/** docs/hardening.md §5 test 31: the agent's own fix for plugin-name path traversal. */
export const PLUGIN_NAME_PATTERN = /^[a-z0-9_-]{1,64}$/;
export const MAX_CONFIG_ITEMS = 64;
const MAX_URLS = 16;

export class ConfigError extends Error {}

export const defaultScope = 'default';
export const tagScope = (tag: string) => `tag#${tag}`;
export const agentScope = (agentId: string) => `agent#${agentId}`;

function field(o: Record<string, unknown>, key: string, where: string, max: number): string {
  const v = o[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new ConfigError(`${where}.${key} must be a string`);
  if (v.length > max) throw new ConfigError(`${where}.${key} is longer than ${max} characters`);
  return v;
}

/**
 * Validates Elkeid AgentConfigMsg items. `full`: every item must be installable (the default
 * list): version, a SHA-256 and at least one http(s) download URL. Overrides may be partial.
 */
export function parseConfigList(value: unknown, opts: { full: boolean }): ConfigMsg[] {
  if (!Array.isArray(value)) throw new ConfigError('config must be an array');
  if (value.length > MAX_CONFIG_ITEMS) throw new ConfigError(`at most ${MAX_CONFIG_ITEMS} config items`);
  const seen = new Set<string>();
  return value.map((raw, i) => {
    const where = `config[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw new ConfigError(`${where} must be an object`);
    const o = raw as Record<string, unknown>;
    const name = field(o, 'name', where, 64);
    if (!PLUGIN_NAME_PATTERN.test(name))
      throw new ConfigError(`${where}.name must match ${PLUGIN_NAME_PATTERN}`);
    if (seen.has(name)) throw new ConfigError(`${where}.name ${name} appears twice`);
    seen.add(name);
    const urlsRaw = o.download_url ?? [];
    if (!Array.isArray(urlsRaw) || urlsRaw.length > MAX_URLS) {
      throw new ConfigError(`${where}.download_url must be an array of at most ${MAX_URLS} URLs`);
    }
    const urls = urlsRaw.map((u, j) => {
      if (typeof u !== 'string' || u.length > 2048)
        throw new ConfigError(`${where}.download_url[${j}] must be a URL`);
      let parsed: URL;
      try {
        parsed = new URL(u);
      } catch {
        throw new ConfigError(`${where}.download_url[${j}] is not a URL`);
      }
      if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
        throw new ConfigError(`${where}.download_url[${j}] must be http(s)`);
      }
      return u;
    });
    const item: ConfigMsg = {
      name,
      type: field(o, 'type', where, 32),
      signature: field(o, 'signature', where, 4096),
      version: field(o, 'version', where, 64),
      sha256: field(o, 'sha256', where, 64).toLowerCase(),
      download_url: urls,
      detail: field(o, 'detail', where, 64 * 1024),
    };
    if (item.sha256 !== '' && !/^[0-9a-f]{64}$/.test(item.sha256)) {
      throw new ConfigError(`${where}.sha256 must be 64 hex digits`);
    }
    if (opts.full && (item.version === '' || item.sha256 === '' || urls.length === 0)) {
      throw new ConfigError(`${where}: version, sha256 and download_url are required`);
    }
    return item;
  });
}

/** An item whose fields other than `name` are all empty: removes that plugin in a merge. */
export function isRemoval(c: ConfigMsg): boolean {
  return (
    c.type === '' &&
    c.signature === '' &&
    c.version === '' &&
    c.sha256 === '' &&
    c.download_url.length === 0 &&
    c.detail === ''
  );
}

/** Elkeid's updateConfig (§4.5): `delta` applied to `base`. */
export function mergeConfig(base: readonly ConfigMsg[], delta: readonly ConfigMsg[]): ConfigMsg[] {
  const out = base.map((c) => ({ ...c, download_url: [...c.download_url] }));
  for (const d of delta) {
    const i = out.findIndex((c) => c.name === d.name);
    if (isRemoval(d)) {
      if (i >= 0) out.splice(i, 1);
      continue;
    }
    if (i < 0) {
      out.push({ ...d, download_url: [...d.download_url] });
      continue;
    }
    const c = out[i]!;
    if (d.type) c.type = d.type;
    if (d.signature) c.signature = d.signature;
    if (d.version) c.version = d.version;
    if (d.sha256) c.sha256 = d.sha256;
    if (d.download_url.length > 0) c.download_url = [...d.download_url];
    if (d.detail) c.detail = d.detail;
  }
  return out;
}

export function toProto(c: ConfigMsg): grpc.ConfigItem.$Properties {
  return {
    Name: c.name,
    Type: c.type,
    Version: c.version,
    SHA256: c.sha256,
    Signature: c.signature,
    DownloadURL: [...c.download_url],
    Detail: c.detail,
  };
}

/** The message without its position. */
export function withoutPos({ pos: _pos, ...c }: StoredConfig): ConfigMsg {
  return c;
}

export interface ConfigStore {
  /** The scope's items in their stored order; undefined when the scope has none. */
  get(scope: string, opts?: { fresh?: boolean }): Promise<ConfigMsg[] | undefined>;
  replace(scope: string, items: readonly ConfigMsg[], by: string): Promise<void>;
  /** default ⊕ tags ⊕ agent; undefined when none of the scopes has anything. */
  effective(agentId: string, tags: readonly string[]): Promise<ConfigMsg[] | undefined>;
}

export interface ConfigStoreOptions {
  client: DynamoDBClient;
  tablePrefix: string;
  /** How long a scope read is reused. Default 5000 ms (a config change reaches new connections within it). */
  cacheMs?: number;
  now?: () => number;
}

export function createConfigStore(o: ConfigStoreOptions): ConfigStore {
  const store = createManagerStore(o.client, o.tablePrefix);
  const now = o.now ?? Date.now;
  const cacheMs = o.cacheMs ?? 5000;
  const cache = new Map<string, { at: number; value: Promise<ConfigMsg[] | undefined> }>();

  async function read(scope: string): Promise<ConfigMsg[] | undefined> {
    return (await readConfigScope(store, scope))?.map(withoutPos);
  }

  function get(scope: string, opts: { fresh?: boolean } = {}): Promise<ConfigMsg[] | undefined> {
    const t = now();
    const hit = cache.get(scope);
    if (!opts.fresh && hit && t - hit.at < cacheMs) return hit.value;
    const value = read(scope);
    cache.set(scope, { at: t, value });
    value.catch(() => cache.delete(scope));
    if (cache.size > 20_000) cache.delete(cache.keys().next().value!);
    return value;
  }

  return {
    get,
    async replace(scope, items, by) {
      const before = (await get(scope, { fresh: true })) ?? [];
      if (scope.startsWith('agent#') && items.length > 0) {
        // Registered before the items are written, so a config task that reads agent scopes by
        // key (tasks/config-plan.ts) never misses one.
        await registerAgentScopeNames(
          store,
          items.map((c) => c.name),
        );
      }
      await putConfigItems(store, scope, items, { updatedAt: now(), updatedBy: by });
      const keep = new Set(items.map((c) => c.name));
      await deleteConfigItems(
        store,
        scope,
        before.filter((c) => !keep.has(c.name)).map((c) => c.name),
      );
      cache.delete(scope);
    },
    async effective(agentId, tags) {
      const scopes = [defaultScope, ...[...tags].sort().map(tagScope), agentScope(agentId)];
      // The agent's own scope is read uncached: a config task writes it (tasks/config-plan.ts)
      // and the agent may reconnect right after; caching it would serve the pre-task config.
      const lists = await mapLimit(scopes, 8, (s, i) => (i === scopes.length - 1 ? read(s) : get(s)));
      if (lists.every((l) => l === undefined)) return undefined;
      let out: ConfigMsg[] = [];
      for (const l of lists) if (l) out = mergeConfig(out, l);
      return out;
    },
  };
}

export interface StoreConfigSourceOptions extends ConfigStoreOptions {
  /** The agent's tags when the caller knows them (the HeartbeatWriter does); else one Query. */
  tagsOf?: (agentId: string) => readonly string[] | undefined;
}

/**
 * The gateway's ConfigSource over the store: the effective config of the agent named in the
 * detail. It needs only the AgentID, so the gateway pushes it as soon as the agent is identified.
 * Default and tag scope reads are cached `cacheMs` (default 5 s); the agent's own scope is read at
 * every call.
 */
export function createStoreConfigSource(o: StoreConfigSourceOptions): ConfigSource & { store: ConfigStore } {
  const configs = createConfigStore(o);
  const store = createManagerStore(o.client, o.tablePrefix);
  async function tags(agentId: string): Promise<readonly string[]> {
    return o.tagsOf?.(agentId) ?? (await queryTagsOfAgent(store, agentId));
  }
  return {
    store: configs,
    needsHeartbeat: false,
    async configFor(detail) {
      const agentId = typeof detail.agent_id === 'string' ? detail.agent_id : '';
      if (agentId === '') return undefined;
      // The gateway pushes once per connection and never retries: a slow store gets three tries
      // (the client's own short timeouts make each fail fast) before the agent goes without.
      const list = await retryWithBackoff(async () => configs.effective(agentId, await tags(agentId)), {
        attempts: 3,
        baseMs: 250,
        capMs: 1000,
      });
      return list?.map(toProto);
    },
  };
}
