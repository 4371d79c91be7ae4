/**
 * Who is calling: a gateway signing with AK/SK, an API key (its owner must still exist and its
 * role is capped by the owner's current one), or a session token (refused once revoked or when
 * its account was deleted, even if re-created under the same name).
 */
import type { Verifier } from '../platform/http/aksk.js';
import type { HttpRequest } from '../platform/http/types.js';
import { type ApiKeyStore, isApiKey } from './apikeys.js';
import type { Principal } from './roles.js';
import { isSessionToken, type TokenSigner } from './tokens.js';
import { accountMatches, type UserStore } from './users.js';

export interface Authentication {
  principal?: Principal;
  /** Why not (logged and audited), e.g. `no credentials`, `token revoked`. */
  reason?: string;
}

export interface AuthDeps {
  users: UserStore;
  apiKeys: ApiKeyStore;
  tokens: TokenSigner;
  verifier: Verifier;
  now: () => number;
}

/** The credential of a request: `Authorization: Bearer`, Elkeid's `token` header, or `X-Api-Key`. */
function credentials(req: HttpRequest): string | undefined {
  const auth = req.headers.authorization;
  if (auth && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, '').trim();
  return req.headers.token?.trim() || req.headers['x-api-key']?.trim() || undefined;
}

const RANK = { viewer: 1, operator: 2, admin: 3 } as const;

async function apiKeyPrincipal(deps: AuthDeps, cred: string): Promise<Authentication> {
  const key = await deps.apiKeys.verify(cred);
  if (!key) return { reason: 'invalid API key' };
  // The owner must still exist; the key's role is capped by the owner's current one.
  const owner = await deps.users.get(key.owner);
  if (!owner || owner.disabledAt !== undefined) return { reason: 'API key owner no longer exists' };
  if (!accountMatches(owner, key.ownerAccount)) return { reason: 'API key of a deleted account' };
  const role = RANK[key.role] <= RANK[owner.role] ? key.role : owner.role;
  return { principal: { kind: 'apikey', id: key.keyId, role, owner: key.owner } };
}

async function sessionPrincipal(deps: AuthDeps, cred: string): Promise<Authentication> {
  const t = deps.tokens.verify(cred, deps.now());
  if (!t.ok) return { reason: t.reason };
  const user = await deps.users.get(t.claims.u);
  if (!user || user.disabledAt !== undefined) return { reason: 'user no longer exists' };
  // Same name, other account (deleted and created again): not this token's account.
  if (!accountMatches(user, t.claims.a)) return { reason: 'token of a deleted account' };
  if (t.claims.iat < user.tokensNotBefore) return { reason: 'token revoked' };
  return { principal: { kind: 'user', id: user.username, role: user.role } };
}

export async function authenticate(deps: AuthDeps, req: HttpRequest): Promise<Authentication> {
  if (req.headers.accesskey !== undefined) {
    const r = deps.verifier.verify(req);
    return r.ok ? { principal: { kind: 'gateway', id: r.ak } } : { reason: r.reason };
  }
  const cred = credentials(req);
  if (!cred) return { reason: 'no credentials' };
  if (isApiKey(cred)) return apiKeyPrincipal(deps, cred);
  if (isSessionToken(cred)) return sessionPrincipal(deps, cred);
  return { reason: 'unrecognised credentials' };
}
