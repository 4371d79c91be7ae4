/**
 * Issue 14, items 4, 7, 11 and 14 (start-time parts): a start that cannot work stops before any
 * listener opens, with exit 2 and one line per cause naming it (no stack trace); a bad PKI file
 * at reload keeps the previous good set and agents keep connecting.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { connectAgent } from '../../loadtest/agent/raw-agent.js';
import { createCa, createServerCert } from '../../platform/pki/certs.js';
import { PkiError, validatePkiDir } from '../../platform/pki/validate.js';
import { CLI_ENTRY, ROOT, startTestGateway, tempDir, testPki, writePki } from '../helpers/gateway.js';

function fleetgate(role: string, env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI_ENTRY, role], {
    cwd: ROOT,
    env: {
      ...process.env,
      FLEETGATE_HOST: '127.0.0.1',
      FLEETGATE_GRPC_PORT: '0',
      FLEETGATE_HTTP_PORT: '0',
      FLEETGATE_SD_PORT: '0',
      FLEETGATE_MANAGER_PORT: '0',
      FLEETGATE_LOG_LEVEL: 'warn',
      ...env,
    },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}`, stderr: r.stderr };
}

/** Exit 2, the cause named, nothing started, no stack trace. */
function assertRefused(r: ReturnType<typeof fleetgate>, cause: RegExp): void {
  assert.equal(r.code, 2, r.out);
  assert.match(r.stderr, cause);
  assert.doesNotMatch(r.out, /is up/, 'nothing announced as up');
  assert.doesNotMatch(r.out, /\n\s+at .+:\d+:\d+/, `no stack trace:\n${r.out}`);
}

test('a corrupt CA file stops the start, naming the file (exit 2)', async (t) => {
  const dataDir = tempDir(t);
  const pkiDir = path.join(dataDir, 'pki');
  mkdirSync(pkiDir);
  writePki(pkiDir, await testPki());
  writeFileSync(path.join(pkiDir, 'ca.crt'), 'garbage');
  assertRefused(fleetgate('gateway', { FLEETGATE_DATA_DIR: dataDir }), /ca\.crt: holds no PEM certificate/);
});

test('mismatched key pair, a PKI dir with only ca.crt, a server cert of another CA: each named', async (t) => {
  const pki = await testPki();
  const other = await createCa();
  const otherServer = await createServerCert(other, { hosts: ['127.0.0.1'] });
  const cases: Array<[string, (dir: string) => void, RegExp]> = [
    [
      'key pair',
      (d) => writeFileSync(path.join(d, 'server.key'), otherServer.key),
      /server\.key: does not match .*mismatched key pair/,
    ],
    ['only ca.crt', (d) => writeFileSync(path.join(d, 'server.crt'), ''), /server\.crt: holds no PEM/],
    [
      'other CA',
      (d) => {
        writeFileSync(path.join(d, 'server.crt'), otherServer.cert);
        writeFileSync(path.join(d, 'server.key'), otherServer.key);
      },
      /server\.crt: is not signed by any certificate of ca\.crt/,
    ],
  ];
  for (const [what, spoil, cause] of cases) {
    const dir = tempDir(t);
    writePki(dir, pki);
    spoil(dir);
    assert.throws(
      () => validatePkiDir(dir),
      (err: unknown) => err instanceof PkiError && cause.test(err.message),
      what,
    );
  }
  const dataDir = tempDir(t);
  mkdirSync(path.join(dataDir, 'pki'));
  writeFileSync(path.join(dataDir, 'pki', 'ca.crt'), pki.ca.cert);
  assertRefused(fleetgate('gateway', { FLEETGATE_DATA_DIR: dataDir }), /missing server\.crt, server\.key/);
});

test('port in use, weak FLEETGATE_ADMIN, unusable data dir, short AK/SK secret, unreachable advertised address', async (t) => {
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.after(() => taken.close());
  const busyPort = (taken.address() as net.AddressInfo).port;
  const r = fleetgate('all', {
    FLEETGATE_DATA_DIR: tempDir(t),
    FLEETGATE_GRPC_PORT: String(busyPort),
    FLEETGATE_ADMIN: 'admin:admin',
  });
  assertRefused(r, /FLEETGATE_GRPC_PORT=\d+: cannot listen on 127\.0\.0\.1:\d+ \(in use\)/);
  assert.match(r.stderr, /FLEETGATE_ADMIN: the password must be at least/, 'every cause listed at once');

  const file = path.join(tempDir(t), 'not-a-dir');
  writeFileSync(file, 'x');
  assertRefused(fleetgate('gateway', { FLEETGATE_DATA_DIR: file }), /FLEETGATE_DATA_DIR=.*not-a-dir: /);

  assertRefused(
    fleetgate('gateway', { FLEETGATE_DATA_DIR: tempDir(t), FLEETGATE_AKSK: 'ak1:x' }),
    /FLEETGATE_AKSK: the secret of "ak1" is shorter than 16 characters/,
  );
  assertRefused(
    fleetgate('gateway', { FLEETGATE_DATA_DIR: tempDir(t), FLEETGATE_ADVERTISE_HOST: '192.0.2.2' }),
    /FLEETGATE_ADVERTISE_HOST=192\.0\.2\.2 cannot reach the listener on FLEETGATE_HOST=127\.0\.0\.1/,
  );
});

test('a corrupt CA file at reload keeps the previous good set: agents still connect', async (t) => {
  const g = await startTestGateway(t);
  writeFileSync(path.join(g.pkiDir, 'ca.crt'), 'garbage');
  assert.equal(g.gateway.tls.reload(), false, 'reload refused');
  const session = await connectAgent(g.address, g.tls);
  session.destroy();
});
