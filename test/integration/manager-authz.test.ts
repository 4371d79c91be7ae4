/**
 * Manager authentication and authorisation over the running uWS listener (docs/hardening.md §5):
 * every route × every kind of caller (nobody, a gateway with AK/SK, each role as a signed-in
 * user and as an API key) against an expectation table written here, independently of the
 * routes' own declarations; sign-in, sign-out and revocation; API keys; the first admin; the
 * rate limit (429 in the envelope) and the body limit (413).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AK, ROOT_PASSWORD, startTestManager, type TestManager } from '../helpers/manager-harness.js';

type Expect =
  | 'public'
  | 'user'
  | 'read'
  | 'write'
  | 'admin'
  | 'callback'
  | 'callback-write'
  | 'signed-in-user';

/** What each route must allow. A route missing here, or listed here but not served, fails the test. */
const EXPECTED: Record<string, Expect> = {
  'POST /api/v1/user/login': 'public',
  'GET /api/v1/user/logout': 'user',
  'GET /api/v1/user/info': 'user',
  'GET /api/v1/agent/getStatus': 'read',
  'GET /api/v1/agent/getStatus/:id': 'read',
  'POST /api/v1/agent/getStatus/filter': 'read',
  'GET /api/v1/agent/getConfig/:id': 'callback',
  'GET /api/v1/agent/getDefaultConfig': 'read',
  'POST /api/v1/agent/updateDefaultConfig': 'write',
  'POST /api/v1/agent/queryInfo': 'callback',
  'POST /api/v6/component/GetComponentInstances': 'callback',
  'POST /api/v1/addTags': 'write',
  'POST /api/v1/addTags/filter': 'write',
  'POST /api/v1/delTags': 'write',
  'GET /api/v1/getTags': 'read',
  'POST /api/v1/getTags': 'read',
  'GET /api/fleet/me': 'user',
  'GET /api/fleet/stats': 'read',
  'GET /api/fleet/live': 'read',
  'GET /api/fleet/agents': 'read',
  'GET /api/fleet/gateways': 'read',
  'GET /api/fleet/gateways/:id/limit': 'read',
  'PUT /api/fleet/gateways/:id/limit': 'write',
  'DELETE /api/fleet/gateways/:id/limit': 'write',
  'POST /api/fleet/gateways/rebalance': 'write',
  'GET /api/fleet/agents/:id': 'read',
  'GET /api/fleet/agents/:id/config': 'read',
  'GET /api/fleet/agents/:id/tasks': 'read',
  'GET /api/fleet/agents/:id/connections': 'read',
  'GET /api/fleet/configs/default': 'read',
  'PUT /api/fleet/configs/default': 'write',
  'GET /api/fleet/configs/tags/:tag': 'read',
  'PUT /api/fleet/configs/tags/:tag': 'write',
  'DELETE /api/fleet/configs/tags/:tag': 'write',
  'GET /api/fleet/configs/agents/:id': 'read',
  'PUT /api/fleet/configs/agents/:id': 'write',
  'DELETE /api/fleet/configs/agents/:id': 'write',
  'GET /api/fleet/users': 'admin',
  'POST /api/fleet/users': 'admin',
  'DELETE /api/fleet/users/:name': 'admin',
  // Another user's password: admins only (your own: see the sign-in test).
  'PUT /api/fleet/users/:name/password': 'admin',
  'PUT /api/fleet/users/:name/role': 'admin',
  'GET /api/fleet/apikeys': 'admin',
  'POST /api/fleet/apikeys': 'signed-in-user',
  'DELETE /api/fleet/apikeys/:id': 'admin',
  'GET /api/fleet/audit': 'admin',
  'POST /api/v1/agent/createTask/config': 'write',
  'POST /api/v1/agent/createTask/task': 'write',
  'POST /api/v1/agent/createTask/ctrl': 'write',
  'POST /api/v1/agent/createTask/delConfig': 'write',
  'POST /api/v1/agent/controlTask': 'write',
  'POST /api/v1/agent/quickTask/task': 'write',
  'POST /api/v1/agent/getTask/filter': 'read',
  'GET /api/v1/agent/getTask/:id': 'read',
  'GET /api/v1/agent/getJob/:id': 'read',
  'POST /api/v1/agent/getSubTask/filter': 'read',
  'GET /api/v1/agent/getSubTask/:id': 'read',
  // State-changing callback: gateways and writers, not viewers.
  'POST /api/v1/agent/updateSubTask': 'callback-write',
  'POST /api/fleet/tasks': 'write',
  'GET /api/fleet/tasks': 'read',
  'GET /api/fleet/tasks/:id': 'read',
  'POST /api/fleet/tasks/:id/run': 'write',
  'POST /api/fleet/tasks/:id/cancel': 'write',
  'GET /api/fleet/tasks/:id/subtasks': 'read',
};

type Caller = {
  name: string;
  kind: 'none' | 'gateway' | 'user' | 'apikey';
  role?: 'viewer' | 'operator' | 'admin';
};

const CALLERS: Caller[] = [
  { name: 'nobody', kind: 'none' },
  { name: 'gateway', kind: 'gateway' },
  ...(['viewer', 'operator', 'admin'] as const).flatMap((role): Caller[] => [
    { name: `${role}-user`, kind: 'user', role },
    { name: `${role}-key`, kind: 'apikey', role },
  ]),
];

function expectedAllowed(e: Expect, c: Caller): boolean {
  switch (e) {
    case 'public':
      return true;
    case 'callback':
      return c.kind !== 'none';
    case 'callback-write':
      return c.kind === 'gateway' || ((c.kind === 'user' || c.kind === 'apikey') && c.role !== 'viewer');
    case 'user':
    case 'read':
      return c.kind === 'user' || c.kind === 'apikey';
    case 'write':
      return (c.kind === 'user' || c.kind === 'apikey') && c.role !== 'viewer';
    case 'admin':
      return (c.kind === 'user' || c.kind === 'apikey') && c.role === 'admin';
    case 'signed-in-user':
      return c.kind === 'user';
  }
}

function sample(method: string, path: string, caller: string): { path: string; body?: unknown } {
  const p = path
    .replace(':id/limit', 'gw-1/limit')
    .replace('apikeys/:id', 'apikeys/0000000000000000')
    .replace(':id', 'agent-x')
    .replace(':tag', 'web')
    .replace(':name', 'nobody');
  const bodies: Record<string, unknown> = {
    'POST /api/v1/user/login': { username: 'nobody', password: 'wrong-password' },
    'POST /api/v1/agent/getStatus/filter': { filter: [], condition: '$and' },
    'POST /api/v1/agent/updateDefaultConfig': { type: 'agent_config', config: [] },
    'POST /api/v1/agent/queryInfo': { id_list: ['agent-x'] },
    'POST /api/v6/component/GetComponentInstances': { agent_id: 'agent-x' },
    'POST /api/v1/addTags': { tag: 'matrix', id_list: ['agent-x'] },
    'POST /api/v1/addTags/filter': {
      filter: [{ key: 'agent_id', rules: [{ operator: '$eq', value: 'none' }] }],
    },
    'POST /api/v1/delTags': { tag: 'matrix', id_list: ['agent-x'] },
    'POST /api/v1/getTags': { id_list: ['agent-x'] },
    'PUT /api/fleet/gateways/:id/limit': { limit: 100 },
    'PUT /api/fleet/configs/default': { config: [] },
    'PUT /api/fleet/configs/tags/:tag': { config: [] },
    'PUT /api/fleet/configs/agents/:id': { config: [] },
    'POST /api/fleet/users': { username: `made-by-${caller}`, password: 'a-long-password-1', role: 'viewer' },
    'PUT /api/fleet/users/:name/password': { password: 'a-new-password-1' },
    'PUT /api/fleet/users/:name/role': { role: 'viewer' },
    'POST /api/fleet/apikeys': { name: 'k', role: 'viewer' },
    'POST /api/v1/agent/createTask/config': {
      id_list: ['agent-x'],
      data: { config: [{ name: 'collector', version: '1.0.0.1' }] },
    },
    'POST /api/v1/agent/createTask/task': {
      id_list: ['agent-x'],
      data: { task: { name: 'collector', data: '{}', data_type: 5100 } },
    },
    'POST /api/v1/agent/createTask/ctrl': { id_list: ['agent-x'], data: { agent_ctrl: 1060 } },
    'POST /api/v1/agent/createTask/delConfig': { id_list: ['agent-x'], data: ['collector'] },
    'POST /api/v1/agent/controlTask': { task_id: '1700000000000000000abcdef', action: 'run' },
    'POST /api/v1/agent/quickTask/task': { agent_id: 'agent-x', command: { agent_ctrl: 1060 } },
    'POST /api/v1/agent/getTask/filter': { filter: [], condition: '$and' },
    'POST /api/v1/agent/getSubTask/filter': {
      filter: [{ key: 'task_id', rules: [{ operator: '$eq', value: '1700000000000000000abcdef' }] }],
    },
    'POST /api/v1/agent/updateSubTask': [
      { token: 'aaaaaaaaaaaaaaaaaaaa', status: 'succeed', data_type: '5100' },
    ],
    'POST /api/fleet/tasks': { action: 'ctrl', id_list: ['agent-x'], data: { agent_ctrl: 1060 } },
    'POST /api/fleet/tasks/:id/run': { rolling_percent: 1 },
  };
  const key = `${method} ${path}`;
  return {
    path: path === '/api/v1/addTags/filter' ? `${p}?tag=matrix` : p,
    ...(key in bodies ? { body: bodies[key] } : {}),
  };
}

async function setup(
  t: import('node:test').TestContext,
): Promise<{ m: TestManager; keys: Map<string, string> }> {
  const m = await startTestManager(t, {
    api: {
      rateLimit: { ratePerSecond: 1000, burst: 1000 },
      loginRateLimit: { ratePerSecond: 100, burst: 100 },
    },
  });
  const keys = new Map<string, string>();
  for (const role of ['viewer', 'operator', 'admin'] as const) {
    await m.user(`${role}-user`, role);
    const created = await m.role.api.apiKeys.create({
      name: role,
      owner: `${role}-user`,
      ownerAccount: (await m.role.api.users.get(`${role}-user`))?.accountId,
      role,
    });
    keys.set(`${role}-key`, created.key);
  }
  return { m, keys };
}

test('every route × every caller: allowed or refused as the table says', async (t) => {
  const { m, keys } = await setup(t);
  const served = m.role.api.routes.map((r) => `${r.method} ${r.path}`).sort();
  assert.deepEqual(served, Object.keys(EXPECTED).sort(), 'the table covers exactly the served routes');
  const failures: string[] = [];
  let checked = 0;
  for (const route of m.role.api.routes) {
    const key = `${route.method} ${route.path}`;
    for (const caller of CALLERS) {
      const s = sample(route.method, route.path, caller.name);
      const opts: Parameters<TestManager['call']>[2] = s.body === undefined ? {} : { body: s.body };
      if (caller.kind === 'gateway') opts.sign = true;
      if (caller.kind === 'user') opts.token = m.token(caller.name);
      if (caller.kind === 'apikey') opts.bearer = keys.get(caller.name)!;
      const r = await m.call(route.method, s.path, opts);
      const allowed = r.status !== 401 && r.status !== 403;
      const want = expectedAllowed(EXPECTED[key]!, caller);
      checked++;
      if (allowed !== want)
        failures.push(`${key} as ${caller.name}: HTTP ${r.status} ${r.text.slice(0, 120)}`);
      if (r.status === 429 || r.status >= 500)
        failures.push(`${key} as ${caller.name}: unexpected HTTP ${r.status} ${r.text.slice(0, 120)}`);
      // Refusals keep each API's shape: Elkeid's envelope on /api/v1, {error,message} on /api/fleet.
      if (!allowed) {
        if (/^\/api\/v\d\//.test(route.path)) assert.equal(r.json.code, 1, key);
        else assert.match(r.json.error, /^(unauthenticated|forbidden)$/, key);
      }
    }
  }
  assert.deepEqual(failures, []);
  assert.equal(checked, Object.keys(EXPECTED).length * CALLERS.length);
});

test('sign in, use the token (token header and Bearer), sign out revokes it; wrong passwords refused', async (t) => {
  const m = await startTestManager(t);
  const login = await m.call('POST', '/api/v1/user/login', {
    body: { username: 'root', password: ROOT_PASSWORD },
  });
  assert.equal(login.status, 200);
  assert.equal(login.json.code, 0);
  const token = login.json.data.token as string;
  assert.match(token, /^fgs1\./);
  const info = await m.call('GET', '/api/v1/user/info', { token });
  assert.deepEqual(info.json.data, { username: 'root', level: 0, role: 'admin', via: 'user' });
  assert.equal((await m.call('GET', '/api/fleet/me', { bearer: token })).json.role, 'admin');

  const wrong = await m.call('POST', '/api/v1/user/login', {
    body: { username: 'root', password: 'nope-nope-nope' },
  });
  assert.deepEqual([wrong.status, wrong.json.code], [200, 1]);
  const ghost = await m.call('POST', '/api/v1/user/login', {
    body: { username: 'ghost', password: 'nope-nope-nope' },
  });
  assert.deepEqual([ghost.status, ghost.json.code], [200, 1]);

  assert.equal((await m.call('GET', '/api/v1/user/logout', { token })).json.code, 0);
  m.role.api.users.clearCache();
  const after = await m.call('GET', '/api/v1/user/info', { token });
  assert.equal(after.status, 401, 'a signed-out token is refused');
  assert.equal((await m.call('GET', '/api/v1/user/info', { token: 'fgs1.garbage.sig' })).status, 401);
  assert.equal((await m.call('GET', '/api/v1/user/info')).status, 401);
});

test('sign-in attempts are limited per account and address: 429 with Retry-After', async (t) => {
  const m = await startTestManager(t);
  const codes: number[] = [];
  for (let i = 0; i < 7; i++) {
    const r = await m.call('POST', '/api/v1/user/login', {
      body: { username: 'root', password: `guess-${i}-xxxx` },
    });
    codes.push(r.status);
    if (r.status === 429) {
      assert.equal(r.json.code, 15);
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
    }
  }
  assert.deepEqual(codes, [200, 200, 200, 200, 200, 429, 429]);
  // Even the right password waits now (the guesser cannot tell).
  const right = await m.call('POST', '/api/v1/user/login', {
    body: { username: 'root', password: ROOT_PASSWORD },
  });
  assert.equal(right.status, 429);
});

test('per-principal rate limit: 429 in the envelope (v1) and as JSON (fleet); bodies over the limit: 413', async (t) => {
  const m = await startTestManager(t, { api: { rateLimit: { ratePerSecond: 1, burst: 3 } } });
  const token = m.token('root');
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await m.call('GET', '/api/v1/user/info', { token })).status);
  assert.deepEqual(statuses, [200, 200, 200, 429]);
  const v1 = await m.call('GET', '/api/v1/getTags', { token });
  assert.deepEqual([v1.status, v1.json.code, v1.json.msg], [429, 15, 'exceed limit']);
  assert.ok(Number(v1.headers.get('retry-after')) >= 1);
  const fleet = await m.call('GET', '/api/fleet/me', { token });
  assert.deepEqual([fleet.status, fleet.json.error], [429, 'rate_limited']);
  // Another principal is not affected.
  const other = await m.user('other', 'viewer');
  assert.equal((await m.call('GET', '/api/fleet/me', { token: other })).status, 200);
  // Login bodies are capped at 16 KiB.
  const big = await m.call('POST', '/api/v1/user/login', {
    raw: JSON.stringify({ username: 'x', password: 'y'.repeat(20_000) }),
  });
  assert.equal(big.status, 413);
});

test('API keys: created by a user (role ≤ theirs), shown once, stored hashed, revocable', async (t) => {
  const m = await startTestManager(t);
  const op = await m.user('op', 'operator');
  const refused = await m.call('POST', '/api/fleet/apikeys', {
    token: op,
    body: { name: 'ci', role: 'admin' },
  });
  assert.equal(refused.status, 403);
  const made = await m.call('POST', '/api/fleet/apikeys', {
    token: op,
    body: { name: 'ci', role: 'operator' },
  });
  assert.equal(made.status, 201);
  const key = made.json.key as string;
  assert.match(key, /^fgk_[0-9a-f]{16}_/);
  const me = await m.call('GET', '/api/fleet/me', { headers: { 'x-api-key': key } });
  assert.deepEqual([me.json.kind, me.json.role, me.json.owner], ['apikey', 'operator', 'op']);
  const listed = await m.call('GET', '/api/fleet/apikeys', { token: m.token('root') });
  assert.equal(listed.json.apikeys.length, 1);
  assert.equal(JSON.stringify(listed.json).includes(key.slice(22)), false, 'the secret is never listed');
  const stored = await m.role.api.apiKeys.list();
  assert.equal(stored[0]!.keyId, made.json.keyId);
  // Demoting the owner caps the key.
  await m.role.api.users.setRole('op', 'viewer');
  m.role.api.users.clearCache();
  assert.equal((await m.call('GET', '/api/fleet/me', { bearer: key })).json.role, 'viewer');
  assert.equal(
    (await m.call('DELETE', `/api/fleet/apikeys/${made.json.keyId}`, { token: m.token('root') })).status,
    200,
  );
  await new Promise((r) => setTimeout(r, 5));
  // Revocation reaches this process at once (its cache entry is dropped).
  assert.equal((await m.call('GET', '/api/fleet/me', { bearer: key })).status, 401);
});

test('users: change your own password with the current one; the last admin stays', async (t) => {
  const m = await startTestManager(t);
  const v = await m.user('val', 'viewer', 'val-password-1');
  const bad = await m.call('PUT', '/api/fleet/users/val/password', {
    token: v,
    body: { current_password: 'nope', password: 'val-password-2' },
  });
  assert.equal(bad.status, 403);
  const good = await m.call('PUT', '/api/fleet/users/val/password', {
    token: v,
    body: { current_password: 'val-password-1', password: 'val-password-2' },
  });
  assert.equal(good.status, 200);
  m.role.api.users.clearCache();
  assert.equal(
    (await m.call('GET', '/api/fleet/me', { token: v })).status,
    401,
    'old sessions end with a password change',
  );
  const root = m.token('root');
  assert.equal((await m.call('DELETE', '/api/fleet/users/root', { token: root })).status, 409);
  assert.equal(
    (await m.call('PUT', '/api/fleet/users/root/role', { token: root, body: { role: 'viewer' } })).status,
    409,
  );
  const created = await m.call('POST', '/api/fleet/users', {
    token: root,
    body: { username: 'bob', password: 'short', role: 'viewer' },
  });
  assert.equal(created.status, 400);
  const dup = await m.call('POST', '/api/fleet/users', {
    token: root,
    body: { username: 'val', password: 'long-enough-1', role: 'viewer' },
  });
  assert.equal(dup.status, 409);
});

test('the first admin: generated and printed once when FLEETGATE_ADMIN is unset; never again', async (t) => {
  const printed: string[] = [];
  const m = await startTestManager(t, { admin: false, print: (s) => printed.push(s) });
  assert.equal(printed.length, 1);
  const password = /password (\S+)/.exec(printed[0]!)![1]!;
  const login = await m.call('POST', '/api/v1/user/login', { body: { username: 'admin', password } });
  assert.equal(login.json.code, 0);
  // A second manager on the same store finds the admin and prints nothing.
  const again: string[] = [];
  await startTestManager(t, { db: m.db, admin: false, print: (s) => again.push(s) });
  assert.deepEqual(again, []);
  assert.ok(AK);
});
