import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, type TestContext, test } from 'node:test';
import { createVerifier, signRequest } from '../../platform/http/aksk.js';
import { fail, ok } from '../../platform/http/envelope.js';
import type { HttpEngineName } from '../../platform/http/http-engine.js';
import { createRouter } from '../../platform/http/router.js';
import {
  type Handler,
  type HttpRequest,
  json,
  parseQuery,
  type Route,
  text,
} from '../../platform/http/types.js';
import { serveUws } from '../../platform/http/uws-adapter.js';
import { loadNativeUws } from '../../platform/http/uws-native.js';
import { nativeUwsExpected } from '../helpers/runtime.js';

const AK = 'ekwjsyj2iucfotiy';
const SK = 'kqxxfphfxj6ud9pon1zyf2oyqrda3xdt';
const MAX_BODY = 1024;

interface Harness {
  base: string;
  warnings: { obj: object; msg: string }[];
  requests: { route: string; status: number; seconds: number }[];
  commands: HttpRequest[];
}

const echo: Handler = (req) =>
  json(200, {
    method: req.method,
    path: req.path,
    query: req.query,
    x: parseQuery(req.query).get('x'),
    custom: req.headers['x-custom'] ?? null,
    remoteAddress: req.remoteAddress,
    bodyLength: req.body.length,
    bodySha256: createHash('sha256').update(req.body).digest('hex'),
  });

async function start(t: TestContext, engine: HttpEngineName): Promise<Harness> {
  const h: Harness = { base: '', warnings: [], requests: [], commands: [] };
  const routes: Route[] = [
    { method: 'GET', path: '/echo', handler: echo },
    { method: 'POST', path: '/echo', handler: echo },
    {
      method: 'POST',
      path: '/command',
      auth: 'aksk',
      handler: (req) => {
        h.commands.push(req);
        return ok({ received: JSON.parse(req.body.toString()) as unknown });
      },
    },
    { method: 'GET', path: '/conn/stat', auth: 'aksk', handler: () => ok({ count: 0 }) },
    {
      method: 'GET',
      path: '/boom',
      handler: async () => {
        await new Promise((resolve) => setImmediate(resolve));
        throw new Error('secret detail /var/lib/x');
      },
    },
    { method: 'GET', path: '/text', handler: () => text(201, 'héllo', 'text/x-test') },
  ];
  const router = createRouter(routes, {
    verifier: createVerifier({ keys: new Map([[AK, SK]]) }),
    onAuthFailure: (reason) => fail(1, reason),
    logger: { warn: (obj, msg) => h.warnings.push({ obj, msg }) },
    onRequest: (route, status, seconds) => h.requests.push({ route, status, seconds }),
  });
  const server = await serveUws(router, { host: '127.0.0.1', port: 0, maxBodyBytes: MAX_BODY, engine });
  t.after(() => server.close());
  assert.equal(server.engine, engine);
  assert.ok(server.port > 0);
  h.base = `http://127.0.0.1:${server.port}`;
  return h;
}

function signedInit(method: string, path: string, query: string, body: string): RequestInit {
  const headers = signRequest({ method, path, query, body, ak: AK, sk: SK });
  // fetch refuses a body on GET, even an empty one.
  return body === '' ? { method, headers } : { method, headers, body };
}

// Native uWS where this runtime loads it (uws-native.ts), node:http always: both engines keep
// one contract. Which runtimes load uWS is checked below against the packages' documented builds.
const ENGINES: HttpEngineName[] = loadNativeUws().ok ? ['uws', 'node'] : ['node'];

test('the native uWS binary loads exactly where a package ships one for this ABI and glibc', () => {
  const load = loadNativeUws();
  assert.equal(load.ok, nativeUwsExpected(), load.ok ? load.binary : load.failures.join('; '));
});

for (const engine of ENGINES) {
  describe(`${engine} engine`, () => {
    test('GET with a query reaches the handler with the raw query and lower-case headers', async (t) => {
      const h = await start(t, engine);
      const res = await fetch(`${h.base}/echo?x=a%20b&y=1&y=2`, { headers: { 'X-Custom': 'v' } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
      assert.deepEqual(await res.json(), {
        method: 'GET',
        path: '/echo',
        query: 'x=a%20b&y=1&y=2',
        x: 'a b',
        custom: 'v',
        remoteAddress: '127.0.0.1',
        bodyLength: 0,
        bodySha256: createHash('sha256').digest('hex'),
      });
    });

    test('a trailing slash reaches the same route', async (t) => {
      const h = await start(t, engine);
      const res = await fetch(`${h.base}/echo/`);
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { path: string }).path, '/echo/');
      assert.equal(h.requests.at(-1)?.route, '/echo');
    });

    test('POST bodies arrive intact, in one chunk or many', async (t) => {
      const h = await start(t, engine);
      const small = Buffer.from('{"hello":"wörld"}');
      const res1 = await fetch(`${h.base}/echo`, { method: 'POST', body: small });
      assert.equal(res1.status, 200);
      const got1 = (await res1.json()) as { bodyLength: number; bodySha256: string };
      assert.equal(got1.bodyLength, small.length);
      assert.equal(got1.bodySha256, createHash('sha256').update(small).digest('hex'));

      // Chunked, so uWS delivers several onData calls that must each be copied.
      const parts = [Buffer.alloc(300, 1), Buffer.alloc(300, 2), Buffer.alloc(300, 3)];
      const stream = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const next = parts.shift();
          if (!next) return controller.close();
          await new Promise((resolve) => setTimeout(resolve, 5));
          controller.enqueue(next);
        },
      });
      const all = Buffer.concat([Buffer.alloc(300, 1), Buffer.alloc(300, 2), Buffer.alloc(300, 3)]);
      const res2 = await fetch(`${h.base}/echo`, {
        method: 'POST',
        body: stream,
        duplex: 'half',
      } as RequestInit);
      assert.equal(res2.status, 200);
      const got2 = (await res2.json()) as { bodyLength: number; bodySha256: string };
      assert.equal(got2.bodyLength, all.length);
      assert.equal(got2.bodySha256, createHash('sha256').update(all).digest('hex'));
    });

    test('status, headers and body of the handler go out as given', async (t) => {
      const h = await start(t, engine);
      const res = await fetch(`${h.base}/text`);
      assert.equal(res.status, 201);
      assert.equal(res.statusText, 'Created');
      assert.equal(res.headers.get('content-type'), 'text/x-test');
      assert.equal(await res.text(), 'héllo');
    });

    test('an unknown path is 404 and labelled unmatched', async (t) => {
      const h = await start(t, engine);
      const res = await fetch(`${h.base}/no/such/path?secret=1`);
      assert.equal(res.status, 404);
      assert.equal(res.statusText, 'Not Found');
      assert.deepEqual(await res.json(), { msg: 'not found' });
      assert.deepEqual(
        h.requests.map((r) => [r.route, r.status]),
        [['unmatched', 404]],
      );
    });

    test('a known path with the wrong method is 405 with Allow', async (t) => {
      const h = await start(t, engine);
      const res = await fetch(`${h.base}/echo`, { method: 'DELETE' });
      assert.equal(res.status, 405);
      assert.equal(res.headers.get('allow'), 'GET, POST');
      assert.deepEqual(await res.json(), { msg: 'method not allowed' });
      assert.equal(h.requests.at(-1)?.route, '/echo');
    });

    test('a correctly signed request is accepted', async (t) => {
      const h = await start(t, engine);
      const body = '{"agent_id":"a1","command":{"mem":1}}';
      const res = await fetch(`${h.base}/command?trace=1`, signedInit('POST', '/command', 'trace=1', body));
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), {
        code: 0,
        msg: 'success',
        data: { received: { agent_id: 'a1', command: { mem: 1 } } },
      });
      assert.equal(h.commands.length, 1);

      // Signed for `/command/`, as Elkeid's client may send it.
      const res2 = await fetch(`${h.base}/command/`, signedInit('POST', '/command/', '', '{"n":2}'));
      assert.equal(((await res2.json()) as { code: number }).code, 0);

      const res3 = await fetch(`${h.base}/conn/stat`, signedInit('GET', '/conn/stat', '', ''));
      assert.deepEqual(await res3.json(), { code: 0, msg: 'success', data: { count: 0 } });
    });

    test('a badly signed request gets the injected auth-failure response and never reaches the handler', async (t) => {
      const h = await start(t, engine);
      const body = '{"agent_id":"a1"}';
      const init = signedInit('POST', '/command', '', body);

      const tampered = await fetch(`${h.base}/command`, { ...init, body: '{"agent_id":"a2"}' });
      assert.equal(tampered.status, 200);
      assert.deepEqual(await tampered.json(), { code: 1, msg: 'auth failed', data: 'signature error' });

      const unsigned = await fetch(`${h.base}/command`, { method: 'POST', body });
      assert.deepEqual(await unsigned.json(), {
        code: 1,
        msg: 'auth failed',
        data: 'header missed: AccessKey',
      });

      const wrongQuery = await fetch(`${h.base}/command?x=1`, init);
      assert.deepEqual(await wrongQuery.json(), { code: 1, msg: 'auth failed', data: 'signature error' });

      assert.equal(h.commands.length, 0);

      const first = await fetch(`${h.base}/command`, init);
      assert.equal(((await first.json()) as { code: number }).code, 0);
      const replay = await fetch(`${h.base}/command`, init);
      assert.deepEqual(await replay.json(), { code: 1, msg: 'auth failed', data: 'signature replayed' });
      assert.equal(h.commands.length, 1);
    });

    test('a body over the limit is refused with 413, declared or streamed', async (t) => {
      const h = await start(t, engine);
      const declared = await fetch(`${h.base}/echo`, { method: 'POST', body: Buffer.alloc(MAX_BODY + 1) });
      assert.equal(declared.status, 413);
      assert.deepEqual(await declared.json(), { msg: 'body too large' });

      const atLimit = await fetch(`${h.base}/echo`, { method: 'POST', body: Buffer.alloc(MAX_BODY) });
      assert.equal(atLimit.status, 200);

      // No Content-Length: the limit must hold while reading.
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= 4 * MAX_BODY) return controller.close();
          sent += 256;
          controller.enqueue(new Uint8Array(256));
        },
      });
      const streamed = await fetch(`${h.base}/echo`, {
        method: 'POST',
        body: stream,
        duplex: 'half',
      } as RequestInit);
      assert.equal(streamed.status, 413);
      assert.deepEqual(await streamed.json(), { msg: 'body too large' });
      // Refused bodies never reach the router; only the one at the limit did.
      assert.deepEqual(
        h.requests.map((r) => [r.route, r.status]),
        [['/echo', 200]],
      );

      const after = await fetch(`${h.base}/echo`);
      assert.equal(after.status, 200);
    });

    test('a handler that throws yields a bare 500, is logged, and the server keeps serving', async (t) => {
      const h = await start(t, engine);
      const res = await fetch(`${h.base}/boom`);
      assert.equal(res.status, 500);
      const body = await res.text();
      assert.deepEqual(JSON.parse(body), { msg: 'internal error' });
      assert.doesNotMatch(body, /secret detail/);
      assert.equal(h.warnings.length, 1);
      assert.equal(h.requests.at(-1)?.route, '/boom');
      assert.equal(h.requests.at(-1)?.status, 500);

      const again = await fetch(`${h.base}/echo?x=1`);
      assert.equal(again.status, 200);
    });

    test('without a router the adapter still answers a throwing handler with 500', async (t) => {
      const errors: unknown[] = [];
      const server = await serveUws(
        () => {
          throw new Error('raw');
        },
        { host: '127.0.0.1', port: 0, onError: (err) => errors.push(err), engine },
      );
      t.after(() => server.close());
      const res = await fetch(`http://127.0.0.1:${server.port}/x`);
      assert.equal(res.status, 500);
      assert.deepEqual(await res.json(), { msg: 'internal error' });
      assert.equal(errors.length, 1);
    });

    test('close() stops accepting connections', async (t) => {
      const server = await serveUws(() => json(200, {}), { host: '127.0.0.1', port: 0, engine });
      t.after(() => server.close());
      const base = `http://127.0.0.1:${server.port}`;
      assert.equal((await fetch(`${base}/`)).status, 200);
      server.close();
      await assert.rejects(fetch(`${base}/`, { headers: { connection: 'close' } }));
    });
  });
}

test('a route needing AK/SK without a verifier is a startup error', () => {
  assert.throws(
    () =>
      createRouter([{ method: 'GET', path: '/x', auth: 'aksk', handler: () => ok(null) }], {
        onAuthFailure: (reason) => fail(1, reason),
      }),
    /no verifier/,
  );
});
