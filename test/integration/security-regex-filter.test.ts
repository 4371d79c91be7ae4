/**
 * Issue 14, item 3, through a real `fleetgate all`: a viewer's pathological `$regex` (the
 * report's `^.{16}(\w|\d|[0-9a-f]|-)*!$`, exponential for a backtracking engine) over the agents
 * is answered (linear-time engine), a filter whose work exceeds the per-request budget is refused
 * with 400, and `/healthz` keeps answering while they run. Nothing here is a timing threshold:
 * the assertions are what was answered, and that health answers came in while the filters ran.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { batchWriteAll } from '../../platform/store/batch-write.js';
import { createDynamoClient } from '../../platform/store/dynamo-client.js';
import { tableName } from '../../platform/store/schema.js';
import { startFleetgateProcess } from '../helpers/gateway.js';

const ADMIN_PASSWORD = 'admin-password-for-tests';
const AGENTS = 2000;

async function call(port: number, method: string, p: string, o: { token?: string; body?: unknown } = {}) {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, {
    method,
    headers: {
      ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
      ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
    // A safety net for the test run only (before the fix this request took minutes).
    signal: AbortSignal.timeout(120_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Polls /healthz back to back until `stop`; returns when each answer arrived. */
function pollHealth(port: number): { stop(): Promise<number[]> } {
  const answered: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(120_000) });
      await r.text();
      if (r.status === 200) answered.push(performance.now());
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return answered;
    },
  };
}

test('a pathological $regex is answered or refused, and /healthz answers while it runs', async (t) => {
  const banner = /manager API\s+http:\/\/127\.0\.0\.1:(\d+)/;
  const p = await startFleetgateProcess(
    t,
    'all',
    { FLEETGATE_SD_PORT: '0', FLEETGATE_MANAGER_PORT: '0', FLEETGATE_ADMIN: `admin:${ADMIN_PASSWORD}` },
    { ready: (out) => banner.test(out) },
  );
  const port = Number(banner.exec(p.output())![1]);
  // Agents, written into the process's store through its private socket (we are its account).
  const client = createDynamoClient({
    endpoint: 'http://localhost',
    socketPath: path.join(p.dataDir, 'run', 'dynamodb.sock'),
    requestTimeoutMs: 10_000,
  });
  t.after(() => client.destroy());
  const id = (i: number) => `${String(i).padStart(8, '0')}-0123-4567-89ab-cdef01234567`;
  await batchWriteAll(
    DynamoDBDocumentClient.from(client),
    tableName('fleetgate-', 'agents'),
    Array.from({ length: AGENTS }, (_, i) => ({ PutRequest: { Item: { agentId: id(i) } } })),
    'test agents',
    { parallel: 4 },
  );

  const login = async (username: string, password: string) =>
    (
      (await call(port, 'POST', '/api/v1/user/login', { body: { username, password } })).body.data as {
        token: string;
      }
    ).token;
  const admin = await login('admin', ADMIN_PASSWORD);
  const made = await call(port, 'POST', '/api/fleet/users', {
    token: admin,
    body: { username: 'vic', password: 'viewer-password-1', role: 'viewer' },
  });
  assert.equal(made.status, 201);
  const viewer = await login('vic', 'viewer-password-1');
  const filterOf = (regex: string) => ({
    filter: [{ key: 'agent_id', rules: [{ operator: '$regex', value: regex }], condition: '$and' }],
    condition: '$and',
  });
  const run = async (regex: string) => {
    const health = pollHealth(port);
    const started = performance.now();
    const r = await call(port, 'POST', '/api/v1/agent/getStatus/filter?page=1&page_size=10', {
      token: viewer,
      body: filterOf(regex),
    });
    const ended = performance.now();
    const answered = await health.stop();
    return { r, healthDuring: answered.filter((at) => at > started && at < ended).length };
  };

  // The report's pattern: no agent id ends in `!`, so nothing matches; answered, not frozen.
  const report = await run('^.{16}(\\w|\\d|[0-9a-f]|-)*!$');
  assert.equal(report.r.status, 200, JSON.stringify(report.r.body));
  assert.equal(report.r.body.code, 0, JSON.stringify(report.r.body));
  assert.equal((report.r.body.data as { total: number }).total, 0);
  assert.ok(report.healthDuring > 0, '/healthz answered while the filter ran');

  // A pattern that matches: the engine finds them all.
  const some = await run('^0000001\\d-');
  assert.equal((some.r.body.data as { total: number }).total, 10);

  // Heavy for every engine (hundreds of NFA states per character): past the request's budget,
  // refused with the reason, and the process served health checks meanwhile.
  const heavy = await run('(\\w|\\d|[0-9a-f]|-){1,60}(\\w|\\d|[0-9a-f]|-){1,60}!');
  assert.equal(heavy.r.body.code, 5, `refused as an invalid parameter: ${JSON.stringify(heavy.r.body)}`);
  assert.match(JSON.stringify(heavy.r.body), /too expensive/);
  assert.ok(heavy.healthDuring > 0, '/healthz answered while the heavy filter ran');
});
