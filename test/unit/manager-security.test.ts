/**
 * The manager's security building blocks without a store: the token secret's refusals
 * (docs/hardening.md §5 test 28), scrypt passwords, signed session tokens (every change of the token
 * fails, fast-check), role mapping onto Elkeid's levels, the token bucket.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { hashPassword, passwordProblem, verifyPassword } from '../../manager/passwords.js';
import { createRateLimiter } from '../../manager/rate-limit.js';
import { allowed, elkeidLevel, roleFromElkeidLevel } from '../../manager/roles.js';
import {
  assertStrongSecret,
  KNOWN_DEFAULT_SECRETS,
  resolveManagerSecret,
  SecretError,
} from '../../manager/secret.js';
import { createTokenSigner } from '../../manager/tokens.js';

const GOOD = 'r8Jq2vX0pLw9sT4mN7bC1dF6gH3kZ5yA0uE8iO2q';

test('the secret: env, generated file (0600, reused), and every refusal', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fg-secret-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.equal(resolveManagerSecret({ env: { FLEETGATE_MANAGER_SECRET: GOOD }, dataDir: dir }).source, 'env');

  const generated = resolveManagerSecret({ env: {}, dataDir: dir });
  assert.equal(generated.source, 'generated');
  assert.equal(statSync(generated.file!).mode & 0o777, 0o600);
  assert.ok(generated.secret.length >= 32);
  const again = resolveManagerSecret({ env: {}, dataDir: dir });
  assert.equal(again.source, 'file');
  assert.deepEqual(again.secret, generated.secret);

  // Cloud mode (AWS_REGION or Lambda) without the env var: refused, even with a data dir.
  assert.throws(() => resolveManagerSecret({ env: { AWS_REGION: 'eu-west-1' }, dataDir: dir }), SecretError);
  assert.throws(
    () => resolveManagerSecret({ env: { AWS_LAMBDA_FUNCTION_NAME: 'f' }, dataDir: dir }),
    /FLEETGATE_MANAGER_SECRET is not set/,
  );
  assert.throws(() => resolveManagerSecret({ env: {} }), /not set/);
  // Short, published, low-entropy: refused from the env and from the file alike.
  assert.throws(
    () => resolveManagerSecret({ env: { FLEETGATE_MANAGER_SECRET: 'short-secret' }, dataDir: dir }),
    /at least 32/,
  );
  for (const known of KNOWN_DEFAULT_SECRETS) {
    assert.throws(() => assertStrongSecret(known, 'x'), /published default/);
    assert.throws(() => assertStrongSecret(`${known.toUpperCase()}-padding`, 'x'), /published default/);
  }
  assert.throws(() => assertStrongSecret('ab'.repeat(20), 'x'), /distinct characters/);
  writeFileSync(path.join(dir, 'manager-secret'), 'ASpQO2kzFcosGHavUP9BJkn5pcFGIjeg\n');
  assert.throws(() => resolveManagerSecret({ env: {}, dataDir: dir }), /published default/);
  assert.match(readFileSync(path.join(dir, 'manager-secret'), 'utf8'), /ASpQ/);
});

test('scrypt passwords: salted, verified, wrong ones refused', async () => {
  const cost = { N: 1024, r: 8, p: 1 };
  const a = await hashPassword('correct horse battery', cost);
  const b = await hashPassword('correct horse battery', cost);
  assert.notEqual(a, b, 'per-user salt');
  assert.match(a, /^scrypt\$1024\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
  assert.equal(await verifyPassword('correct horse battery', a), true);
  assert.equal(await verifyPassword('correct horse batterx', a), false);
  assert.equal(await verifyPassword('correct horse battery', 'sha1$abc'), false);
  assert.equal(await verifyPassword('x'.repeat(300), a), false);
  assert.ok(passwordProblem('short'));
  assert.equal(passwordProblem('long enough pass'), undefined);
});

test('session tokens: issued, verified, expired; any change to a token fails (fast-check)', () => {
  const signer = createTokenSigner(Buffer.from(GOOD), 60_000);
  const { token, claims } = signer.issue('alice', 1_000_000);
  const ok = signer.verify(token, 1_000_500);
  assert.ok(ok.ok);
  assert.equal(ok.ok && ok.claims.u, 'alice');
  assert.equal(claims.exp, 1_060_000);
  assert.deepEqual(signer.verify(token, 1_060_000), { ok: false, reason: 'token expired' });
  assert.equal(
    createTokenSigner(Buffer.from(`${GOOD}x`)).verify(token, 1_000_500).ok,
    false,
    'another secret',
  );
  fc.assert(
    fc.property(fc.nat({ max: token.length - 1 }), fc.integer({ min: 1, max: 63 }), (i, delta) => {
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
      const c = token[i]!;
      const replaced = alphabet[(alphabet.indexOf(c) + delta) % alphabet.length]!;
      const forged = token.slice(0, i) + replaced + token.slice(i + 1);
      // A base64url digit whose change only touches the unused low bits of the last character
      // decodes to the same MAC; that is not a forgery of anything, so skip it.
      if (forged === token) return true;
      const r = signer.verify(forged, 1_000_500);
      return !r.ok || (r.claims.u === 'alice' && r.claims.sid === claims.sid && r.claims.exp === claims.exp);
    }),
    { numRuns: 2000 },
  );
  // A payload re-signed by someone without the secret.
  const [prefix, , mac] = token.split('.');
  const evil = Buffer.from(JSON.stringify({ ...claims, u: 'root' })).toString('base64url');
  assert.equal(signer.verify(`${prefix}.${evil}.${mac}`, 1_000_500).ok, false);
});

test('roles map onto Elkeid levels and gate access', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 8].map(roleFromElkeidLevel), [
    'admin',
    'operator',
    'operator',
    'viewer',
    'viewer',
    'viewer',
  ]);
  assert.deepEqual((['admin', 'operator', 'viewer'] as const).map(elkeidLevel), [0, 2, 3]);
  const viewer = { kind: 'user' as const, id: 'v', role: 'viewer' as const };
  const gateway = { kind: 'gateway' as const, id: 'ak' };
  assert.equal(allowed('read', viewer), true);
  assert.equal(allowed('write', viewer), false);
  assert.equal(allowed('callback', gateway), true);
  assert.equal(allowed('read', gateway), false, 'a gateway key reads nothing but the callbacks');
  assert.equal(allowed('read', undefined), false);
  assert.equal(allowed('public', undefined), true);
});

test('token bucket: burst, refill, retry-after', () => {
  let now = 0;
  const rl = createRateLimiter({ ratePerSecond: 2, burst: 3, now: () => now });
  assert.ok(rl.take('k').ok && rl.take('k').ok && rl.take('k').ok);
  const refused = rl.take('k');
  assert.deepEqual(refused, { ok: false, retryAfterS: 1 });
  assert.ok(rl.take('other').ok, 'keys are independent');
  now += 500;
  assert.ok(rl.take('k').ok);
  assert.equal(rl.take('k').ok, false);
});
