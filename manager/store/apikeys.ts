/**
 * API keys in the `apikeys` table (key `keyId`): the SHA-256 of the secret, the owner and its
 * account id, a role, and `revokedAt` once revoked (revocation is a conditional update, so a key
 * that does not exist is never created by it).
 */
import { GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { conditional } from '../../platform/store/errors.js';
import { isRole, type Role } from '../roles.js';
import type { ManagerStore } from './handle.js';
import { eachPage, startAt } from './pages.js';

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

/** A key as stored: its record and the hash of its secret. */
export interface StoredKey extends ApiKey {
  secretHash: string;
}

/** A stored key, checked; undefined when its id, hash or role is missing or malformed. */
export function parseApiKeyItem(item: Record<string, unknown> | undefined): StoredKey | undefined {
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

export async function getApiKeyItem(store: ManagerStore, keyId: string): Promise<StoredKey | undefined> {
  const r = await store.doc.send(new GetCommand({ TableName: store.t.apikeys, Key: { keyId } }));
  return parseApiKeyItem(r.Item);
}

/** Every well-formed key, in no particular order. */
export async function scanApiKeyItems(store: ManagerStore): Promise<StoredKey[]> {
  const out: StoredKey[] = [];
  await eachPage(
    (start) => store.doc.send(new ScanCommand({ TableName: store.t.apikeys, ...startAt(start) })),
    (page) => {
      for (const item of page.Items ?? []) {
        const k = parseApiKeyItem(item);
        if (k) out.push(k);
      }
    },
  );
  return out;
}

/** Creates the key (its id must be new: a collision of 64 random bits fails the write). */
export async function putNewApiKey(store: ManagerStore, key: StoredKey): Promise<void> {
  await store.doc.send(
    new PutCommand({
      TableName: store.t.apikeys,
      Item: key,
      ConditionExpression: 'attribute_not_exists(keyId)',
    }),
  );
}

/** Sets `revokedAt` (kept when already set); false when there is no such key. */
export async function revokeApiKeyItem(store: ManagerStore, keyId: string, at: number): Promise<boolean> {
  return conditional(() =>
    store.doc.send(
      new UpdateCommand({
        TableName: store.t.apikeys,
        Key: { keyId },
        UpdateExpression: 'SET #r = if_not_exists(#r, :t)',
        ConditionExpression: 'attribute_exists(#k)',
        ExpressionAttributeNames: { '#r': 'revokedAt', '#k': 'keyId' },
        ExpressionAttributeValues: { ':t': at },
      }),
    ),
  );
}

/** Records a use of an existing key. */
export async function touchApiKey(store: ManagerStore, keyId: string, at: number): Promise<void> {
  await store.doc.send(
    new UpdateCommand({
      TableName: store.t.apikeys,
      Key: { keyId },
      UpdateExpression: 'SET #u = :t',
      ConditionExpression: 'attribute_exists(#k)',
      ExpressionAttributeNames: { '#u': 'lastUsedAt', '#k': 'keyId' },
      ExpressionAttributeValues: { ':t': at },
    }),
  );
}
