/**
 * Manager users in the `users` table: scrypt password hashes (passwords.ts), a role, and
 * `tokensNotBefore` (ms): session tokens issued before it are refused (logout, password change,
 * role change), and `accountId`: a random id given at creation, which every session token and API
 * key of the account carries. Deleting a user and creating one with the same name makes a new
 * account with a new id, so nothing the old one held is accepted again. Reads are cached for a few seconds per process, as Elkeid reloads its users every
 * 3 s, so a revocation reaches every manager instance within that.
 */
import { randomBytes } from 'node:crypto';
import { DeleteCommand, GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { generatePassword, hashPassword, passwordProblem } from './passwords.js';
import { isRole, type Role } from './roles.js';
import { isConditionFailed, type ManagerStore } from './store.js';

export interface User {
  username: string;
  /** Random, set at creation; absent on accounts created before ids existed (see accountMatches). */
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

export type PublicUser = Omit<User, 'passwordHash' | 'rev' | 'tokensNotBefore' | 'accountId'>;

/**
 * Whether a credential bound to `boundTo` (a token's or key's account id) belongs to `user` as it
 * is now. An account without an id predates ids; it matches only credentials without one, and any
 * account created since has an id, so a re-created name never matches an older credential.
 */
export function accountMatches(user: User, boundTo: string | undefined): boolean {
  return (user.accountId ?? undefined) === boundTo;
}

export const USERNAME_PATTERN = /^[A-Za-z0-9_.@-]{1,64}$/;

export class UserError extends Error {
  constructor(
    readonly kind: 'invalid' | 'exists' | 'not_found' | 'last_admin',
    message: string,
  ) {
    super(message);
  }
}

export function publicUser(u: User): PublicUser {
  const { passwordHash: _h, rev: _r, tokensNotBefore: _t, accountId: _a, ...rest } = u;
  return rest;
}

function toUser(item: Record<string, unknown> | undefined): User | undefined {
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

export interface UserStore {
  get(username: string, opts?: { fresh?: boolean }): Promise<User | undefined>;
  list(): Promise<User[]>;
  create(input: { username: string; password: string; role: Role; createdBy?: string }): Promise<User>;
  setPassword(username: string, password: string): Promise<void>;
  setRole(username: string, role: Role): Promise<void>;
  /** Refuses tokens issued before now (logout everywhere). */
  revokeTokens(username: string, now?: number): Promise<void>;
  delete(username: string): Promise<void>;
  /** Forgets cached reads (tests; after a local change the cache is already updated). */
  clearCache(): void;
}

export function createUserStore(
  store: ManagerStore,
  opts: { cacheMs?: number; now?: () => number } = {},
): UserStore {
  const cacheMs = opts.cacheMs ?? 3000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { at: number; user: User | undefined }>();
  const table = store.t.users;

  async function read(username: string): Promise<User | undefined> {
    const r = await store.doc.send(
      new GetCommand({ TableName: table, Key: { username }, ConsistentRead: true }),
    );
    const user = toUser(r.Item as Record<string, unknown> | undefined);
    cache.set(username, { at: now(), user });
    if (cache.size > 10_000) cache.delete(cache.keys().next().value!);
    return user;
  }

  async function mustExist(username: string): Promise<User> {
    const u = await read(username);
    if (!u) throw new UserError('not_found', `user ${username} does not exist`);
    return u;
  }

  async function update(
    username: string,
    expr: string,
    values: Record<string, unknown>,
    names?: Record<string, string>,
  ): Promise<void> {
    try {
      await store.doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { username },
          UpdateExpression: `${expr} ADD rev :one`,
          ConditionExpression: 'attribute_exists(username)',
          ExpressionAttributeValues: { ...values, ':one': 1 },
          ...(names ? { ExpressionAttributeNames: names } : {}),
        }),
      );
    } catch (err) {
      if (isConditionFailed(err)) throw new UserError('not_found', `user ${username} does not exist`);
      throw err;
    }
    cache.delete(username);
  }

  async function admins(): Promise<User[]> {
    return (await list()).filter((u) => u.role === 'admin' && u.disabledAt === undefined);
  }

  async function list(): Promise<User[]> {
    const out: User[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await store.doc.send(
        new ScanCommand({
          TableName: table,
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of page.Items ?? []) {
        const u = toUser(item as Record<string, unknown>);
        if (u) out.push(u);
      }
      start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
    } while (start);
    return out.sort((a, b) => a.username.localeCompare(b.username));
  }

  return {
    async get(username, o = {}) {
      if (!USERNAME_PATTERN.test(username)) return undefined;
      const hit = cache.get(username);
      if (!o.fresh && hit && now() - hit.at < cacheMs) return hit.user;
      return read(username);
    },
    list,
    async create(input) {
      if (!USERNAME_PATTERN.test(input.username)) {
        throw new UserError('invalid', 'username must be 1-64 characters of A-Z a-z 0-9 _ . @ -');
      }
      const problem = passwordProblem(input.password);
      if (problem) throw new UserError('invalid', `password ${problem}`);
      const at = now();
      const user: User = {
        username: input.username,
        accountId: randomBytes(12).toString('base64url'),
        passwordHash: await hashPassword(input.password),
        role: input.role,
        createdAt: at,
        passwordUpdatedAt: at,
        tokensNotBefore: 0,
        rev: 1,
        ...(input.createdBy ? { createdBy: input.createdBy } : {}),
      };
      try {
        await store.doc.send(
          new PutCommand({
            TableName: table,
            Item: user,
            ConditionExpression: 'attribute_not_exists(username)',
          }),
        );
      } catch (err) {
        if (isConditionFailed(err)) throw new UserError('exists', `user ${input.username} already exists`);
        throw err;
      }
      cache.delete(input.username);
      return user;
    },
    async setPassword(username, password) {
      const problem = passwordProblem(password);
      if (problem) throw new UserError('invalid', `password ${problem}`);
      const hash = await hashPassword(password);
      const at = now();
      await update(username, 'SET passwordHash = :h, passwordUpdatedAt = :t, tokensNotBefore = :t', {
        ':h': hash,
        ':t': at,
      });
    },
    async setRole(username, role) {
      const u = await mustExist(username);
      if (u.role === 'admin' && role !== 'admin' && (await admins()).length <= 1) {
        throw new UserError('last_admin', 'the last admin cannot be demoted');
      }
      await update(
        username,
        'SET #r = :r, tokensNotBefore = :t',
        { ':r': role, ':t': now() },
        { '#r': 'role' },
      );
    },
    async revokeTokens(username, at = now()) {
      await update(username, 'SET tokensNotBefore = :t', { ':t': at });
    },
    async delete(username) {
      const u = await mustExist(username);
      if (u.role === 'admin' && (await admins()).length <= 1) {
        throw new UserError('last_admin', 'the last admin cannot be deleted');
      }
      await store.doc.send(new DeleteCommand({ TableName: table, Key: { username } }));
      cache.delete(username);
    },
    clearCache() {
      cache.clear();
    },
  };
}

/**
 * The first admin, on a store with no admin: from FLEETGATE_ADMIN (`name:password`), else
 * `admin` with a generated password that the caller prints once. Returns what was created.
 */
export async function ensureFirstAdmin(
  users: UserStore,
  admin: { name: string; password: string } | undefined,
): Promise<{ created: false } | { created: true; username: string; generatedPassword?: string }> {
  const existing = (await users.list()).filter((u) => u.role === 'admin' && u.disabledAt === undefined);
  if (existing.length > 0) return { created: false };
  const username = admin?.name ?? 'admin';
  const password = admin?.password ?? generatePassword();
  try {
    await users.create({ username, password, role: 'admin', createdBy: 'bootstrap' });
  } catch (err) {
    // Another manager instance created it first.
    if (err instanceof UserError && err.kind === 'exists') return { created: false };
    throw err;
  }
  return admin ? { created: true, username } : { created: true, username, generatedPassword: password };
}
