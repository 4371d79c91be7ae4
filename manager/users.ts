/**
 * Manager users in the `users` table: scrypt password hashes (passwords.ts), a role, and
 * `tokensNotBefore` (ms): session tokens issued before it are refused (logout, password change,
 * role change), and `accountId`: a random id given at creation, which every session token and API
 * key of the account carries. Deleting a user and creating one with the same name makes a new
 * account with a new id, so nothing the old one held is accepted again. Reads are cached for a few seconds per process, as Elkeid reloads its users every
 * 3 s, so a revocation reaches every manager instance within that.
 */
import { randomBytes } from 'node:crypto';
import { generatePassword, hashPassword, passwordProblem } from './passwords.js';
import type { Role } from './roles.js';
import {
  deleteUserItem,
  getUserItem,
  putNewUser,
  scanUserItems,
  type User,
  type UserChange,
  updateUser,
} from './store/users.js';
import type { ManagerStore } from './store.js';

export type { User } from './store/users.js';

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

  async function read(username: string): Promise<User | undefined> {
    const user = await getUserItem(store, username);
    cache.set(username, { at: now(), user });
    if (cache.size > 10_000) cache.delete(cache.keys().next().value!);
    return user;
  }

  async function mustExist(username: string): Promise<User> {
    const u = await read(username);
    if (!u) throw new UserError('not_found', `user ${username} does not exist`);
    return u;
  }

  async function update(username: string, change: UserChange): Promise<void> {
    if (!(await updateUser(store, username, change))) {
      throw new UserError('not_found', `user ${username} does not exist`);
    }
    cache.delete(username);
  }

  async function list(): Promise<User[]> {
    return (await scanUserItems(store)).sort((a, b) => a.username.localeCompare(b.username));
  }

  /** Refuses to leave the store without an enabled admin. */
  async function keepAnAdmin(u: User, what: string): Promise<void> {
    if (u.role !== 'admin') return;
    const admins = (await list()).filter((a) => a.role === 'admin' && a.disabledAt === undefined);
    if (admins.length <= 1) throw new UserError('last_admin', `the last admin cannot be ${what}`);
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
      const user = await newUser(input, now());
      if (!(await putNewUser(store, user))) {
        throw new UserError('exists', `user ${input.username} already exists`);
      }
      cache.delete(input.username);
      return user;
    },
    async setPassword(username, password) {
      const problem = passwordProblem(password);
      if (problem) throw new UserError('invalid', `password ${problem}`);
      const passwordHash = await hashPassword(password);
      const at = now();
      await update(username, { passwordHash, passwordUpdatedAt: at, tokensNotBefore: at });
    },
    async setRole(username, role) {
      const u = await mustExist(username);
      if (role !== 'admin') await keepAnAdmin(u, 'demoted');
      await update(username, { role, tokensNotBefore: now() });
    },
    async revokeTokens(username, at = now()) {
      await update(username, { tokensNotBefore: at });
    },
    async delete(username) {
      await keepAnAdmin(await mustExist(username), 'deleted');
      await deleteUserItem(store, username);
      cache.delete(username);
    },
    clearCache() {
      cache.clear();
    },
  };
}

/** A new account: checked name and password, a fresh account id, the password hashed. */
async function newUser(
  input: { username: string; password: string; role: Role; createdBy?: string },
  at: number,
): Promise<User> {
  if (!USERNAME_PATTERN.test(input.username)) {
    throw new UserError('invalid', 'username must be 1-64 characters of A-Z a-z 0-9 _ . @ -');
  }
  const problem = passwordProblem(input.password);
  if (problem) throw new UserError('invalid', `password ${problem}`);
  return {
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
