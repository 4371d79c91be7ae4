/**
 * The `/command/batch` contract (gateway/control/command-batch-contract.ts) on the wire: the
 * manager's gateway client against the real control API of a real gateway (its answer parses
 * to typed results), and against an HTTP server answering malformed bodies, which the client
 * refuses with an error that says what was wrong instead of passing an unknown result on.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { BATCH_RESULTS, type CommandBatchRequest } from '../../gateway/control/command-batch-contract.js';
import { createGatewayClient, GatewayCallError } from '../../manager/tasks/gateway-client.js';
import { CONTROL_AK, CONTROL_SK, startTestControlApi, startTestGateway } from '../helpers/gateway.js';

const ctrl = { agent_ctrl: 1 };

test('the real control API answers typed results the manager client reads', async (t) => {
  const g = await startTestGateway(t);
  const api = await startTestControlApi(g);
  t.after(() => api.close());
  const send = createGatewayClient({ aksk: [[CONTROL_AK, CONTROL_SK]] });
  const results = await send(`127.0.0.1:${api.port}`, {
    agentIds: ['nobody-1', 'nobody-2'],
    command: { task: { name: 'collector', data: '', data_type: 5000 } },
  });
  assert.deepEqual(
    [...results],
    [
      ['nobody-1', 'not_connected'],
      ['nobody-2', 'not_connected'],
    ],
  );
  for (const r of results.values()) assert.ok((BATCH_RESULTS as readonly string[]).includes(r));
});

/** An HTTP server answering every request with `answers[i]` (status, body) in turn; records the requests. */
async function fakeGateway(t: import('node:test').TestContext, answers: Array<[number, string]>) {
  const requests: Array<{ path: string; body: CommandBatchRequest }> = [];
  let i = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      const [status, body] = answers[Math.min(i++, answers.length - 1)]!;
      res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { addr: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

test('a malformed batch answer is refused with an error naming the problem', async (t) => {
  const malformed: Array<[number, string, RegExp]> = [
    [
      200,
      '{"code":0,"msg":"","data":{"results":{"a1":"delivered!"}}}',
      /result of "a1" is "delivered!", not one/,
    ],
    [200, '{"code":0,"msg":"","data":{"results":{"a1":7}}}', /result of "a1" is 7, not one/],
    [
      200,
      '{"code":0,"msg":"","data":{"results":["a1","sent"]}}',
      /malformed batch answer: no results object/,
    ],
    [200, '{"code":0,"msg":"","data":{}}', /malformed batch answer: no results object/],
    [200, '[1,2]', /HTTP 200 code undefined/],
    [200, '<html>', /HTTP 200, not JSON/],
    [401, '{"code":1,"msg":"signature refused"}', /HTTP 401 code 1 signature refused/],
  ];
  const gw = await fakeGateway(
    t,
    malformed.map(([status, body]) => [status, body]),
  );
  const send = createGatewayClient({ aksk: [[CONTROL_AK, CONTROL_SK]] });
  for (const [, body, message] of malformed) {
    await assert.rejects(
      send(gw.addr, {
        agentIds: ['a1'],
        command: ctrl,
        tokens: { a1: 't' },
        fence: { key: 'k', version: 2 },
      }),
      (err: unknown) => err instanceof GatewayCallError && message.test(err.message),
      `answer ${body}`,
    );
  }
  // What went out is the contract's request body.
  const first = gw.requests[0]!;
  assert.equal(first.path, '/command/batch');
  assert.deepEqual(first.body.agent_ids, ['a1']);
  assert.deepEqual(first.body.tokens, { a1: 't' });
  assert.deepEqual(first.body.fence, { key: 'k', version: 2 });
  assert.equal(typeof first.body.request_id, 'string');
});

test('a well-formed answer from any server parses to the contract results', async (t) => {
  const gw = await fakeGateway(t, [
    [200, '{"code":0,"msg":"","data":{"results":{"a1":"sent","a2":"fenced","a3":"duplicate"},"counts":{}}}'],
  ]);
  const send = createGatewayClient({ aksk: [[CONTROL_AK, CONTROL_SK]] });
  const results = await send(gw.addr, { agentIds: ['a1', 'a2', 'a3'], command: ctrl });
  assert.deepEqual(Object.fromEntries(results), { a1: 'sent', a2: 'fenced', a3: 'duplicate' });
});
