/**
 * The delivery guard behind `/command/batch` (gateway/control/delivery-guard.ts), over the real
 * control API and real agents: per-agent tokens, fences refused below the highest seen, a token
 * never written twice to the same stream, never re-sent once answered, and sent again to a new
 * stream of the agent.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeItem } from '../../gateway/agent/item.js';
import { signRequest } from '../../platform/http/aksk.js';
import {
  CONTROL_AK as AK,
  heartbeatAgent,
  CONTROL_SK as SK,
  startTestControlApi,
  startTestGateway,
  type TestGateway,
  waitFor,
} from '../helpers/gateway.js';

async function setup(t: import('node:test').TestContext) {
  const g = await startTestGateway(t);
  const api = await startTestControlApi(g, { guard: true });
  t.after(() => api.close());
  let n = 0;
  const batch = async (body: Record<string, unknown>) => {
    // A nonce per body, as the manager sends: the verifier refuses a replayed signature.
    const raw = JSON.stringify({ ...body, request_id: `r${++n}` });
    const headers = signRequest({
      method: 'POST',
      path: '/command/batch',
      query: '',
      body: raw,
      ak: AK,
      sk: SK,
    });
    const res = await fetch(`http://127.0.0.1:${api.port}/command/batch`, {
      method: 'POST',
      headers,
      body: raw,
    });
    const json = (await res.json()) as { code: number; data: { results: Record<string, string> } };
    assert.equal(json.code, 0);
    return json.data.results;
  };
  return { g, batch };
}

const agent = (g: TestGateway, id: string) => heartbeatAgent(g, id, { state: 'running' });

const task = { task: { name: 'collector', data: '{}', data_type: 5000 } };

test('tokens per agent; a lower fence is refused; a token is not written twice to one stream', async (t) => {
  const { g, batch } = await setup(t);
  const a = await agent(g, 'g1');
  const b = await agent(g, 'g2');
  const tokens = { g1: 'aaaaaaaaaaaaaaaaaaa1', g2: 'aaaaaaaaaaaaaaaaaaa2' };
  assert.deepEqual(
    await batch({ agent_ids: ['g1', 'g2'], command: task, tokens, fence: { key: 'task/h#0', version: 2 } }),
    { g1: 'sent', g2: 'sent' },
  );
  await waitFor(() => a.s.commands.length === 1 && b.s.commands.length === 1, 5000, 'commands');
  assert.equal(a.s.commands[0]!.Task?.Token, tokens.g1);
  assert.equal(b.s.commands[0]!.Task?.Token, tokens.g2);
  // A dispatcher that lost the chunk (fence 1 < 2): nothing is sent.
  assert.deepEqual(
    await batch({ agent_ids: ['g1', 'g2'], command: task, tokens, fence: { key: 'task/h#0', version: 1 } }),
    { g1: 'fenced', g2: 'fenced' },
  );
  // The new holder (fence 3) re-sends: the same streams already have those tokens.
  assert.deepEqual(
    await batch({ agent_ids: ['g1', 'g2'], command: task, tokens, fence: { key: 'task/h#0', version: 3 } }),
    { g1: 'duplicate', g2: 'duplicate' },
  );
  // Concurrent batches with the same token: one write.
  const c = await agent(g, 'g3');
  const both = await Promise.all([
    batch({ agent_ids: ['g3'], command: task, tokens: { g3: 'aaaaaaaaaaaaaaaaaaa3' } }),
    batch({ agent_ids: ['g3'], command: task, tokens: { g3: 'aaaaaaaaaaaaaaaaaaa3' } }),
  ]);
  assert.deepEqual(both.map((r) => r.g3).sort(), ['duplicate', 'sent']);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(c.s.commands.length, 1);
  assert.equal(a.s.commands.length, 1);
});

test('an answered token is never re-sent; an unanswered one goes to a new stream of the agent', async (t) => {
  const { g, batch } = await setup(t);
  const first = await agent(g, 'h1');
  const token = 'bbbbbbbbbbbbbbbbbbb1';
  assert.deepEqual(await batch({ agent_ids: ['h1'], command: task, tokens: { h1: token } }), { h1: 'sent' });
  await waitFor(() => first.s.commands.length === 1, 5000, 'command');
  // The agent reconnects (the old stream may have lost the command): sent again.
  first.close();
  await waitFor(() => g.gateway.sessions.get('h1') === undefined, 5000, 'old stream gone');
  const second = await agent(g, 'h1');
  assert.deepEqual(await batch({ agent_ids: ['h1'], command: task, tokens: { h1: token } }), { h1: 'sent' });
  await waitFor(() => second.s.commands.length === 1, 5000, 'command on the new stream');
  // It answers: from now on the token is refused even on yet another stream.
  second.s.send({
    AgentID: 'h1',
    Data: [{ DataType: 2001, Timestamp: 2, Body: encodeItem({ token, status: 'succeed', msg: '' }) }],
  });
  await waitFor(() => g.gateway.guard.answered('h1', token), 5000, 'the answer seen');
  second.close();
  await waitFor(() => g.gateway.sessions.get('h1') === undefined, 5000, 'second stream gone');
  const third = await agent(g, 'h1');
  assert.deepEqual(await batch({ agent_ids: ['h1'], command: task, tokens: { h1: token } }), {
    h1: 'duplicate',
  });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(third.s.commands.length, 0);
});
