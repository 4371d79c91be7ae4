/**
 * The console's server side through a real manager on uWS: the WebSocket (`ws` as an
 * independent client) authenticates with its first message through the router, pushes the live
 * snapshot, closes on a revoked credential and enforces its bounds; `GET /api/fleet/live` is the
 * polling fallback; the built console is served with its Content-Security-Policy, compressed,
 * cacheable, inside the first-load budget.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { unzipSync } from 'fflate';
import WebSocket from 'ws';
import { createManagerLambda } from '../../manager/lambda.js';
import { LIVE_SOCKET_PATH } from '../../manager/live-socket.js';
import { httpEngine } from '../../platform/http/http-engine.js';
import type { LambdaHttpEvent } from '../../platform/http/lambda-adapter.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { buildConsole } from '../../scripts/build-console.mjs';
import { buildLambda } from '../../scripts/build-lambda.mjs';
import { startTestDynamo } from '../helpers/dynalite.js';
import { tempDir } from '../helpers/gateway.js';
import { AK, SECRET, SK, startTestManager, type TestManager } from '../helpers/manager-harness.js';

const FIRST_LOAD_BUDGET = 250 * 1024;

/**
 * The live socket is a uWS feature: where this Node has no native uWS binary (Node 24 on a glibc
 * older than 2.38), the manager serves on node:http and the console polls. Each engine runs the
 * tests of what it serves: the socket tests on uWS, the fallback test on node:http.
 */
const SOCKET_ENGINE = httpEngine().name === 'uws';
const ON_UWS = SOCKET_ENGINE
  ? {}
  : { skip: 'node:http engine: no live socket (the fallback test covers it)' };
const ON_NODE_HTTP = SOCKET_ENGINE ? { skip: 'uWS engine: the live socket tests cover it' } : {};

interface Client {
  ws: WebSocket;
  messages: Array<{ type: string; data?: Record<string, unknown>; principal?: Record<string, unknown> }>;
  closed: Promise<{ code: number; reason: string }>;
  next(type: string): Promise<Client['messages'][number]>;
}

async function connect(m: TestManager, headers: Record<string, string> = {}): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${m.role.port}${LIVE_SOCKET_PATH}`, { headers });
  const messages: Client['messages'] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (d) => {
    messages.push(JSON.parse(String(d)));
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const next = async (type: string) => {
    for (;;) {
      const found = messages.find((x) => x.type === type);
      if (found) return found;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  return { ws, messages, closed, next };
}

/** The status of a raw upgrade request (a refused upgrade is an ordinary HTTP answer). */
function upgradeStatus(port: number, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path: LIVE_SOCKET_PATH,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

test(
  'the live socket: first-message auth, snapshots, bad and missing credentials, message rate',
  ON_UWS,
  async (t) => {
    const m = await startTestManager(t, {
      api: { consoleDir: false },
      liveSocket: { authTimeoutMs: 300, maxMessagesPer10s: 5 },
    });
    const viewer = await m.user('vic', 'viewer');

    const c = await connect(m);
    c.ws.send(JSON.stringify({ type: 'auth', token: viewer }));
    const hello = await c.next('hello');
    assert.deepEqual(hello.principal, { kind: 'user', id: 'vic', role: 'viewer' });
    const snap = (await c.next('snapshot')).data!;
    assert.deepEqual(Object.keys(snap).sort(), ['at', 'gateways', 'history', 'stats', 'tasks']);
    const stats = await m.call('GET', '/api/fleet/stats', { token: viewer });
    assert.deepEqual(Object.keys(snap.stats as object).sort(), Object.keys(stats.json).sort());
    // The same snapshot for pollers; nothing without credentials.
    const polled = await m.call('GET', '/api/fleet/live', { bearer: viewer });
    assert.equal(polled.status, 200);
    assert.deepEqual(Object.keys(polled.json).sort(), ['at', 'gateways', 'history', 'stats', 'tasks']);
    assert.equal((await m.call('GET', '/api/fleet/live')).status, 401);

    // More than 5 messages in 10 s: closed.
    for (let i = 0; i < 6; i++) c.ws.send(JSON.stringify({ type: 'ping' }));
    assert.equal((await c.closed).code, 4429);

    const bad = await connect(m);
    bad.ws.send(JSON.stringify({ type: 'auth', token: `${viewer.slice(0, -4)}AAAA` }));
    assert.equal((await bad.closed).code, 4401);
    assert.equal(bad.messages.length, 0, 'nothing is sent before authentication');

    const silent = await connect(m);
    assert.equal((await silent.closed).code, 4408);

    const garbage = await connect(m);
    garbage.ws.send('not json');
    assert.equal((await garbage.closed).code, 4400);
  },
);

test('the live socket closes when the session is revoked (sign-out)', ON_UWS, async (t) => {
  const m = await startTestManager(t, {
    api: { consoleDir: false, userCacheMs: 0 },
    liveSocket: { recheckMs: 200 },
  });
  const token = await m.user('olga', 'operator');
  const c = await connect(m);
  c.ws.send(JSON.stringify({ type: 'auth', token }));
  await c.next('snapshot');
  assert.equal((await m.call('GET', '/api/v1/user/logout', { token })).status, 200);
  const closed = await c.closed;
  assert.equal(closed.code, 4401);
  assert.match(closed.reason, /revoked/);
});

test('the live socket bounds its subscribers and refuses cross-origin pages', ON_UWS, async (t) => {
  const m = await startTestManager(t, { api: { consoleDir: false }, liveSocket: { maxSubscribers: 2 } });
  const port = m.role.port;
  assert.equal(await upgradeStatus(port, { origin: 'http://evil.example', host: `127.0.0.1:${port}` }), 403);
  const a = await connect(m);
  const b = await connect(m, { origin: `http://127.0.0.1:${port}` });
  assert.equal(await upgradeStatus(port, {}), 503);
  const refused = m.registry.getSingleMetric('fleetgate_console_ws_closed_total');
  const values = (await refused!.get()).values.map((v) => `${v.labels.reason}=${v.value}`).sort();
  assert.deepEqual(values, ['capacity=1', 'cross-origin=1']);
  a.ws.close();
  await a.closed;
  // A place is free again.
  assert.equal(await upgradeStatus(port, {}), 101);
  b.ws.close();
});

test('the built console is served with its CSP, compressed and cacheable, within the first-load budget', async (t) => {
  const dir = tempDir(t, 'fg-console-');
  const built = await buildConsole(dir);
  const m = await startTestManager(t, { api: { consoleDir: dir } });
  const page = await fetch(`${m.base}/`, { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(page.status, 200);
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /style-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
  assert.equal(page.headers.get('cache-control'), 'no-cache');
  const html = await page.text();
  // No inline script or style: every <script> has a src, no style attributes or elements.
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/);
  assert.doesNotMatch(html, /<style|\sstyle=/);
  assert.match(html, new RegExp(`/assets/${built.js}`));

  // First load: the page, its script and its stylesheet, as sent compressed.
  let total = 0;
  for (const p of ['/', `/assets/${built.js}`, `/assets/${built.css}`]) {
    const raw = await new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>(
      (resolve, reject) => {
        request(`${m.base}${p}`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
          );
        })
          .on('error', reject)
          .end();
      },
    );
    assert.equal(raw.status, 200, p);
    assert.ok(String(raw.headers['content-security-policy']).length > 0, p);
    if (p !== '/') {
      assert.equal(raw.headers['content-encoding'], 'gzip', p);
      assert.match(String(raw.headers['cache-control']), /immutable/);
      assert.ok(gunzipSync(raw.body).length > raw.body.length, p);
    }
    total += raw.body.length;
  }
  assert.ok(total <= FIRST_LOAD_BUDGET, `first load ${total} bytes compressed > ${FIRST_LOAD_BUDGET}`);

  const etag = page.headers.get('etag')!;
  assert.equal((await fetch(`${m.base}/`, { headers: { 'if-none-match': etag } })).status, 304);
  // The API is unchanged next to it.
  assert.equal((await m.call('GET', '/api/fleet/me')).status, 401);
});

test('without a built console, / says how to build it and the API still answers', async (t) => {
  const m = await startTestManager(t, { api: { consoleDir: tempDir(t, 'fg-empty-') } });
  const res = await fetch(`${m.base}/`);
  assert.equal(res.status, 404);
  assert.match(await res.text(), /npm run build/);
  assert.equal((await m.call('GET', '/api/fleet/me')).status, 401);
});

test('on AWS the manager Lambda serves the console from its own zip, same origin as the API', async (t) => {
  const out = tempDir(t, 'fg-lambda-');
  const built = await buildLambda('manager', out);
  const zip = unzipSync(readFileSync(built.zip));
  const consoleFiles = Object.keys(zip).filter((f) => f.startsWith('dist/console/'));
  assert.ok(consoleFiles.includes('dist/console/index.html'), consoleFiles.join(', '));
  assert.equal(consoleFiles.filter((f) => /^dist\/console\/assets\/app-\w+\.(js|css)$/.test(f)).length, 2);

  const db = await startTestDynamo();
  t.after(() => db.close());
  const { handler } = createManagerLambda({
    client: db.client,
    tablePrefix: db.prefix,
    secret: Buffer.from(SECRET),
    aksk: [[AK, SK]],
    logger: silentLogger(),
    consoleDir: `${built.dir}/dist/console`,
  });
  const event = (rawPath: string, headers: Record<string, string> = {}): LambdaHttpEvent =>
    ({
      version: '2.0',
      routeKey: '$default',
      rawPath,
      rawQueryString: '',
      headers: { host: 'manager.example', ...headers },
      requestContext: { http: { method: 'GET', path: rawPath, sourceIp: '203.0.113.7' } },
      isBase64Encoded: false,
    }) as unknown as LambdaHttpEvent;
  const page = await handler(event('/'), {});
  assert.equal(page.statusCode, 200);
  assert.match(String(page.headers?.['content-security-policy']), /script-src 'self'/);
  const script = consoleFiles.find((f) => f.endsWith('.js'))!.replace('dist/console', '');
  const js = await handler(event(script, { 'accept-encoding': 'gzip' }), {});
  assert.equal(js.statusCode, 200);
  assert.equal(js.isBase64Encoded, true);
  assert.ok(gunzipSync(Buffer.from(js.body, 'base64')).length > 1000);
  // No WebSocket behind API Gateway: the console polls this.
  assert.equal((await handler(event('/api/fleet/live'), {})).statusCode, 401);
});

test(
  'sockets closed while their auth, recheck or snapshot is in flight leave the manager serving',
  ON_UWS,
  async (t) => {
    const m = await startTestManager(t, {
      api: { consoleDir: false, userCacheMs: 0 },
      liveSocket: { recheckMs: 5 },
    });
    const token = await m.user('quinn', 'viewer');
    const failures: unknown[] = [];
    const onRejection = (err: unknown) => failures.push(err);
    process.on('unhandledRejection', onRejection);
    t.after(() => process.off('unhandledRejection', onRejection));
    for (let round = 0; round < 3; round++) {
      const clients = await Promise.all(Array.from({ length: 10 }, () => connect(m)));
      for (const [i, c] of clients.entries()) {
        c.ws.send(JSON.stringify({ type: 'auth', token }));
        // Closed at once, after the hello, or after a few rechecks.
        if (i % 3 === 1) await c.next('hello');
        if (i % 3 === 2) await new Promise((r) => setTimeout(r, 20));
        c.ws.terminate();
      }
      await Promise.all(clients.map((c) => c.closed));
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(failures, []);
    const c = await connect(m);
    c.ws.send(JSON.stringify({ type: 'auth', token }));
    await c.next('snapshot');
    c.ws.close();
  },
);

test(
  'on the node:http engine there is no live socket: the upgrade fails, the console polls the same snapshot',
  ON_NODE_HTTP,
  async (t) => {
    const m = await startTestManager(t, { api: { consoleDir: false } });
    const viewer = await m.user('vic', 'viewer');
    await assert.rejects(connect(m), 'no WebSocket is accepted on node:http');
    const polled = await m.call('GET', '/api/fleet/live', { bearer: viewer });
    assert.equal(polled.status, 200);
    assert.deepEqual(Object.keys(polled.json).sort(), ['at', 'gateways', 'history', 'stats', 'tasks']);
    assert.equal((await m.call('GET', '/api/fleet/live')).status, 401);
  },
);
