/**
 * Issue 14, item 14: the manager parses JSON bodies only when they say so (a form or text/plain
 * POST, which a foreign web page can send without a preflight, is refused 415); a discovery
 * registration name with a control character is refused, so nothing raw reaches /metrics; the
 * start banner tells what the server certificate really carries, and says loudly when it made a
 * new CA.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createRegistryStore } from '../../discovery/registry-store.js';
import { startDiscovery } from '../../discovery/service.js';
import { signRequest } from '../../platform/http/aksk.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { startTestDynamo } from '../helpers/dynalite.js';
import { spawnFleetgate, tempDir } from '../helpers/gateway.js';
import { startTestManager } from '../helpers/manager-harness.js';

test('the manager refuses JSON bodies sent as a form or as text: 415, nothing changed', async (t) => {
  const m = await startTestManager(t);
  const body = JSON.stringify({ username: 'csrf', password: 'csrf-password-1', role: 'admin' });
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    const r = await m.call('POST', '/api/fleet/users', {
      token: m.token('root'),
      raw: body,
      headers: { 'content-type': type },
    });
    assert.equal(r.status, 415, `${type}: ${r.text}`);
    assert.equal(r.json.error, 'unsupported_media_type');
  }
  assert.equal((await m.role.api.users.get('csrf', { fresh: true })) === undefined, true, 'no user created');
  const ok = await m.call('POST', '/api/fleet/users', {
    token: m.token('root'),
    raw: body,
    headers: { 'content-type': 'application/json; charset=utf-8' },
  });
  assert.equal(ok.status, 201, ok.text);
});

test('discovery refuses a registration name with a control character; /metrics stays clean', async (t) => {
  const db = await startTestDynamo();
  t.after(() => db.close());
  const registry = new Registry();
  const [ak, sk] = ['sec14akforthetest', 'a-secret-of-enough-length-123'];
  const sd = await startDiscovery({
    host: '127.0.0.1',
    port: 0,
    store: createRegistryStore({ client: db.client, tablePrefix: db.prefix }),
    aksk: [[ak, sk]],
    logger: silentLogger(),
    registry,
    cache: { freshMs: 0, maxAgeMs: 0, retryMs: 0 },
  });
  t.after(() => sd.close());
  const register = async (name: string) => {
    const body = JSON.stringify({ name, ip: '10.0.0.1', port: 6751, weight: 1 });
    const res = await fetch(`http://127.0.0.1:${sd.port}/registry/register`, {
      method: 'POST',
      headers: signRequest({ method: 'POST', path: '/registry/register', query: '', body, ak, sk }),
      body,
    });
    return res.status;
  };
  assert.equal(await register('hids\u0000svr'), 400);
  assert.equal(await register('hids\u001bsvr'), 400);
  assert.equal(await register('hids_svr_grpc'), 200);
  await fetch(`http://127.0.0.1:${sd.port}/registry/detail?name=hids_svr_grpc`);
  const metrics = await (await fetch(`http://127.0.0.1:${sd.port}/metrics`)).text();
  assert.match(metrics, /hids_svr_grpc/);
  assert.equal(
    metrics.includes('\u0000') || metrics.includes('\u001b'),
    false,
    'no control character in /metrics',
  );
});

/** A CA and a server certificate for 127.0.0.1 only (no elkeid.com), made with openssl. */
function pkiWithoutElkeidName(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key');
  run('req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=test-ca', '-days', '2', '-out', 'ca.crt');
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'server.key');
  run('req', '-new', '-key', 'server.key', '-subj', '/CN=gw', '-out', 'server.csr');
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
    '-out',
    'server.crt',
  );
}

test('the banner tells the server certificate’s real names, and a newly generated CA, loudly', async (t) => {
  const own = tempDir(t);
  pkiWithoutElkeidName(path.join(own, 'pki'));
  const a = spawnFleetgate('gateway', own);
  t.after(() => a.child.kill('SIGKILL'));
  await a.port;
  assert.match(a.output(), /WARNING: the server certificate's names \(127\.0\.0\.1\) lack elkeid\.com/);
  assert.doesNotMatch(a.output(), /carries SAN elkeid\.com/);

  const dataDir = tempDir(t);
  const b = spawnFleetgate('gateway', dataDir, { FLEETGATE_PKI_DIR: path.join(dataDir, 'mistyped-pki') });
  t.after(() => b.child.kill('SIGKILL'));
  await b.port;
  assert.match(
    b.output(),
    /NEW development CA generated in .*mistyped-pki: agents trusting any other CA are refused/,
  );
  assert.match(b.output(), /carries SAN elkeid\.com/);
});
