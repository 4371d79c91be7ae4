/**
 * Service discovery against a real dynalite (LevelDB on disk), over real uWS listeners: Elkeid's
 * answer shapes byte for byte (docs/elkeid-protocol.md §3.3), least-loaded order, TTL expiry, several
 * discovery nodes on one store, store outages, AK/SK (§2.13) and the registrar, including
 * registrant processes killed with SIGKILL and stopped with SIGTERM.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { createDiscoveryMetrics } from '../../discovery/metrics.js';
import { startRegistrar } from '../../discovery/registrar.js';
import {
  createRegistryStore,
  type RegisterInput,
  type RegistryStore,
} from '../../discovery/registry-store.js';
import { createDiscoveryHandler, STALE_HEADER } from '../../discovery/routes.js';
import { type DiscoveryOptions, startDiscovery } from '../../discovery/service.js';
import { createVerifier, signRequest } from '../../platform/http/aksk.js';
import type { HttpRequest } from '../../platform/http/types.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { createDynamoClient, ensureTables } from '../../platform/store/dynamo-client.js';
import { startEmbeddedDynamo } from '../../platform/store/embedded.js';
import { TABLES } from '../../platform/store/schema.js';
import { startTestDynamo, type TestDynamo } from '../helpers/dynalite.js';
import { metricValue } from '../helpers/metrics.js';
import { sleep } from '../helpers/time.js';

const AK = '7abyaiyf56jowghp';
const SK = 'L3E56PpoCoKktzUSlZc1zQdq1x2n9ign';
const JSON_TYPE = 'application/json; charset=utf-8';
const ELKEID_FIELDS = ['name', 'ip', 'port', 'status', 'create_at', 'update_at', 'weight', 'extra'];
/** Every read goes to the store: assertions right after a write see it. */
const NO_CACHE = { freshMs: 0, maxAgeMs: 0, retryMs: 0 };

let db: TestDynamo;
let prefixes = 0;
before(async () => {
  db = await startTestDynamo();
});
after(async () => {
  await db.close();
});

/** A fresh registry table (own prefix) on the shared dynalite. */
async function freshStore(opts: { ttlMs?: number; client?: TestDynamo['client'] } = {}): Promise<{
  store: RegistryStore;
  prefix: string;
}> {
  const prefix = `d${++prefixes}-`;
  await ensureTables(db.client, prefix, [TABLES.registry]);
  return {
    store: createRegistryStore({
      client: opts.client ?? db.client,
      tablePrefix: prefix,
      ...(opts.ttlMs ? { ttlMs: opts.ttlMs } : {}),
    }),
    prefix,
  };
}

interface Sd {
  base: string;
  port: number;
  registry: Registry;
  get(pathAndQuery: string): Promise<{ status: number; text: string; headers: Headers }>;
  post(
    path: string,
    body: string,
    opts?: { sign?: boolean; ak?: string; sk?: string },
  ): Promise<{ status: number; text: string }>;
  close(): void;
}

async function startSd(
  t: TestContext,
  store: RegistryStore,
  opts: Partial<Pick<DiscoveryOptions, 'cache' | 'port'>> = {},
): Promise<Sd> {
  const registry = new Registry();
  const sd = await startDiscovery({
    host: '127.0.0.1',
    port: opts.port ?? 0,
    store,
    aksk: [[AK, SK]],
    logger: silentLogger(),
    registry,
    cache: opts.cache ?? NO_CACHE,
  });
  let closed = false;
  const close = () => {
    if (!closed) sd.close();
    closed = true;
  };
  t.after(close);
  const base = `http://127.0.0.1:${sd.port}`;
  return {
    base,
    port: sd.port,
    registry,
    async get(pathAndQuery) {
      const res = await fetch(base + pathAndQuery);
      return { status: res.status, text: await res.text(), headers: res.headers };
    },
    async post(p, body, o = {}) {
      const headers: Record<string, string> =
        o.sign === false
          ? {}
          : signRequest({ method: 'POST', path: p, query: '', body, ak: o.ak ?? AK, sk: o.sk ?? SK });
      const res = await fetch(base + p, { method: 'POST', headers, body });
      return { status: res.status, text: await res.text() };
    },
    close,
  };
}

interface DetailItem {
  name: string;
  ip: string;
  port: number;
  status: number;
  create_at: number;
  update_at: number;
  weight: number;
  extra: unknown;
  limit?: number;
  load?: number;
  expire_at: number;
}

async function detail(sd: Sd, name: string, count?: number): Promise<DetailItem[]> {
  const r = await sd.get(`/registry/detail?name=${name}${count === undefined ? '' : `&count=${count}`}`);
  assert.equal(r.status, 200, r.text);
  const body = JSON.parse(r.text) as { data: DetailItem[]; msg: string };
  assert.equal(body.msg, 'ok');
  return body.data;
}

const ports = (items: DetailItem[]) => items.map((i) => i.port);

async function until(what: string, ms: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

const reg = (port: number, weight: number, limit?: number, name = 'hids_svr_grpc'): RegisterInput => ({
  name,
  ip: '10.0.0.1',
  port,
  weight,
  ...(limit !== undefined ? { limit } : {}),
});

describe('Elkeid answer shapes (§3.3), byte for byte', () => {
  test('register, detail, summary, list, endpoint, sync, evict', async (t) => {
    const { store } = await freshStore();
    const sd = await startSd(t, store);
    const registerBody = '{"name":"hids_svr_grpc","ip":"10.0.0.1","port":6751,"weight":0,"extra":null}';

    const r1 = await fetch(`${sd.base}/registry/register`, {
      method: 'POST',
      headers: signRequest({
        method: 'POST',
        path: '/registry/register',
        query: '',
        body: registerBody,
        ak: AK,
        sk: SK,
      }),
      body: registerBody,
    });
    assert.equal(r1.status, 200);
    assert.equal(r1.headers.get('content-type'), JSON_TYPE);
    assert.equal(await r1.text(), '{"msg":"ok"}');

    const before = Math.floor(Date.now() / 1000);
    const d = await sd.get('/registry/detail?name=hids_svr_grpc&count=10');
    assert.equal(d.status, 200);
    assert.equal(d.headers.get('content-type'), JSON_TYPE);
    assert.equal(d.headers.get(STALE_HEADER), null);
    assert.match(
      d.text,
      /^\{"data":\[\{"name":"hids_svr_grpc","ip":"10\.0\.0\.1","port":6751,"status":0,"create_at":\d+,"update_at":\d+,"weight":0,"extra":null,"expire_at":\d+\}\],"msg":"ok"\}$/,
    );
    const [item] = (JSON.parse(d.text) as { data: DetailItem[] }).data;
    assert.deepEqual(Object.keys(item!).slice(0, 8), ELKEID_FIELDS);
    assert.ok(Math.abs(item!.create_at - before) <= 2);
    assert.ok(item!.expire_at - item!.update_at >= 14 && item!.expire_at - item!.update_at <= 16, 'TTL 15 s');

    // A renewal changes the weight and keeps extra, as Elkeid does.
    assert.equal(
      (
        await sd.post(
          '/registry/register',
          '{"name":"hids_svr_grpc","ip":"10.0.0.1","port":6751,"weight":7,"extra":{"a":"b"}}',
        )
      ).text,
      '{"msg":"ok"}',
    );
    const [renewed] = await detail(sd, 'hids_svr_grpc');
    assert.equal(renewed!.weight, 7);
    assert.equal(renewed!.extra, null);
    assert.equal(renewed!.create_at, item!.create_at);

    // An absent extra is Go's empty map; keys sorted and <>& escaped as encoding/json does.
    await sd.post('/registry/register', '{"name":"hids_manage","ip":"10.0.0.2","port":6701,"weight":0}');
    await sd.post(
      '/registry/register',
      '{"name":"hids_svr_http","ip":"10.0.0.1","port":6752,"weight":0,"extra":{"z":1,"a":"<b>&"}}',
    );
    assert.match((await sd.get('/registry/detail?name=hids_manage')).text, /"extra":\{\},"expire_at"/);
    assert.match(
      (await sd.get('/registry/detail?name=hids_svr_http')).text,
      /"extra":\{"a":"\\u003cb\\u003e\\u0026","z":1\}/,
    );

    assert.equal(
      (await sd.get('/registry/summary')).text,
      '{"data":{"hids_manage":1,"hids_svr_grpc":1,"hids_svr_http":1},"msg":"ok"}',
    );
    assert.equal(
      (await sd.get('/registry/list')).text,
      '{"data":["hids_manage","hids_svr_grpc","hids_svr_http"],"msg":"ok"}',
    );
    const self = `127.0.0.1:${sd.port}`;
    assert.equal(
      (await sd.get('/endpoint/ping')).text,
      `{"data":{"host":"${self}","members":["${self}"]},"msg":"ok"}`,
    );
    assert.equal((await sd.get('/endpoint/stat')).text, `{"data":["${self}"],"msg":"ok"}`);
    assert.equal((await sd.get('/ping')).text, '{"message":"pong"}');

    const sync = JSON.stringify({
      source: '10.0.0.9:8088',
      data: [{ action: 'REGISTER', registry: { name: 'x', ip: '1.1.1.1', port: 1 } }],
    });
    assert.deepEqual(await sd.post('/registry/sync', sync), { status: 200, text: '{"msg":"ok"}' });
    assert.deepEqual(
      (await sd.get('/registry/list')).text.includes('"x"'),
      false,
      'sync is acknowledged, not applied',
    );

    assert.deepEqual(
      await sd.post('/registry/evict', '{"name":"hids_svr_grpc","ip":"10.0.0.1","port":6751}'),
      {
        status: 200,
        text: '{"msg":"ok"}',
      },
    );
    assert.equal((await sd.get('/registry/detail?name=hids_svr_grpc')).text, '{"data":[],"msg":"ok"}');
    assert.equal((await sd.get('/registry/detail?name=never_registered')).text, '{"data":[],"msg":"ok"}');

    const metrics = await (await fetch(`${sd.base}/metrics`)).text();
    assert.match(metrics, /elkeid_sd_http_api\{path="\/registry\/detail",code="200"\} \d+/);
    assert.match(metrics, /elkeid_sd_registry_list\{name="hids_svr_grpc"\} 0/);
  });

  test('errors: bad JSON, bad fields, no server name', async (t) => {
    const { store } = await freshStore();
    const sd = await startSd(t, store);
    const postDataError = { status: 400, text: '{"msg":"post data error"}' };
    assert.deepEqual(await sd.post('/registry/register', '{"name":'), postDataError);
    assert.deepEqual(await sd.post('/registry/register', '[1]'), postDataError);
    assert.deepEqual(
      await sd.post('/registry/register', '{"name":"a","ip":"1.2.3.4","port":"6751"}'),
      postDataError,
    );
    assert.deepEqual(
      await sd.post('/registry/register', '{"name":"a","ip":"1.2.3.4","port":0}'),
      postDataError,
    );
    assert.deepEqual(
      await sd.post('/registry/register', '{"name":"","ip":"1.2.3.4","port":1}'),
      postDataError,
    );
    assert.deepEqual(
      await sd.post('/registry/register', '{"name":"a","ip":"1.2.3.4","port":1,"weight":1.5}'),
      postDataError,
    );
    assert.deepEqual(
      await sd.post('/registry/register', '{"name":"a","ip":"1.2.3.4","port":1,"extra":"x"}'),
      postDataError,
    );
    assert.deepEqual(await sd.post('/registry/evict', '{"name":"a"}'), postDataError);
    assert.deepEqual(await sd.post('/registry/sync', '{"data":5}'), postDataError);
    // Go matches JSON field names case-insensitively.
    assert.equal(
      (await sd.post('/registry/register', '{"Name":"a","IP":"1.2.3.4","Port":1,"Weight":2}')).status,
      200,
    );
    assert.equal((await detail(sd, 'a'))[0]?.weight, 2);

    const noName = await sd.get('/registry/detail');
    assert.deepEqual([noName.status, noName.text], [400, '{"msg":"no server name"}']);
    assert.equal((await sd.get('/registry/detail?name=')).text, '{"msg":"no server name"}');
  });
});

describe('least-loaded order', () => {
  test('ascending load ratio, limit-less instances after, full and expired left out, count', async (t) => {
    const { store } = await freshStore();
    const sd = await startSd(t, store);
    await store.register(reg(1, 50, 100)); // 0.5
    await store.register(reg(2, 10, 100)); // 0.1
    await store.register(reg(3, 300, 1000)); // 0.3
    await store.register(reg(4, 3)); // no limit, weight 3
    await store.register(reg(5, 0)); // no limit, weight 0
    await store.register(reg(6, 100, 100)); // full
    await store.register(reg(7, 150, 100)); // over full
    await store.register(reg(8, 0, 0)); // limit 0 = unknown
    await store.register(reg(9, 0, 10, 'other_service'));

    const all = await detail(sd, 'hids_svr_grpc');
    assert.deepEqual(ports(all).slice(0, 3), [2, 3, 1]);
    assert.deepEqual(new Set(ports(all).slice(3, 5)), new Set([5, 8]), 'limit-less weight 0 tie');
    assert.equal(all[5]?.port, 4);
    assert.equal(all.length, 6);
    assert.equal(all[0]?.limit, 100);
    assert.equal(all[0]?.load, 0.1);
    assert.equal(all[4]?.limit, undefined);

    assert.deepEqual(ports(await detail(sd, 'hids_svr_grpc', 2)), [2, 3]);
    assert.equal((await detail(sd, 'hids_svr_grpc', 0)).length, 6, 'count 0: all');
    assert.equal((await detail(sd, 'hids_svr_grpc', 1000)).length, 6, 'count above 100: clamped');
    assert.equal((await sd.get('/registry/detail?name=hids_svr_grpc&count=x')).status, 200);
    assert.deepEqual(ports(await detail(sd, 'other_service')), [9]);
  });

  test('count is capped at 100', async (t) => {
    const { store } = await freshStore();
    const sd = await startSd(t, store);
    for (let i = 0; i < 120; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, j) => store.register(reg(1000 + i + j, i + j, 1000))));
    }
    assert.equal((await detail(sd, 'hids_svr_grpc')).length, 120, 'no count: every instance (Elkeid)');
    const capped = await detail(sd, 'hids_svr_grpc', 500);
    assert.equal(capped.length, 100);
    assert.deepEqual(
      ports(capped),
      Array.from({ length: 100 }, (_, i) => 1000 + i),
    );
  });

  test('ties spread: 200 requests over 3 equal gateways each put every one first about a third of the time', async (t) => {
    const { store } = await freshStore();
    // Cached as in production: the spread comes from the per-request shuffle, not from refreshes.
    const sd = await startSd(t, store, { cache: { freshMs: 60_000, maxAgeMs: 120_000 } });
    for (const p of [1, 2, 3]) await store.register(reg(p, 100, 1000));
    await store.register(reg(4, 200, 1000));
    const firsts = new Map<number, number>();
    for (let i = 0; i < 200; i++) {
      const d = await detail(sd, 'hids_svr_grpc', 10);
      assert.equal(d.length, 4);
      assert.equal(d[3]?.port, 4, 'the more loaded gateway is always last');
      firsts.set(d[0]!.port, (firsts.get(d[0]!.port) ?? 0) + 1);
    }
    // Expected 66.7 each, sd 6.7: 40..94 is ±4 sd.
    for (const p of [1, 2, 3]) {
      const n = firsts.get(p) ?? 0;
      assert.ok(n >= 40 && n <= 94, `gateway ${p} first ${n}/200 times: ${JSON.stringify([...firsts])}`);
    }
  });

  test('an instance that stops renewing leaves the answers within the TTL', async (t) => {
    const { store } = await freshStore({ ttlMs: 700 });
    const sd = await startSd(t, store);
    await store.register(reg(1, 0, 10));
    await store.register(reg(2, 5, 10));
    assert.deepEqual(ports(await detail(sd, 'hids_svr_grpc')), [1, 2]);
    const started = Date.now();
    // Only 2 keeps renewing.
    await until('1 expires', 3000, async () => {
      await store.register(reg(2, 5, 10));
      return ports(await detail(sd, 'hids_svr_grpc')).join() === '2';
    });
    assert.ok(Date.now() - started < 1500, `left after ${Date.now() - started} ms`);
    assert.equal((await sd.get('/registry/summary')).text, '{"data":{"hids_svr_grpc":1},"msg":"ok"}');
    // Re-registering after expiry is a new registration (create_at renewed).
    await sleep(50);
    await store.register(reg(1, 0, 10));
    const again = (await detail(sd, 'hids_svr_grpc')).find((i) => i.port === 1);
    assert.ok(again);
  });

  test('several discovery nodes on one store give the same least-loaded order', async (t) => {
    const { store, prefix } = await freshStore();
    const loads = [70, 10, 40, 90, 20, 60, 30, 80, 50];
    for (const [i, w] of loads.entries()) await store.register(reg(7000 + i, w, 100));
    const nodes: Sd[] = [];
    for (let i = 0; i < 3; i++) {
      // Each node has its own client, store object and caches: they share only the table.
      const client = createDynamoClient({ endpoint: db.dynamo.endpoint });
      t.after(() => client.destroy());
      nodes.push(
        await startSd(t, createRegistryStore({ client, tablePrefix: prefix }), { cache: { freshMs: 1000 } }),
      );
    }
    const expected = [...loads.entries()].sort((a, b) => a[1] - b[1]).map(([i]) => 7000 + i);
    for (const node of nodes) assert.deepEqual(ports(await detail(node, 'hids_svr_grpc', 10)), expected);
    // A load change reaches every node within the cache time.
    await store.register(reg(7001, 99, 100));
    const moved = [...expected.filter((p) => p !== 7001), 7001];
    for (const node of nodes) {
      await until(
        'new order',
        3000,
        async () => ports(await detail(node, 'hids_svr_grpc', 10)).join() === moved.join(),
      );
    }
  });
});

describe('store outages', () => {
  test('the last good answer is served, flagged stale; recovery when the store returns', async (t) => {
    // Its own dynalite, stopped and restarted on the same port and directory.
    const own = await startTestDynamo();
    t.after(() => own.close());
    const store = createRegistryStore({ client: own.client, tablePrefix: own.prefix, ttlMs: 1000 });
    const sd = await startSd(t, store, { cache: { freshMs: 100, maxAgeMs: 300, retryMs: 200 } });
    await store.register(reg(1, 10, 100));
    await store.register(reg(2, 5, 100));
    const good = await sd.get('/registry/detail?name=hids_svr_grpc');
    assert.equal(good.headers.get(STALE_HEADER), null);
    const goodPorts = ports((JSON.parse(good.text) as { data: DetailItem[] }).data);
    assert.deepEqual(goodPorts, [2, 1]);

    await own.dynamo.close();
    // Past the TTL of every stored instance. Instance 1 keeps renewing through this node (the
    // store refuses, the node hears it): a stale answer keeps it. Instance 2 says nothing: aged
    // out, it is left out, as is instance 1 once it deregisters.
    const renewals = setInterval(
      () => void sd.post('/registry/register', JSON.stringify(reg(1, 10, 100))),
      200,
    );
    t.after(() => clearInterval(renewals));
    await sleep(1300);
    const stale = await sd.get('/registry/detail?name=hids_svr_grpc');
    assert.equal(stale.status, 200);
    const age = Number(stale.headers.get(STALE_HEADER));
    assert.ok(age >= 1 && age <= 5, `stale age ${age}`);
    assert.deepEqual(ports((JSON.parse(stale.text) as { data: DetailItem[] }).data), [1]);
    clearInterval(renewals);
    await sleep(250); // a renewal in flight lands first
    const evict = await sd.post(
      '/registry/evict',
      JSON.stringify({ name: 'hids_svr_grpc', ip: reg(1, 0, 0).ip, port: 1 }),
    );
    assert.equal(evict.status, 503, 'the store cannot record it');
    const afterEvict = await sd.get('/registry/detail?name=hids_svr_grpc');
    assert.deepEqual(ports((JSON.parse(afterEvict.text) as { data: DetailItem[] }).data), []);
    const s2 = await sd.get('/registry/detail?name=hids_svr_grpc');
    assert.ok(s2.headers.get(STALE_HEADER) !== null);
    assert.ok((await metricValue(sd.registry, 'fleetgate_discovery_stale_answers_total')) >= 2);
    assert.equal(await metricValue(sd.registry, 'fleetgate_discovery_store_up'), 0);
    // Writes are refused (503) so a registrant retries, instead of a silent loss.
    assert.deepEqual(await sd.post('/registry/register', JSON.stringify(reg(3, 0, 10))), {
      status: 503,
      text: '{"msg":"registry unavailable"}',
    });

    // The store returns on the same endpoint, with the same data on disk.
    const back = await startEmbeddedDynamo({ dir: own.dir, port: own.dynamo.port });
    t.after(() => back.close());
    await store.register(reg(1, 10, 100));
    await store.register(reg(2, 50, 100));
    await until('fresh answer', 5000, async () => {
      const r = await sd.get('/registry/detail?name=hids_svr_grpc');
      return (
        r.headers.get(STALE_HEADER) === null &&
        ports((JSON.parse(r.text) as { data: DetailItem[] }).data).join() === '1,2'
      );
    });
    assert.equal(await metricValue(sd.registry, 'fleetgate_discovery_store_up'), 1);
  });

  test('no answer ever read: 503 registry unavailable, never an empty list', async (t) => {
    const client = createDynamoClient({ endpoint: 'http://127.0.0.1:1' });
    t.after(() => client.destroy());
    const sd = await startSd(t, createRegistryStore({ client, tablePrefix: 'x-' }));
    const r = await sd.get('/registry/detail?name=hids_svr_grpc');
    assert.deepEqual([r.status, r.text], [503, '{"msg":"registry unavailable"}']);
    assert.equal((await sd.get('/registry/summary')).status, 503);
    assert.equal((await sd.get('/registry/list')).status, 503);
    assert.ok((await metricValue(sd.registry, 'fleetgate_discovery_unavailable_total')) >= 3);
  });
});

describe('AK/SK (§2.13)', () => {
  const V1_BODY = '{"name":"hids_svr_grpc","ip":"10.0.0.1","port":6751,"weight":0,"extra":null}';
  const V1_SIG = '0770ba69ed1894d14ad21b76a96821c263f67035784168603fb6567ebab299cc';
  const TS = 1_700_000_000;

  async function handlerAt(seconds: () => number) {
    const { store } = await freshStore();
    const registry = new Registry();
    return createDiscoveryHandler({
      store,
      metrics: createDiscoveryMetrics(registry),
      logger: silentLogger(),
      self: 'test:8088',
      aksk: [[AK, SK]],
      registry,
      verifier: createVerifier({ keys: new Map([[AK, SK]]), now: () => seconds() * 1000 }),
      cache: NO_CACHE,
    }).handler;
  }
  const req = (headers: Record<string, string>, body = V1_BODY): HttpRequest => ({
    method: 'POST',
    path: '/registry/register',
    query: '',
    headers,
    body: Buffer.from(body),
    remoteAddress: '127.0.0.1',
  });
  const v1Headers = { accesskey: AK, timestamp: String(TS), signature: V1_SIG };
  const refused = (reason: string) => ({
    status: 403,
    body: `{"code":-1,"data":"${reason}","msg":"auth failed"}`,
  });

  test('the test vector is accepted; each failure answers 403 with Elkeid SD reason', async () => {
    let now = TS;
    const handler = await handlerAt(() => now);
    const call = async (r: HttpRequest) => {
      const res = await handler(r);
      return { status: res.status, body: String(res.body) };
    };
    assert.deepEqual(await call(req(v1Headers)), { status: 200, body: '{"msg":"ok"}' });
    // The same signed request again within its window is a replay.
    assert.deepEqual(await call(req(v1Headers)), refused('signature replayed'));
    assert.deepEqual(
      await call(req({ ...v1Headers, signature: V1_SIG.replace('0', '1') })),
      refused('Signature Error'),
    );
    assert.deepEqual(await call(req(v1Headers, V1_BODY.replace('6751', '6752'))), refused('Signature Error'));
    assert.deepEqual(
      await call(req({ accesskey: AK, timestamp: String(TS) })),
      refused('header missed: AccessKey|Signature|TimeStamp'),
    );
    assert.deepEqual(await call(req({ ...v1Headers, accesskey: 'nobody' })), refused('User not exist'));
    assert.match(
      (await call(req({ ...v1Headers, timestamp: 'x' }))).body,
      /"data":"TimeStamp Error strconv.ParseInt/,
    );
    // Replay outside the window: refused on its timestamp, 60 s after.
    now = TS + 60;
    assert.deepEqual(await call(req({ ...v1Headers, accesskey: AK })), refused('TimeStamp Error'));
    now = TS + 59;
    const fresh = signRequest({
      method: 'POST',
      path: '/registry/register',
      query: '',
      body: V1_BODY,
      ak: AK,
      sk: SK,
      now: () => (TS + 59) * 1000,
    });
    const lower = Object.fromEntries(Object.entries(fresh).map(([k, v]) => [k.toLowerCase(), v]));
    assert.equal((await call(req(lower))).status, 200);
  });

  test('over HTTP: unsigned and badly signed writes are refused, reads are open', async (t) => {
    const { store } = await freshStore();
    const sd = await startSd(t, store);
    assert.deepEqual(await sd.post('/registry/register', V1_BODY, { sign: false }), {
      status: 403,
      text: '{"code":-1,"data":"header missed: AccessKey|Signature|TimeStamp","msg":"auth failed"}',
    });
    assert.deepEqual(await sd.post('/registry/evict', V1_BODY, { sk: 'wrong' }), {
      status: 403,
      text: '{"code":-1,"data":"Signature Error","msg":"auth failed"}',
    });
    assert.equal((await sd.post('/registry/sync', '{}', { sign: false })).status, 403);
    assert.deepEqual(await detail(sd, 'hids_svr_grpc'), []);
    // A captured request replayed as is.
    const headers = signRequest({
      method: 'POST',
      path: '/registry/register',
      query: '',
      body: V1_BODY,
      ak: AK,
      sk: SK,
    });
    const send = () => fetch(`${sd.base}/registry/register`, { method: 'POST', headers, body: V1_BODY });
    assert.equal((await send()).status, 200);
    const replay = await send();
    assert.equal(replay.status, 403);
    assert.equal(await replay.text(), '{"code":-1,"data":"signature replayed","msg":"auth failed"}');
  });
});

describe('registrar', () => {
  test('registers every interval with weight and limit, evicts on stop', async (t) => {
    const { store } = await freshStore();
    const sd = await startSd(t, store);
    let weight = 1;
    let round = 0;
    const registrar = startRegistrar({
      target: { sdAddrs: [`127.0.0.1:${sd.port}`], ak: AK.toUpperCase(), sk: SK },
      // Signatures have 1 s resolution: at this test's 150 ms interval an unchanged body would be
      // refused as a replay, so each round's body differs (in production: 5 s, no collision).
      registrations: () => [
        {
          name: 'hids_svr_grpc',
          ip: '127.0.0.1',
          port: 6751,
          weight,
          limit: 100,
          mem: round,
          version: '1.0.0',
        },
        { name: 'hids_svr_http', ip: '127.0.0.1', port: 6752, weight, limit: 100, cpu: round++ },
      ],
      intervalMs: 150,
      logger: silentLogger(),
    });
    t.after(() => registrar.stop());
    await until('first registration', 3000, async () => (await detail(sd, 'hids_svr_grpc')).length === 1);
    weight = 42;
    await until('renewed weight', 3000, async () => (await detail(sd, 'hids_svr_grpc'))[0]?.weight === 42);
    const rounds0 = await metricValue(sd.registry, 'elkeid_sd_http_api', {
      path: '/registry/register',
      code: '200',
    });
    await sleep(1000);
    const rounds =
      (await metricValue(sd.registry, 'elkeid_sd_http_api', { path: '/registry/register', code: '200' })) -
      rounds0;
    // A round every 150 ms ± 20 % after the previous one ended: at most 9 rounds of 2 in 1 s, and
    // at least 3 even when a loaded machine makes each round (2 signed HTTP writes) slow.
    assert.ok(rounds >= 2 * 3 && rounds <= 2 * 9, `${rounds} registrations in 1 s`);
    const [item] = await detail(sd, 'hids_svr_grpc');
    assert.equal(item?.limit, 100);
    assert.equal(item?.load, 0.42);
    await registrar.stop();
    assert.deepEqual(await detail(sd, 'hids_svr_grpc'), []);
    assert.deepEqual(await detail(sd, 'hids_svr_http'), []);
  });

  test('keeps trying while discovery is down at start, registers once it is up', async (t) => {
    const { store } = await freshStore();
    // Find a free port, then leave it closed for a while.
    const probe = await startSd(t, store);
    const port = probe.port;
    probe.close();
    const registrar = startRegistrar({
      target: { sdAddrs: [`127.0.0.1:${port}`], ak: AK, sk: SK },
      registrations: () => [{ name: 'hids_svr_grpc', ip: '127.0.0.1', port: 6751, weight: 0 }],
      intervalMs: 300,
      logger: silentLogger(),
    });
    t.after(() => registrar.stop());
    const first = await registrar.registerNow();
    assert.deepEqual(first, { ok: 0, failed: 1 });
    assert.equal(registrar.lastSuccessAt, 0);
    await sleep(500);
    const sd = await startSd(t, store, { port });
    await until(
      'registered after discovery came up',
      5000,
      async () => (await detail(sd, 'hids_svr_grpc')).length === 1,
    );
    assert.ok(registrar.lastSuccessAt > 0);
  });

  test('with a local store (fleetgate all) it writes the registry directly', async (t) => {
    const { store } = await freshStore();
    const sd = await startSd(t, store);
    const registrar = startRegistrar({
      target: { store },
      registrations: () => [{ name: 'hids_svr_grpc', ip: '127.0.0.1', port: 6751, weight: 3, limit: 10 }],
      logger: silentLogger(),
    });
    await until('registered', 3000, async () => (await detail(sd, 'hids_svr_grpc'))[0]?.weight === 3);
    await registrar.stop();
    assert.deepEqual(await detail(sd, 'hids_svr_grpc'), []);
  });

  test("speaks Elkeid's register/evict: a stock SD would accept its body and signature", async (t) => {
    const seen: Array<{
      path: string;
      body: string;
      headers: Record<string, string | string[] | undefined>;
    }> = [];
    const verifier = createVerifier({ keys: new Map([[AK, SK]]) });
    const fake = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        seen.push({ path: req.url ?? '', body: body.toString(), headers: req.headers });
        const v = verifier.verify({
          method: req.method ?? '',
          path: req.url ?? '',
          query: '',
          headers: req.headers as Record<string, string>,
          body,
          remoteAddress: '',
        });
        res.writeHead(v.ok ? 200 : 403, { 'content-type': JSON_TYPE });
        res.end(v.ok ? '{"msg":"ok"}' : '{"code":-1}');
      });
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    t.after(() => fake.close());
    const registrar = startRegistrar({
      target: { sdAddrs: [`127.0.0.1:${(fake.address() as AddressInfo).port}`], ak: AK, sk: SK },
      registrations: () => [{ name: 'hids_svr_grpc', ip: '10.0.0.1', port: 6751, weight: 0 }],
      logger: silentLogger(),
    });
    const result = await registrar.registerNow();
    assert.deepEqual(result, { ok: 1, failed: 0 });
    await registrar.stop();
    assert.equal(seen[0]?.path, '/registry/register');
    assert.equal(
      seen[0]?.body,
      '{"name":"hids_svr_grpc","ip":"10.0.0.1","port":6751,"weight":0,"extra":null}',
    );
    assert.equal(seen.at(-1)?.path, '/registry/evict');
    assert.equal(seen.at(-1)?.body, '{"name":"hids_svr_grpc","ip":"10.0.0.1","port":6751}');
  });
});

describe('registrant processes', () => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const child = path.join(here, '..', 'fixtures', 'registrar-child.ts');

  function spawnRegistrant(t: TestContext, sdPort: number, port: number): Promise<ChildProcess> {
    const proc = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        child,
        '--sd',
        `127.0.0.1:${sdPort}`,
        '--ak',
        AK,
        '--sk',
        SK,
        '--port',
        String(port),
        '--limit',
        '1000',
        '--weight',
        String(port % 10),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    t.after(() => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    });
    return new Promise((resolve, reject) => {
      proc.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) resolve(proc);
      });
      proc.once('exit', (code) => reject(new Error(`registrant exited early (${code})`)));
    });
  }

  test('three gateways: SIGKILL leaves within the TTL, SIGTERM leaves at once', async (t) => {
    const { store } = await freshStore({ ttlMs: 3000 });
    const sds = [
      await startSd(t, store, { cache: { freshMs: 200 } }),
      await startSd(t, store, { cache: { freshMs: 200 } }),
    ];
    const [a, b, c] = await Promise.all([6001, 6002, 6003].map((p) => spawnRegistrant(t, sds[0]!.port, p)));
    for (const sd of sds) {
      await until(
        '3 gateways',
        5000,
        async () => ports(await detail(sd, 'hids_svr_grpc')).join() === '6001,6002,6003',
      );
    }

    const killedAt = Date.now();
    a!.kill('SIGKILL');
    for (const sd of sds) {
      await until(
        'killed gateway gone',
        5000,
        async () => !ports(await detail(sd, 'hids_svr_grpc')).includes(6001),
      );
    }
    const gone = Date.now() - killedAt;
    assert.ok(
      gone <= 3000 + 200 + 1000,
      `SIGKILLed gateway left after ${gone} ms (TTL 3000 ms + cache 200 ms)`,
    );
    assert.ok(gone >= 1500, `SIGKILLed gateway left after ${gone} ms: before its TTL could have passed`);

    const termAt = Date.now();
    b!.kill('SIGTERM');
    await new Promise((r) => b!.once('exit', r));
    for (const sd of sds) {
      await until(
        'stopped gateway gone',
        2000,
        async () => !ports(await detail(sd, 'hids_svr_grpc')).includes(6002),
      );
    }
    const left = Date.now() - termAt;
    assert.ok(left < 1500, `SIGTERMed gateway left after ${left} ms (TTL 3000 ms)`);
    for (const sd of sds) assert.deepEqual(ports(await detail(sd, 'hids_svr_grpc')), [6003]);
    c!.kill('SIGTERM');
  });
});
