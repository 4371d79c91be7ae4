/**
 * The discovery Lambda (`discovery/lambda.ts` `handler`), invoked with API Gateway HTTP
 * API 2.0 and Function URL events (test/fixtures/apigw/) and Application Load Balancer events in
 * both header modes (test/fixtures/alb/, the shapes of the ELB guide's "Lambda functions as
 * targets") against a real dynalite, configured only through the environment as a deployed
 * function is.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { signRequest } from '../../platform/http/aksk.js';
import {
  type AlbEvent,
  albQueryString,
  type LambdaHandler,
  type LambdaHttpEvent,
  toAlbResult,
  toHttpRequest,
  toLambdaHandler,
  toLambdaResult,
} from '../../platform/http/lambda-adapter.js';
import { startTestDynamo, type TestDynamo } from '../helpers/dynalite.js';
import { sleep } from '../helpers/time.js';

const AK = '7abyaiyf56jowghp';
const SK = 'L3E56PpoCoKktzUSlZc1zQdq1x2n9ign';
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'apigw');
const fixture = (name: string): LambdaHttpEvent =>
  JSON.parse(readFileSync(path.join(fixtures, name), 'utf8')) as LambdaHttpEvent;
const albFixture = (name: string): AlbEvent =>
  JSON.parse(readFileSync(path.join(fixtures, '..', 'alb', name), 'utf8')) as AlbEvent;

/** The event with AK/SK headers over its method, raw path, raw query and (decoded) body, as a registrar signs. */
function signed(event: LambdaHttpEvent): LambdaHttpEvent {
  const body = event.isBase64Encoded
    ? Buffer.from(event.body ?? '', 'base64')
    : Buffer.from(event.body ?? '');
  const headers = signRequest({
    method: event.requestContext!.http!.method!,
    path: event.rawPath!,
    query: event.rawQueryString ?? '',
    body,
    ak: AK,
    sk: SK,
  });
  // API Gateway hands header names over lower-cased.
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { ...event, headers: { ...event.headers, ...lower } };
}

/** An ALB event signed as a registrar signs it: over the query string the balancer passes on. */
function signedAlb(event: AlbEvent): AlbEvent {
  const body = event.isBase64Encoded
    ? Buffer.from(event.body ?? '', 'base64')
    : Buffer.from(event.body ?? '');
  const headers = signRequest({
    method: event.httpMethod,
    path: event.path ?? '/',
    query: albQueryString(event),
    body,
    ak: AK,
    sk: SK,
  });
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { ...event, headers: { ...event.headers, ...lower } };
}

let db: TestDynamo;
let handler: LambdaHandler;

before(async () => {
  db = await startTestDynamo();
  process.env.FLEETGATE_DYNAMODB_ENDPOINT = db.dynamo.endpoint;
  process.env.FLEETGATE_TABLE_PREFIX = db.prefix;
  process.env.FLEETGATE_AKSK = `${AK}:${SK}`;
  process.env.FLEETGATE_LOG_LEVEL = 'silent';
  process.env.AWS_LAMBDA_FUNCTION_NAME = 'fleetgate-discovery';
  ({ handler } = await import('../../discovery/lambda.js'));
});
after(async () => {
  await db.close();
});

test('register (HTTP API), detail (HTTP API), evict (Function URL, base64 body) through the handler', async () => {
  const registered = await handler(signed(fixture('http-api-v2-register.json')));
  assert.deepEqual(registered, {
    statusCode: 200,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: '{"msg":"ok"}',
    isBase64Encoded: false,
  });

  const detail = await handler(fixture('http-api-v2-detail.json'));
  assert.equal(detail.statusCode, 200);
  assert.equal(detail.isBase64Encoded, false);
  assert.match(
    detail.body,
    /^\{"data":\[\{"name":"hids_svr_grpc","ip":"10\.0\.0\.1","port":6751,"status":0,"create_at":\d+,"update_at":\d+,"weight":0,"extra":null,"expire_at":\d+\}\],"msg":"ok"\}$/,
  );

  const ping = await handler({
    ...fixture('http-api-v2-detail.json'),
    rawPath: '/endpoint/ping',
    rawQueryString: '',
  });
  assert.equal(
    ping.body,
    '{"data":{"host":"fleetgate-discovery","members":["fleetgate-discovery"]},"msg":"ok"}',
  );

  const evicted = await handler(signed(fixture('function-url-evict.json')));
  assert.equal(evicted.statusCode, 200);
  assert.equal(evicted.body, '{"msg":"ok"}');
  // Writes through this container invalidate its cached answer at once.
  assert.equal((await handler(fixture('http-api-v2-detail.json'))).body, '{"data":[],"msg":"ok"}');
});

test('unsigned and replayed writes: 403 as Elkeid SD answers', async () => {
  const unsigned = await handler(fixture('http-api-v2-register.json'));
  assert.equal(unsigned.statusCode, 403);
  assert.equal(
    unsigned.body,
    '{"code":-1,"data":"header missed: AccessKey|Signature|TimeStamp","msg":"auth failed"}',
  );
  const once = signed({
    ...fixture('http-api-v2-register.json'),
    body: '{"name":"hids_manage","ip":"10.0.0.5","port":6701,"weight":0}',
  });
  assert.equal((await handler(once)).statusCode, 200);
  const replay = await handler(once);
  assert.equal(replay.statusCode, 403);
  assert.equal(replay.body, '{"code":-1,"data":"signature replayed","msg":"auth failed"}');
});

test('health routes and errors', async () => {
  const base = fixture('http-api-v2-detail.json');
  const ping = await handler({ ...base, rawPath: '/ping', rawQueryString: '' });
  assert.equal(ping.body, '{"message":"pong"}');
  const metrics = await handler({ ...base, rawPath: '/metrics', rawQueryString: '' });
  assert.equal(metrics.statusCode, 200);
  assert.match(metrics.headers['content-type'] ?? '', /^text\/plain/);
  assert.equal(metrics.isBase64Encoded, false);
  assert.match(metrics.body, /elkeid_sd_http_api\{path="\/registry\/detail",code="200"\}/);
  const noName = await handler({ ...base, rawQueryString: 'count=3' });
  assert.deepEqual([noName.statusCode, noName.body], [400, '{"msg":"no server name"}']);
  const notFound = await handler({ ...base, rawPath: '/nope' });
  assert.equal(notFound.statusCode, 404);
  // A REST API (payload 1.0) event is not what this function is deployed behind.
  const v1 = await handler(fixture('rest-api-v1-detail.json'));
  assert.deepEqual([v1.statusCode, v1.body], [400, '{"msg":"unsupported event"}']);
});

test('the adapter: cookies, repeated headers, binary bodies, handler errors', async () => {
  const event: LambdaHttpEvent = {
    ...fixture('http-api-v2-detail.json'),
    cookies: ['a=1', 'b=2'],
    headers: { 'x-multi': 'one,two', Host: 'h' },
    body: Buffer.from([0, 1, 2, 255]).toString('base64'),
    isBase64Encoded: true,
  };
  const req = toHttpRequest(event);
  assert.equal(req.method, 'GET');
  assert.equal(req.path, '/registry/detail');
  assert.equal(req.query, 'name=hids_svr_grpc&count=10');
  assert.equal(req.headers.cookie, 'a=1; b=2');
  assert.equal(req.headers['x-multi'], 'one,two');
  assert.equal(req.headers.host, 'h');
  assert.deepEqual([...req.body], [0, 1, 2, 255]);
  assert.equal(req.remoteAddress, '203.0.113.17');

  assert.deepEqual(
    toLambdaResult({
      status: 200,
      headers: { 'Content-Type': 'application/octet-stream' },
      body: Buffer.from([255, 0]),
    }),
    {
      statusCode: 200,
      headers: { 'content-type': 'application/octet-stream' },
      body: '/wA=',
      isBase64Encoded: true,
    },
  );
  assert.equal(
    toLambdaResult({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from('{"é":1}'),
    }).body,
    '{"é":1}',
  );
  const errors: unknown[] = [];
  const failing = toLambdaHandler(
    () => {
      throw new Error('boom');
    },
    { onError: (e) => errors.push(e) },
  );
  const r = await failing(fixture('http-api-v2-detail.json'));
  assert.deepEqual([r.statusCode, r.body], [500, '{"msg":"internal error"}']);
  assert.equal(errors.length, 1);
});

test('Application Load Balancer (stock agents on :8088): register with a base64 body, detail in both header modes', async () => {
  const unsigned = await handler(albFixture('register-base64.json'));
  assert.equal(unsigned.statusCode, 403);
  assert.equal(unsigned.statusDescription, '403 Forbidden');

  const registered = await handler(signedAlb(albFixture('register-base64.json')));
  assert.deepEqual(registered, {
    statusCode: 200,
    statusDescription: '200 OK',
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: '{"msg":"ok"}',
    isBase64Encoded: false,
  });

  // Single-value mode (the target group's default): `headers` back, as the balancer reads them.
  const detail = await handler(albFixture('detail.json'));
  assert.equal(detail.statusCode, 200);
  assert.equal(detail.statusDescription, '200 OK');
  assert.equal(detail.multiValueHeaders, undefined);
  assert.deepEqual(detail.headers, { 'content-type': 'application/json; charset=utf-8' });
  assert.equal(detail.isBase64Encoded, false);
  // What a stock agent decodes: data[].ip/port/weight.
  const answer = JSON.parse(detail.body) as { data: Array<{ ip: string; port: number; weight: number }> };
  assert.deepEqual(
    answer.data.map((d) => [d.ip, d.port]),
    [['10.0.0.9', 6751]],
  );

  // Multi-value mode: `multiValueHeaders` back and no `headers`.
  const multi = await handler(albFixture('detail-multi-value.json'));
  assert.equal(multi.statusCode, 200);
  assert.equal(multi.headers, undefined);
  assert.deepEqual(multi.multiValueHeaders, { 'content-type': ['application/json; charset=utf-8'] });
  assert.equal(multi.body, detail.body);

  const notFound = await handler({ ...albFixture('detail.json'), path: '/nope' });
  assert.deepEqual([notFound.statusCode, notFound.statusDescription], [404, '404 Not Found']);
  const bad = await handler({ ...albFixture('detail.json'), httpMethod: '' });
  assert.deepEqual(
    [bad.statusCode, bad.statusDescription, bad.body],
    [400, '400 Bad Request', '{"msg":"unsupported event"}'],
  );

  const evicted = await handler(
    signedAlb({ ...albFixture('register-base64.json'), path: '/registry/evict' }),
  );
  assert.equal(evicted.statusCode, 200);
  assert.equal(JSON.parse((await handler(albFixture('detail.json'))).body).data.length, 0);
});

test('the ALB adapter: query rebuilt as sent, repeated headers and parameters, client address', () => {
  const single = toHttpRequest(albFixture('detail.json'));
  assert.deepEqual(
    [single.method, single.path, single.query, single.remoteAddress],
    ['GET', '/registry/detail', 'name=hids_svr_grpc&count=10', '10.20.30.40'],
  );
  assert.equal(single.headers.host, 'internal-fleetgate-sd-1234567890.eu-west-1.elb.amazonaws.com:8088');

  const multi = toHttpRequest(albFixture('detail-multi-value.json'));
  assert.equal(multi.query, 'name=hids_svr_grpc&count=10');
  assert.equal(multi.headers['x-multi'], 'one,two');
  // The balancer appends the address it saw; earlier entries are the client's to invent.
  assert.equal(multi.remoteAddress, '10.20.30.41');

  // The balancer does not decode parameters: neither does the adapter (signatures cover them).
  assert.equal(
    albQueryString({
      ...albFixture('detail-multi-value.json'),
      multiValueQueryStringParameters: { name: ['hids%5Fsvr%20x'], tag: ['a', 'b'], empty: [''] },
    }),
    'name=hids%5Fsvr%20x&tag=a&tag=b&empty=',
  );
  const binary = toHttpRequest({
    ...albFixture('register-base64.json'),
    body: Buffer.from([0, 255]).toString('base64'),
  });
  assert.deepEqual([...binary.body], [0, 255]);

  assert.deepEqual(
    toAlbResult({ statusCode: 429, headers: { 'retry-after': '1' }, body: '', isBase64Encoded: false }, true),
    {
      statusCode: 429,
      statusDescription: '429 Too Many Requests',
      multiValueHeaders: { 'retry-after': ['1'] },
      body: '',
      isBase64Encoded: false,
    },
  );
});

test('store unavailable: the warm container serves its last good answer, flagged stale', async () => {
  // Another body than the first test's: the same signed request within a second is a replay.
  const body = '{"name":"hids_svr_grpc","ip":"10.0.0.1","port":6751,"weight":3,"extra":null}';
  assert.equal((await handler(signed({ ...fixture('http-api-v2-register.json'), body }))).statusCode, 200);
  const good = await handler(fixture('http-api-v2-detail.json'));
  assert.match(good.body, /"port":6751/);
  await db.dynamo.close();
  await sleep(1100); // past the 1 s freshness: the next invocation tries the store and fails
  const stale = await handler(fixture('http-api-v2-detail.json'));
  assert.equal(stale.statusCode, 200);
  assert.ok(Number(stale.headers['x-fleetgate-stale']) >= 1, JSON.stringify(stale.headers));
  assert.match(stale.body, /"port":6751/);
});
