/**
 * Short-lived signed session tokens: `fgs1.<payload>.<mac>`, payload = base64url JSON
 * `{u: username, a: account id, sid, iat, exp}` (milliseconds), mac = base64url HMAC-SHA256(secret, "fgs1." + payload).
 * Stateless to verify (any manager instance, any Lambda container, with the shared secret);
 * revocation is per user: logout and password changes move the user's `tokensNotBefore`, and a
 * token issued before it is refused (users are cached for a few seconds, so within that).
 * The role is not in the token: it is read from the user record, so a demotion applies at once.
 * The account id binds the token to one account, not to its name: a user deleted and created
 * again under the same name is a new account (users.ts), and the old account's tokens stay dead.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const PREFIX = 'fgs1.';
/** Default lifetime: one hour (Elkeid's JWTs last 12 h; a script logs in again). */
export const DEFAULT_TOKEN_TTL_MS = 60 * 60 * 1000;
const MAX_TOKEN_LENGTH = 1024;

export interface TokenClaims {
  u: string;
  /** The account's id (users.ts `accountId`); absent only in tokens of accounts made before ids existed. */
  a?: string;
  sid: string;
  iat: number;
  exp: number;
}

export type TokenCheck = { ok: true; claims: TokenClaims } | { ok: false; reason: string };

export interface TokenSigner {
  issue(username: string, now?: number, accountId?: string): { token: string; claims: TokenClaims };
  verify(token: string, now?: number): TokenCheck;
}

export function isSessionToken(token: string): boolean {
  return token.startsWith(PREFIX);
}

export function createTokenSigner(secret: Buffer, ttlMs = DEFAULT_TOKEN_TTL_MS): TokenSigner {
  const mac = (data: string) => createHmac('sha256', secret).update(data).digest();
  return {
    issue(username, now = Date.now(), accountId = undefined) {
      const claims: TokenClaims = {
        u: username,
        ...(accountId !== undefined ? { a: accountId } : {}),
        sid: randomBytes(9).toString('base64url'),
        iat: now,
        exp: now + ttlMs,
      };
      const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
      const signed = `${PREFIX}${payload}`;
      return { token: `${signed}.${mac(signed).toString('base64url')}`, claims };
    },
    verify(token, now = Date.now()) {
      if (token.length > MAX_TOKEN_LENGTH || !token.startsWith(PREFIX))
        return { ok: false, reason: 'malformed token' };
      const dot = token.lastIndexOf('.');
      if (dot <= PREFIX.length) return { ok: false, reason: 'malformed token' };
      const signed = token.slice(0, dot);
      const given = Buffer.from(token.slice(dot + 1), 'base64url');
      const expected = mac(signed);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return { ok: false, reason: 'bad token signature' };
      }
      let claims: unknown;
      try {
        claims = JSON.parse(Buffer.from(signed.slice(PREFIX.length), 'base64url').toString('utf8'));
      } catch {
        return { ok: false, reason: 'malformed token' };
      }
      const c = claims as Partial<TokenClaims> | null;
      if (
        !c ||
        typeof c.u !== 'string' ||
        typeof c.sid !== 'string' ||
        typeof c.iat !== 'number' ||
        typeof c.exp !== 'number' ||
        (c.a !== undefined && typeof c.a !== 'string')
      ) {
        return { ok: false, reason: 'malformed token' };
      }
      if (now >= c.exp) return { ok: false, reason: 'token expired' };
      // Issued in the future by more than a clock's worth of skew: not ours.
      if (c.iat > now + 60_000) return { ok: false, reason: 'token not yet valid' };
      return { ok: true, claims: c as TokenClaims };
    },
  };
}
