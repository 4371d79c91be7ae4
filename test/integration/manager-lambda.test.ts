/**
 * The manager as a Lambda function (`manager/lambda.ts` `handler`), configured only by
 * the environment, invoked with API Gateway HTTP API 2.0 events (test/fixtures/apigw/) against a
 * real dynalite: the cold start refuses a weak secret, creates the first admin from
 * FLEETGATE_ADMIN, and serves sign-in, listings and AK/SK-signed gateway callbacks.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createHeartbeatWriter } from '../../manager/agent-status-writer.js';
import { signRequest } from '../../platform/http/aksk.js';
import type { LambdaHttpEvent, LambdaHttpResult } from '../../platform/http/lambda-adapter.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { startTestDynamo, type TestDynamo } from '../helpers/dynalite.js';
import { AK, FakeRegistry, FakeSession, SECRET, SK } from '../helpers/manager-harness.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'apigw');
const fixture = (name: string): LambdaHttpEvent =>
  JSON.parse(readFileSync(path.join(fixtures, name), 'utf8')) as LambdaHttpEvent;

let db: TestDynamo;
let handler: (event: LambdaHttpEvent) => Promise<LambdaHttpResult>;

before(async () => {
  db = await startTestDynamo();
  Object.assign(process.env, {
    FLEETGATE_DYNAMODB_ENDPOINT: db.dynamo.endpoint,
    FLEETGATE_TABLE_PREFIX: db.prefix,
    FLEETGATE_AKSK: `${AK}:${SK}`,
    FLEETGATE_ADMIN: 'lambda-admin:lambda-password-1',
    FLEETGATE_LOG_LEVEL: 'silent',
    AWS_LAMBDA_FUNCTION_NAME: 'fleetgate-manager',
  });
  ({ handler } = await import('../../manager/lambda.js'));
});
after(async () => {
  await db.close();
});

test('a cold start with a missing, short or published secret fails; a good one serves', async () => {
  delete process.env.FLEETGATE_MANAGER_SECRET;
  await assert.rejects(
    handler(fixture('manager-http-api-v2-login.json')),
    /FLEETGATE_MANAGER_SECRET is not set/,
  );
  process.env.FLEETGATE_MANAGER_SECRET = 'too-short';
  await assert.rejects(handler(fixture('manager-http-api-v2-login.json')), /at least 32/);
  process.env.FLEETGATE_MANAGER_SECRET = 'ASpQO2kzFcosGHavUP9BJkn5pcFGIjeg';
  await assert.rejects(handler(fixture('manager-http-api-v2-login.json')), /published default/);
  process.env.FLEETGATE_MANAGER_SECRET = SECRET;
  const login = await handler(fixture('manager-http-api-v2-login.json'));
  assert.equal(login.statusCode, 200);
  assert.equal(login.isBase64Encoded, false);
  assert.equal(login.headers['content-type'], 'application/json; charset=utf-8');
  const body = JSON.parse(login.body);
  assert.equal(body.code, 0, login.body);
  assert.match(body.data.token, /^fgs1\./);
});

test('sign in, list agents with the token, gateway callbacks with AK/SK, refusals', async () => {
  process.env.FLEETGATE_MANAGER_SECRET = SECRET;
  const reg = new FakeRegistry();
  const writer = createHeartbeatWriter({
    client: db.client,
    tablePrefix: db.prefix,
    gatewayId: '10.0.0.9:6751',
    sessions: reg,
    logger: silentLogger(),
  });
  reg.add(new FakeSession('lambda-agent')).heartbeat();
  writer.sweep();
  await writer.settle();
  await writer.publishAggregate();

  const token = JSON.parse((await handler(fixture('manager-http-api-v2-login.json'))).body).data
    .token as string;
  const status = fixture('manager-http-api-v2-getstatus.json');
  const listed = await handler({ ...status, headers: { ...status.headers, token } });
  assert.equal(listed.statusCode, 200);
  const page = JSON.parse(listed.body).data;
  assert.deepEqual(
    [page.total, page.page_size, page.items[0].agent_id, page.items[0].status],
    [1, 10, 'lambda-agent', 'running'],
  );

  const anonymous = await handler(status);
  assert.equal(anonymous.statusCode, 401);

  const rawBody = JSON.stringify({ id_list: ['lambda-agent'] });
  const signed = signRequest({
    method: 'POST',
    path: '/api/v1/agent/queryInfo',
    query: '',
    body: rawBody,
    ak: AK,
    sk: SK,
  });
  const callback: LambdaHttpEvent = {
    ...status,
    rawPath: '/api/v1/agent/queryInfo',
    rawQueryString: '',
    body: rawBody,
    headers: {
      ...status.headers,
      'content-type': 'application/json',
      ...Object.fromEntries(Object.entries(signed).map(([k, v]) => [k.toLowerCase(), v])),
    },
    requestContext: {
      ...status.requestContext,
      http: { ...status.requestContext!.http, method: 'POST', path: '/api/v1/agent/queryInfo' },
    },
  };
  const info = await handler(callback);
  assert.equal(info.statusCode, 200);
  assert.deepEqual(JSON.parse(info.body).data, {
    'lambda-agent': { tags: '', psm_name: '', psm_path: '', enhanced: 'false' },
  });
  // The same signature again: refused (replay cache, per container).
  assert.equal((await handler(callback)).statusCode, 401);
  await writer.close();
});
