/**
 * Manager users in the `users` table (key `username`): every write is conditional on the item's
 * existence (or absence, at creation) and bumps `rev`; reads are consistent, so a revocation is
 * seen by the next read of any manager instance.
 */
import { DeleteCommand, GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { conditional } from '../../platform/store/errors.js';
import { isRole, type Role } from '../roles.js';
import type { ManagerStore } from './handle.js';
import { eachPage, startAt } from './pages.js';

export interface User {
  username: string;
  /** Random, set at creation; absent on accounts created before ids existed (users.ts accountMatches). */
  accountId?: string;
  passwordHash: string;
  role: Role;
  createdAt: number;
  createdBy?: string;
  disabledAt?: number;
  passwordUpdatedAt?: number;
  tokensNotBefore: number;
  rev: number;
}

/** A stored user, checked; undefined when its name, hash or role is missing or malformed. */
export function parseUserItem(item: Record<string, unknown> | undefined): User | undefined {
  if (!item || typeof item.username !== 'string' || typeof item.passwordHash !== 'string') return undefined;
  if (!isRole(item.role)) return undefined;
  const u: User = {
    username: item.username,
    passwordHash: item.passwordHash,
    role: item.role,
    createdAt: Number(item.createdAt ?? 0),
    tokensNotBefore: Number(item.tokensNotBefore ?? 0),
    rev: Number(item.rev ?? 0),
  };
  if (typeof item.accountId === 'string') u.accountId = item.accountId;
  if (typeof item.createdBy === 'string') u.createdBy = item.createdBy;
  if (typeof item.disabledAt === 'number') u.disabledAt = item.disabledAt;
  if (typeof item.passwordUpdatedAt === 'number') u.passwordUpdatedAt = item.passwordUpdatedAt;
  return u;
}

export async function getUserItem(store: ManagerStore, username: string): Promise<User | undefined> {
  const r = await store.doc.send(
    new GetCommand({ TableName: store.t.users, Key: { username }, ConsistentRead: true }),
  );
  return parseUserItem(r.Item);
}

/** Every well-formed user (consistent Scan), in no particular order. */
export async function scanUserItems(store: ManagerStore): Promise<User[]> {
  const out: User[] = [];
  await eachPage(
    (start) =>
      store.doc.send(new ScanCommand({ TableName: store.t.users, ConsistentRead: true, ...startAt(start) })),
    (page) => {
      for (const item of page.Items ?? []) {
        const u = parseUserItem(item);
        if (u) out.push(u);
      }
    },
  );
  return out;
}

/** Creates the user; false when the name is taken. */
export async function putNewUser(store: ManagerStore, user: User): Promise<boolean> {
  return conditional(() =>
    store.doc.send(
      new PutCommand({
        TableName: store.t.users,
        Item: user,
        ConditionExpression: 'attribute_not_exists(username)',
      }),
    ),
  );
}

/** The fields a change of an existing user sets. */
export type UserChange = Partial<
  Pick<User, 'passwordHash' | 'passwordUpdatedAt' | 'tokensNotBefore' | 'role'>
>;

/** Sets `change` on an existing user and bumps its `rev`; false when there is no such user. */
export async function updateUser(
  store: ManagerStore,
  username: string,
  change: UserChange,
): Promise<boolean> {
  const fields = Object.entries(change).filter(([, v]) => v !== undefined);
  const names: Record<string, string> = { '#username': 'username', '#rev': 'rev' };
  const values: Record<string, unknown> = { ':one': 1 };
  const sets = fields.map(([field, value], i) => {
    names[`#f${i}`] = field;
    values[`:v${i}`] = value;
    return `#f${i} = :v${i}`;
  });
  return conditional(() =>
    store.doc.send(
      new UpdateCommand({
        TableName: store.t.users,
        Key: { username },
        UpdateExpression: `${sets.length > 0 ? `SET ${sets.join(', ')} ` : ''}ADD #rev :one`,
        ConditionExpression: 'attribute_exists(#username)',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    ),
  );
}

export async function deleteUserItem(store: ManagerStore, username: string): Promise<void> {
  await store.doc.send(new DeleteCommand({ TableName: store.t.users, Key: { username } }));
}
