/**
 * The manager's token-signing secret (HMAC-SHA256 of session tokens): `FLEETGATE_MANAGER_SECRET`,
 * else `<dataDir>/manager-secret`, generated (32 random bytes, mode 0600) on the first start of a
 * single-machine install. Refused at start (docs/hardening.md §5 test 28), with a clear message:
 *   - missing in cloud mode (AWS_REGION set or running in Lambda): a function or a fleet of
 *     managers has no shared data dir, and one generated per process would not verify elsewhere;
 *   - shorter than 32 bytes;
 *   - a published default, such as Elkeid's `apiauth.secret` from its sample `svr.yml` (Elkeid
 *     #755: tokens forgeable by anyone who read the repository), or too repetitive to be random.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const MIN_SECRET_BYTES = 32;
export const SECRET_FILE = 'manager-secret';

/**
 * Secrets shipped in Elkeid's public configuration (server/manager/conf/svr.yml, and the AK/SK
 * test vectors of our own reference), compared case-insensitively as Elkeid treats them.
 */
export const KNOWN_DEFAULT_SECRETS: readonly string[] = [
  'ASpQO2kzFcosGHavUP9BJkn5pcFGIjeg', // Elkeid manager http.apiauth.secret
  'sfhSDLz124J80ioGIyuWsTX9lDxwFdpk', // Elkeid manager http.innerauth sk
  '2FfQR1FzxRqJRraOw4DGFH7UJieccrGi', // Elkeid manager sd.credentials sk
  '60b29se7164027072799f565eb964d91', // Elkeid manager server.credentials sk
  'L3E56PpoCoKktzUSlZc1zQdq1x2n9ign', // AK/SK test vector (docs/elkeid-protocol.md §2.13)
  'kqxxfphfxj6ud9pon1zyf2oyqrda3xdt', // AK/SK test vector (docs/elkeid-protocol.md §2.13)
];

export class SecretError extends Error {
  override name = 'SecretError';
}

/** Throws a SecretError saying why `secret` must not sign tokens. */
export function assertStrongSecret(secret: string, source: string): void {
  const bytes = Buffer.byteLength(secret, 'utf8');
  if (bytes === 0) throw new SecretError(`${source} is empty`);
  if (bytes < MIN_SECRET_BYTES) {
    throw new SecretError(`${source} is ${bytes} bytes long; at least ${MIN_SECRET_BYTES} are required`);
  }
  const lower = secret.toLowerCase();
  for (const known of KNOWN_DEFAULT_SECRETS) {
    if (lower.includes(known.toLowerCase())) {
      throw new SecretError(`${source} is a published default secret (Elkeid's sample configuration)`);
    }
  }
  // `aaaa…`, `0123456789…` or a short word repeated: not the output of a random generator.
  if (new Set(secret).size < 10) {
    throw new SecretError(`${source} has fewer than 10 distinct characters; generate a random one`);
  }
}

export interface ResolveSecretOptions {
  env?: NodeJS.ProcessEnv;
  /** Where the generated secret lives; undefined: no data dir (a function), so the env is required. */
  dataDir?: string | undefined;
  /** Cloud mode: the secret must come from the environment. Default: AWS_REGION or Lambda. */
  cloud?: boolean;
}

export interface ResolvedSecret {
  secret: Buffer;
  source: 'env' | 'file' | 'generated';
  /** The file, when the secret came from or went to one. */
  file?: string;
}

export function isCloudMode(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.AWS_REGION ?? '').trim() !== '' || (env.AWS_LAMBDA_FUNCTION_NAME ?? '').trim() !== '';
}

export function resolveManagerSecret(opts: ResolveSecretOptions = {}): ResolvedSecret {
  const env = opts.env ?? process.env;
  const fromEnv = env.FLEETGATE_MANAGER_SECRET;
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    const s = fromEnv.trim();
    assertStrongSecret(s, 'FLEETGATE_MANAGER_SECRET');
    return { secret: Buffer.from(s, 'utf8'), source: 'env' };
  }
  const cloud = opts.cloud ?? isCloudMode(env);
  if (cloud || opts.dataDir === undefined) {
    throw new SecretError(
      'FLEETGATE_MANAGER_SECRET is not set: in cloud mode (AWS_REGION or Lambda) every manager must ' +
        'share one secret of at least 32 random bytes, e.g. `openssl rand -base64 48`',
    );
  }
  const file = path.join(opts.dataDir, SECRET_FILE);
  if (existsSync(file)) {
    const s = readFileSync(file, 'utf8').trim();
    assertStrongSecret(s, file);
    return { secret: Buffer.from(s, 'utf8'), source: 'file', file };
  }
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const s = randomBytes(48).toString('base64url');
  writeFileSync(file, `${s}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { secret: Buffer.from(s, 'utf8'), source: 'generated', file };
}
