/**
 * Issue 14, items 2 and 5, through a real `fleetgate all` and its manager API on the wire:
 * a user deleted and created again under the same name (now admin) is a new account, and the
 * old account's session token and API key stay dead; an admin's password reset revokes the
 * user's API keys as well as its sessions.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { CLI_ENTRY, ROOT, startFleetgateProcess } from '../helpers/gateway.js';

const ADMIN_PASSWORD = 'admin-password-for-tests';

interface Api {
  call(
    method: string,
    path: string,
    o?: { token?: string; body?: unknown },
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  login(username: string, password: string): Promise<string>;
}

function managerApi(port: number): Api {
  const call: Api['call'] = async (method, path, o = {}) => {
    const res = await send(method, path, o).catch((err: unknown) =>
      // A keep-alive socket the server closed as idle just as it was reused: once more (GET only).
      method === 'GET' ? send(method, path, o) : Promise.reject(err),
    );
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  const send = (method: string, path: string, o: { token?: string; body?: unknown }) =>
    fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: {
        ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
        ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
    });
  return {
    call,
    async login(username, password) {
      const r = await call('POST', '/api/v1/user/login', { body: { username, password } });
      const data = r.body.data as { token?: string } | undefined;
      assert.ok(data?.token, `login ${username}: ${JSON.stringify(r.body)}`);
      return data.token;
    },
  };
}

async function startManager(t: import('node:test').TestContext): Promise<Api & { dataDir: string }> {
  const banner = /manager API\s+http:\/\/127\.0\.0\.1:(\d+)/;
  const p = await startFleetgateProcess(
    t,
    'all',
    { FLEETGATE_SD_PORT: '0', FLEETGATE_MANAGER_PORT: '0', FLEETGATE_ADMIN: `admin:${ADMIN_PASSWORD}` },
    { ready: (out) => banner.test(out) },
  );
  return { ...managerApi(Number(banner.exec(p.output())![1])), dataDir: p.dataDir };
}

const roleOf = async (api: Api, token: string) => {
  const r = await api.call('GET', '/api/v1/user/info', { token });
  return { status: r.status, role: (r.body.data as { role?: string } | undefined)?.role };
};

test('delete and re-create a user: the old account’s token and API key stay dead', async (t) => {
  const api = await startManager(t);
  const admin = await api.login('admin', ADMIN_PASSWORD);
  const create = (role: string, password: string) =>
    api.call('POST', '/api/fleet/users', { token: admin, body: { username: 'alice', password, role } });
  assert.equal((await create('viewer', 'alice-viewer-password')).status, 201);
  const oldToken = await api.login('alice', 'alice-viewer-password');
  const key = await api.call('POST', '/api/fleet/apikeys', { token: oldToken, body: { name: 'script' } });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  const oldKey = (key.body as { key: string }).key;
  assert.equal((await roleOf(api, oldKey)).role, 'viewer');

  const deleted = await api.call('DELETE', '/api/fleet/users/alice', { token: admin });
  assert.equal(deleted.status, 200);
  assert.equal((deleted.body as { api_keys_revoked: number }).api_keys_revoked, 1);
  assert.equal((await create('admin', 'alice-admin-password')).status, 201);

  // The report: the old token answered `role admin` and could create users; the old key worked.
  assert.equal((await roleOf(api, oldToken)).status, 401, 'old session token refused');
  assert.equal((await roleOf(api, oldKey)).status, 401, 'old API key refused');
  const escalate = await api.call('POST', '/api/fleet/users', {
    token: oldToken,
    body: { username: 'mallory', password: 'mallory-password', role: 'admin' },
  });
  assert.equal(escalate.status, 401);
  // The new account works with its own credentials.
  assert.equal((await roleOf(api, await api.login('alice', 'alice-admin-password'))).role, 'admin');
});

test('an admin’s password reset revokes the user’s API keys and sessions; your own change keeps your keys', async (t) => {
  const api = await startManager(t);
  const admin = await api.login('admin', ADMIN_PASSWORD);
  const made = await api.call('POST', '/api/fleet/users', {
    token: admin,
    body: { username: 'bob', password: 'bob-password-one', role: 'operator' },
  });
  assert.equal(made.status, 201);
  const token = await api.login('bob', 'bob-password-one');
  const newKey = async (tok: string) =>
    (
      (await api.call('POST', '/api/fleet/apikeys', { token: tok, body: { name: 'k' } })).body as {
        key: string;
      }
    ).key;
  const key = await newKey(token);
  // Bob changes his own password: his key stays.
  const own = await api.call('PUT', '/api/fleet/users/bob/password', {
    token,
    body: { current_password: 'bob-password-one', password: 'bob-password-two' },
  });
  assert.equal(own.status, 200, JSON.stringify(own.body));
  assert.equal((await roleOf(api, key)).role, 'operator', 'own change keeps the key');
  const token2 = await api.login('bob', 'bob-password-two');
  const key2 = await newKey(token2);
  // The admin resets it: every key and session of bob stops working.
  const reset = await api.call('PUT', '/api/fleet/users/bob/password', {
    token: admin,
    body: { password: 'bob-password-three' },
  });
  assert.equal(reset.status, 200);
  assert.equal((reset.body as { api_keys_revoked: number }).api_keys_revoked, 2);
  assert.equal((await roleOf(api, key)).status, 401, 'API key revoked by the reset');
  assert.equal((await roleOf(api, key2)).status, 401, 'API key revoked by the reset');
  assert.equal((await roleOf(api, token2)).status, 401, 'session signed out by the reset');
});

test('the audit log records refused role checks, refused forged tokens and `fleetgate users` changes', async (t) => {
  const api = await startManager(t);
  const admin = await api.login('admin', ADMIN_PASSWORD);
  await api.call('POST', '/api/fleet/users', {
    token: admin,
    body: { username: 'vera', password: 'vera-password-1', role: 'viewer' },
  });
  const viewer = await api.login('vera', 'vera-password-1');
  // A viewer tries an admin route; someone presents a forged token.
  assert.equal((await api.call('GET', '/api/fleet/users', { token: viewer })).status, 403);
  const forged = `${admin.slice(0, admin.lastIndexOf('.'))}.${'A'.repeat(43)}`;
  assert.equal((await api.call('DELETE', '/api/fleet/users/vera', { token: forged })).status, 401);
  // An operator account created with the CLI, next to the running process.
  const cli = spawnSync(
    process.execPath,
    ['--import', 'tsx', CLI_ENTRY, 'users', 'add', 'cli-made', '--role', 'admin'],
    {
      cwd: ROOT,
      env: { ...process.env, FLEETGATE_DATA_DIR: api.dataDir, FLEETGATE_LOG_LEVEL: 'warn' },
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  assert.equal(cli.status, 0, cli.stderr);

  const audit = await api.call('GET', '/api/fleet/audit', { token: admin });
  const items = (audit.body as { items: Array<Record<string, unknown>> }).items;
  const find = (pred: (e: Record<string, unknown>) => boolean, what: string) => {
    const e = items.find(pred);
    assert.ok(e, `${what} audited: ${JSON.stringify(items.map((i) => [i.actor, i.action, i.status]))}`);
    return e;
  };
  find((e) => e.actor === 'user:vera' && e.status === 403 && e.action === 'GET /api/fleet/users', 'the 403');
  const refused = find(
    (e) => e.status === 401 && e.action === 'DELETE /api/fleet/users/:name',
    'the forged 401',
  );
  assert.equal(refused.actor, 'unauthenticated');
  assert.match(String(refused.detail), /bad token signature/);
  const made = find((e) => e.action === 'fleetgate users add', 'the CLI change');
  assert.match(String(made.actor), /^cli:/);
  assert.equal(made.target, 'user:cli-made');
});
