/**
 * API keys for scripts: `fgk_<keyId>_<secret>` sent as `Authorization: Bearer …` or `X-Api-Key`.
 * The `apikeys` table keeps the SHA-256 of the secret (a 256-bit random value needs no slow hash:
 * there is nothing to guess), the owner, and a role no higher than the owner's at creation.
 * Revocation sets `revokedAt`; lookups are cached a few seconds per process. A key is bound to
 * its owner's account id (users.ts): a key of a deleted account never works for a new account of
 * the same name, and deleting a user (or an admin resetting its password) revokes its keys.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Role } from './roles.js';
import {
  type ApiKey,
  getApiKeyItem,
  putNewApiKey,
  revokeApiKeyItem,
  type StoredKey,
  scanApiKeyItems,
  touchApiKey,
} from './store/apikeys.js';
import type { ManagerStore } from './store.js';

export type { ApiKey } from './store/apikeys.js';

const KEY_PATTERN = /^fgk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** Unrevoked keys one user may hold: scripts need a few; an unbounded number is only for abuse. */
export const MAX_KEYS_PER_USER = 10;

export class ApiKeyLimitError extends Error {}

export function isApiKey(s: string): boolean {
  return s.startsWith('fgk_');
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

function publicKey(k: StoredKey): ApiKey {
  const { secretHash: _s, ...rest } = k;
  return rest;
}

export interface ApiKeyStore {
  create(input: {
    name: string;
    owner: string;
    ownerAccount: string | undefined;
    role: Role;
  }): Promise<{ key: string; record: ApiKey }>;
  /** The key's record when `presented` is a valid, unrevoked key. */
  verify(presented: string): Promise<ApiKey | undefined>;
  list(): Promise<ApiKey[]>;
  revoke(keyId: string): Promise<boolean>;
  /** Revokes every unrevoked key of `owner`; returns how many. */
  revokeAllOf(owner: string): Promise<number>;
}

export function createApiKeyStore(
  store: ManagerStore,
  opts: { cacheMs?: number; now?: () => number } = {},
): ApiKeyStore {
  const cacheMs = opts.cacheMs ?? 5000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { at: number; key: StoredKey | undefined }>();
  const usedWritten = new Map<string, number>();

  async function load(keyId: string): Promise<StoredKey | undefined> {
    const hit = cache.get(keyId);
    if (hit && now() - hit.at < cacheMs) return hit.key;
    const key = await getApiKeyItem(store, keyId);
    cache.set(keyId, { at: now(), key });
    if (cache.size > 10_000) cache.delete(cache.keys().next().value!);
    return key;
  }

  async function list(): Promise<ApiKey[]> {
    return (await scanApiKeyItems(store)).map(publicKey).sort((a, b) => a.createdAt - b.createdAt);
  }

  async function revoke(keyId: string): Promise<boolean> {
    if (!/^[0-9a-f]{16}$/.test(keyId)) return false;
    if (!(await revokeApiKeyItem(store, keyId, now()))) return false;
    cache.delete(keyId);
    return true;
  }

  /** lastUsedAt: at most one write per key per hour per process, never awaited. */
  function noteUse(keyId: string): void {
    const t = now();
    if (t - (usedWritten.get(keyId) ?? 0) <= 3_600_000) return;
    usedWritten.set(keyId, t);
    touchApiKey(store, keyId, t).catch(() => {});
  }

  return {
    list,
    revoke,
    async revokeAllOf(owner) {
      let n = 0;
      for (const k of await list()) {
        if (k.owner === owner && k.revokedAt === undefined && (await revoke(k.keyId))) n++;
      }
      return n;
    },
    async create(input) {
      const held = (await list()).filter((k) => k.owner === input.owner && k.revokedAt === undefined).length;
      if (held >= MAX_KEYS_PER_USER) {
        throw new ApiKeyLimitError(`at most ${MAX_KEYS_PER_USER} API keys per user; revoke one first`);
      }
      const keyId = randomBytes(8).toString('hex');
      const secret = randomBytes(32).toString('base64url');
      const record: StoredKey = {
        keyId,
        secretHash: sha256(secret).toString('hex'),
        name: input.name.slice(0, 128),
        owner: input.owner,
        ...(input.ownerAccount !== undefined ? { ownerAccount: input.ownerAccount } : {}),
        role: input.role,
        createdAt: now(),
      };
      await putNewApiKey(store, record);
      return { key: `fgk_${keyId}_${secret}`, record: publicKey(record) };
    },
    async verify(presented) {
      const m = KEY_PATTERN.exec(presented);
      if (!m) return undefined;
      const key = await load(m[1]!);
      if (!key || key.revokedAt !== undefined) return undefined;
      const expected = Buffer.from(key.secretHash, 'hex');
      const given = sha256(m[2]!);
      if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
      noteUse(key.keyId);
      return publicKey(key);
    },
  };
}
