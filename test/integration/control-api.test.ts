/**
 * The AgentCenter control API (Elkeid §2.12) over a real uWS listener, driven with signed
 * requests exactly as Elkeid's Manager signs them, against real agents on the gRPC port.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TransferStream } from '../../loadtest/agent/raw-agent.js';
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
  const api = await startTestControlApi(g);
  t.after(() => api.close());
  const base = `http://127.0.0.1:${api.port}`;
  const call = async (method: 'GET' | 'POST', pathAndQuery: string, body?: unknown, sign = true) => {
    const [path, query = ''] = pathAndQuery.split('?') as [string, string?];
    const raw = body === undefined ? '' : JSON.stringify(body);
    const headers: Record<string, string> = sign
      ? signRequest({ method, path, query, body: raw, ak: AK, sk: SK })
      : {};
    const res = await fetch(base + pathAndQuery, { method, headers, ...(raw ? { body: raw } : {}) });
    return { status: res.status, json: (await res.json()) as { code: number; msg: string; data: unknown } };
  };
  return { g, base, call };
}

async function agent(g: TestGateway, id: string): Promise<TransferStream> {
  return (await heartbeatAgent(g, id, { cpu: '0.25000000', state: 'running' })).s;
}

test('ping, healthz, readyz and metrics answer without auth', async (t) => {
  const { base } = await setup(t);
  assert.deepEqual(await (await fetch(`${base}/ping`)).json(), { message: 'pong' });
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /elkeid_ac_grpc_conn_count/);
});

test('conn list, count and stat show connected agents with their heartbeat', async (t) => {
  const { g, call } = await setup(t);
  await agent(g, 'a1');
  await agent(g, 'a2');
  const list = await call('GET', '/conn/list');
  assert.equal(list.json.code, 0);
  assert.deepEqual((list.json.data as string[]).sort(), ['a1', 'a2']);
  assert.equal((await call('GET', '/conn/count')).json.data, 2);
  const stat = (await call('GET', '/conn/stat')).json.data as Array<{ agent_info: Record<string, unknown> }>;
  const a1 = stat.find((s) => s.agent_info.agent_id === 'a1');
  assert.ok(a1);
  assert.equal(a1.agent_info.cpu, 0.25);
  assert.equal(a1.agent_info.hostname, 'host-a1');
  assert.match(String(a1.agent_info.agent_addr), /^127\.0\.0\.1:\d+$/);
});

test('unsigned and badly signed requests get envelope code 1, as Elkeid AC answers', async (t) => {
  const { base, call } = await setup(t);
  const unsigned = await call('GET', '/conn/list', undefined, false);
  assert.equal(unsigned.status, 200);
  assert.deepEqual(unsigned.json, { code: 1, msg: 'auth failed', data: 'header missed: AccessKey' });
  const headers = signRequest({
    method: 'GET',
    path: '/conn/list',
    query: '',
    body: '',
    ak: AK,
    sk: 'wrong',
  });
  const bad = (await (await fetch(`${base}/conn/list`, { headers })).json()) as {
    code: number;
    data: string;
  };
  assert.equal(bad.code, 1);
  assert.equal(bad.data, 'signature error');
  // A replayed signature is refused.
  const good = signRequest({ method: 'GET', path: '/conn/count', query: '', body: '', ak: AK, sk: SK });
  assert.equal(
    ((await (await fetch(`${base}/conn/count`, { headers: good })).json()) as { code: number }).code,
    0,
  );
  const replay = (await (await fetch(`${base}/conn/count`, { headers: good })).json()) as {
    code: number;
    data: string;
  };
  assert.equal(replay.code, 1);
  assert.equal(replay.data, 'signature replayed');
});

test('POST /command and /command/ deliver a task; unknown agent is code 3; bad JSON is code 2', async (t) => {
  const { g, call } = await setup(t);
  const s = await agent(g, 'cmd-1');
  const task = { data_type: 1060, name: 'elkeid-agent', data: '{}', token: 'tok-9' };
  const r1 = await call('POST', '/command', { agent_id: 'cmd-1', command: { task } });
  assert.deepEqual(r1.json, { code: 0, msg: 'success', data: '' });
  const r2 = await call('POST', '/command/', {
    agent_id: 'cmd-1',
    command: {
      config: [
        {
          name: 'collector',
          type: 'exec',
          version: '1.0.0',
          sha256: 'ab',
          signature: 'ab',
          download_url: ['http://x/c'],
          detail: '',
        },
      ],
    },
  });
  assert.equal(r2.json.code, 0);
  await waitFor(() => s.commands.length === 2, 5000, 'two commands');
  assert.equal(s.commands[0]?.Task?.Token, 'tok-9');
  assert.equal(s.commands[0]?.Task?.DataType, 1060);
  assert.equal(s.commands[1]?.Task, null);
  assert.equal(s.commands[1]?.Config[0]?.Name, 'collector');
  assert.deepEqual(s.commands[1]?.Config[0]?.DownloadURL, ['http://x/c']);
  const missing = await call('POST', '/command', { agent_id: 'nobody', command: { task } });
  assert.deepEqual(missing.json, { code: 3, msg: 'some errors occurred', data: 'agentID not found' });
  assert.equal((await call('POST', '/command', { agent_id: 'cmd-1' })).json.code, 2);
  assert.equal(
    (await call('POST', '/command', { agent_id: 'cmd-1', command: { task: { data_type: 'x' } } })).json.code,
    2,
  );
});

test('POST /command/batch sends one command to many agents and reports each result', async (t) => {
  const { g, call } = await setup(t);
  const a = await agent(g, 'b1');
  const b = await agent(g, 'b2');
  const r = await call('POST', '/command/batch', {
    agent_ids: ['b1', 'b2', 'b3'],
    command: { task: { data_type: 1051, name: 'elkeid-agent', data: '{"idc":"x"}', token: 't' } },
  });
  assert.equal(r.json.code, 0);
  assert.deepEqual(r.json.data, {
    results: { b1: 'sent', b2: 'sent', b3: 'not_connected' },
    counts: { sent: 2, not_connected: 1 },
  });
  await waitFor(() => a.commands.length === 1 && b.commands.length === 1, 5000, 'batch commands');
});

test('POST /conn/reset strict and random close agent streams', async (t) => {
  const { g, call } = await setup(t);
  const s1 = await agent(g, 'r1');
  await agent(g, 'r2');
  await agent(g, 'r3');
  const strict = await call('POST', '/conn/reset', { type: 'strict', id_list: ['r1', 'zz'] });
  // Elkeid's count is the length of the id list, found or not.
  assert.deepEqual(strict.json.data, { count: 2, detail: { r1: 'ok', zz: 'agentID not found' } });
  const status = await s1.status;
  assert.equal(status.code, 0, 'server-initiated close ends with OK as in Elkeid');
  const random = await call('POST', '/conn/reset', { type: 'random', count: 1 });
  assert.equal((random.json.data as { count: number }).count, 1);
  await waitFor(() => g.gateway.sessions.size === 1, 5000, 'one agent left');
  assert.equal((await call('POST', '/conn/reset', { type: 'other' })).json.code, 2);
  assert.equal((await call('POST', '/conn/reset', {})).json.code, 2);
});
