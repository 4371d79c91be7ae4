/**
 * `fleetgate users add|passwd|list|delete` and `fleetgate manager`'s refusal of a weak token
 * secret (docs/hardening.md §5 test 28), run in-process (`runUsers`, `runManager`) against a real
 * dynalite through FLEETGATE_DYNAMODB_ENDPOINT.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { runManager } from '../../cli/manager-command.js';
import { runUsers } from '../../cli/users-command.js';
import { verifyPassword } from '../../manager/passwords.js';
import { createManagerStore } from '../../manager/store.js';
import { createUserStore } from '../../manager/users.js';
import { startTestDynamo } from '../helpers/dynalite.js';
import { tempDir } from '../helpers/gateway.js';

async function capture(t: import('node:test').TestContext, fn: () => Promise<number>) {
  const out: string[] = [];
  const err: string[] = [];
  const log = t.mock.method(console, 'log', (...a: unknown[]) => out.push(a.join(' ')));
  const error = t.mock.method(console, 'error', (...a: unknown[]) => err.push(a.join(' ')));
  try {
    const code = await fn();
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mock.restore();
    error.mock.restore();
  }
}

/**
 * A fresh dynalite and a process environment that points the CLI at it (with a temporary data
 * dir, silent logs and `extra`); the environment is put back after the test.
 */
async function dynamoEnvironment(t: TestContext, extra: Record<string, string> = {}) {
  const db = await startTestDynamo();
  t.after(() => db.close());
  const saved = { ...process.env };
  t.after(() => {
    process.env = saved;
  });
  Object.assign(process.env, {
    FLEETGATE_DYNAMODB_ENDPOINT: db.dynamo.endpoint,
    FLEETGATE_TABLE_PREFIX: db.prefix,
    FLEETGATE_DATA_DIR: tempDir(t),
    FLEETGATE_LOG_LEVEL: 'silent',
    ...extra,
  });
  return db;
}

test('users add, list, passwd, delete; bad arguments exit 2', async (t) => {
  const db = await dynamoEnvironment(t);
  const users = createUserStore(createManagerStore(db.client, db.prefix));

  const add = await capture(t, () => runUsers(['add', 'alice', '--role', 'operator']));
  assert.equal(add.code, 0, add.err);
  const password = /with password (\S+)/.exec(add.out)![1]!;
  const alice = await users.get('alice', { fresh: true });
  assert.equal(alice?.role, 'operator');
  assert.equal(await verifyPassword(password, alice!.passwordHash), true);

  const list = await capture(t, () => runUsers(['list']));
  assert.match(list.out, /^alice\toperator\tcreated .* by cli$/m);

  const passwd = await capture(t, () => runUsers(['passwd', 'alice']));
  assert.equal(passwd.code, 0);
  const next = /to (\S+)/.exec(passwd.out)![1]!;
  assert.notEqual(next, password);
  assert.equal(await verifyPassword(next, (await users.get('alice', { fresh: true }))!.passwordHash), true);

  assert.equal((await capture(t, () => runUsers(['add', 'alice']))).code, 1, 'exists');
  assert.equal((await capture(t, () => runUsers(['add', 'bob', '--role', 'root']))).code, 2);
  assert.equal((await capture(t, () => runUsers(['frob']))).code, 2);
  assert.equal((await capture(t, () => runUsers(['--help']))).code, 0);
  const del = await capture(t, () => runUsers(['delete', 'alice']));
  assert.equal(del.code, 0);
  assert.equal(await users.get('alice', { fresh: true }), undefined);
  assert.equal((await capture(t, () => runUsers(['delete', 'alice']))).code, 1);
});

test('fleetgate manager refuses to start with a short, published or (in cloud mode) missing secret', async (t) => {
  await dynamoEnvironment(t, { FLEETGATE_MANAGER_PORT: '0', FLEETGATE_HOST: '127.0.0.1' });
  for (const [secret, why] of [
    ['short-secret', /at least 32 are required/],
    ['ASpQO2kzFcosGHavUP9BJkn5pcFGIjeg', /published default/],
  ] as const) {
    process.env.FLEETGATE_MANAGER_SECRET = secret;
    const r = await capture(t, () => runManager([]));
    assert.equal(r.code, 1);
    assert.match(r.err, /refusing to start/);
    assert.match(r.err, why);
  }
  delete process.env.FLEETGATE_MANAGER_SECRET;
  process.env.AWS_LAMBDA_FUNCTION_NAME = 'x';
  const cloud = await capture(t, () => runManager([]));
  assert.equal(cloud.code, 1);
  assert.match(cloud.err, /FLEETGATE_MANAGER_SECRET is not set/);
  assert.equal((await capture(t, () => runManager(['--help']))).code, 0);
});
