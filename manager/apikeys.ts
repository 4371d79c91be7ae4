/**
 * API keys for scripts: `fgk_<keyId>_<secret>` sent as `Authorization: Bearer …` or `X-Api-Key`.
 * The `apikeys` table keeps the SHA-256 of the secret (a 256-bit random value needs no slow hash:
 * there is nothing to guess), the owner, and a role no higher than the owner's at creation.
 * Revocation sets `revokedAt`; lookups are cached a few seconds per process. A key is bound to
 * its owner's account id (users.ts): a key of a deleted account never works for a new account of
 * the same name, and deleting a user (or an admin resetting its password) revokes its keys.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { isRole, type Role } from './roles.js';
import { isConditionFailed, type ManagerStore } from './store.js';

const KEY_PATTERN = /^fgk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** Unrevoked keys one user may hold: scripts need a few; an unbounded number is only for abuse. */
export const MAX_KEYS_PER_USER = 10;

export class ApiKeyLimitError extends Error {}

export interface ApiKey {
  keyId: string;
  name: string;
  owner: string;
  /** The owner's account id at creation (absent for owners that predate ids). */
  ownerAccount?: string;
  role: Role;
  createdAt: number;
  revokedAt?: number;
  lastUsedAt?: number;
}

interface StoredKey extends ApiKey {
  secretHash: string;
}

export function isApiKey(s: string): boolean {
  return s.startsWith('fgk_');
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

function toKey(item: Record<string, unknown> | undefined): StoredKey | undefined {
  if (!item || typeof item.keyId !== 'string' || typeof item.secretHash !== 'string' || !isRole(item.role)) {
    return undefined;
  }
  const k: StoredKey = {
    keyId: item.keyId,
    secretHash: item.secretHash,
    name: typeof item.name === 'string' ? item.name : '',
    owner: String(item.owner ?? ''),
    role: item.role,
    createdAt: Number(item.createdAt ?? 0),
  };
  if (typeof item.ownerAccount === 'string') k.ownerAccount = item.ownerAccount;
  if (typeof item.revokedAt === 'number') k.revokedAt = item.revokedAt;
  if (typeof item.lastUsedAt === 'number') k.lastUsedAt = item.lastUsedAt;
  return k;
}

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
  const table = store.t.apikeys;
  const cache = new Map<string, { at: number; key: StoredKey | undefined }>();
  const usedWritten = new Map<string, number>();

  async function load(keyId: string): Promise<StoredKey | undefined> {
    const hit = cache.get(keyId);
    if (hit && now() - hit.at < cacheMs) return hit.key;
    const r = await store.doc.send(new GetCommand({ TableName: table, Key: { keyId } }));
    const key = toKey(r.Item as Record<string, unknown> | undefined);
    cache.set(keyId, { at: now(), key });
    if (cache.size > 10_000) cache.delete(cache.keys().next().value!);
    return key;
  }

  async function list(): Promise<ApiKey[]> {
    const out: ApiKey[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await store.doc.send(
        new ScanCommand({ TableName: table, ...(start ? { ExclusiveStartKey: start } : {}) }),
      );
      for (const item of page.Items ?? []) {
        const k = toKey(item as Record<string, unknown>);
        if (k) out.push(publicKey(k));
      }
      start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
    } while (start);
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }

  async function revoke(keyId: string): Promise<boolean> {
    if (!/^[0-9a-f]{16}$/.test(keyId)) return false;
    try {
      await store.doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { keyId },
          UpdateExpression: 'SET #r = if_not_exists(#r, :t)',
          ConditionExpression: 'attribute_exists(#k)',
          ExpressionAttributeNames: { '#r': 'revokedAt', '#k': 'keyId' },
          ExpressionAttributeValues: { ':t': now() },
        }),
      );
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
    cache.delete(keyId);
    return true;
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
      await store.doc.send(
        new PutCommand({
          TableName: table,
          Item: record,
          ConditionExpression: 'attribute_not_exists(keyId)',
        }),
      );
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
      // lastUsedAt: at most one write per key per hour per process.
      const t = now();
      if (t - (usedWritten.get(key.keyId) ?? 0) > 3_600_000) {
        usedWritten.set(key.keyId, t);
        store.doc
          .send(
            new UpdateCommand({
              TableName: table,
              Key: { keyId: key.keyId },
              UpdateExpression: 'SET #u = :t',
              ConditionExpression: 'attribute_exists(#k)',
              ExpressionAttributeNames: { '#u': 'lastUsedAt', '#k': 'keyId' },
              ExpressionAttributeValues: { ':t': t },
            }),
          )
          .catch(() => {});
      }
      return publicKey(key);
    },
  };
}
