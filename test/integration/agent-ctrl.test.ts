/**
 * agent_ctrl against a stock agent (loadtest/goagent): its Command has no AgentCtrl field, so a
 * Command carrying only AgentCtrl reads as an empty plugin config and uninstalls every plugin.
 * No layer may send one: the control API maps agent_ctrl 1060 to the agent's restart task and
 * refuses other values, the session registry refuses empty commands, the manager refuses at
 * creation.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { signRequest } from '../../platform/http/aksk.js';
import {
  CONTROL_AK,
  CONTROL_SK,
  startTestControlApi,
  startTestGateway,
  waitFor,
} from '../helpers/gateway.js';
import { startGoAgent } from '../helpers/goagent.js';
import { startTestManager } from '../helpers/manager-harness.js';
import { sleep } from '../helpers/time.js';

async function postCommand(
  port: number,
  body: unknown,
): Promise<{ code: number; msg: string; data: unknown }> {
  const raw = Buffer.from(JSON.stringify(body));
  const path = '/command';
  const headers = signRequest({
    ak: CONTROL_AK,
    sk: CONTROL_SK,
    method: 'POST',
    path,
    query: '',
    body: raw.toString(),
  });
  const r = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: raw,
  });
  return (await r.json()) as { code: number; msg: string; data: unknown };
}

test('control API: agent_ctrl alone never reaches the agent as an empty command', async (t) => {
  const g = await startTestGateway(t);
  const api = await startTestControlApi(g);
  t.after(() => api.close());
  const id = 'go-ctrl-1';
  const a = startGoAgent(t, { address: g.address, tls: g.tls, id, args: ['-plugins', 'collector'] });
  await waitFor(() => g.gateway.sessions.get(id)?.detail !== undefined, 15_000, 'heartbeat');

  const refused = await postCommand(api.port, { agent_id: id, command: { agent_ctrl: 7 } });
  assert.equal(refused.code, 2);
  assert.match(String(refused.data), /not understood by stock Elkeid agents.*1060/);
  assert.equal(await g.gateway.sessions.send(id, { AgentCtrl: 7 }), 'empty_command');
  const none = await postCommand(api.port, { agent_id: id, command: {} });
  assert.equal(none.code, 2);
  await sleep(300);
  assert.deepEqual(a.seen('config'), [], 'the agent got no (empty) config');

  // 1060 is the agent's own restart task.
  const ok = await postCommand(api.port, { agent_id: id, command: { agent_ctrl: 1060 } });
  assert.equal(ok.code, 0, String(ok.data));
  await a.waitEvent('shutdown');
  const task = a.seen('task')[0]!;
  assert.deepEqual([task.name, task.data_type], ['elkeid-agent', 1060]);
  assert.deepEqual(a.seen('config'), []);
});

test('manager: an Agent_Ctrl task the agent cannot run is refused at creation', async (t) => {
  const m = await startTestManager(t);
  const op = await m.user('op', 'operator');
  const bad = await m.call('POST', '/api/v1/agent/createTask/ctrl', {
    token: op,
    body: { id_list: ['agent-x'], data: { agent_ctrl: 7 } },
  });
  assert.notEqual(bad.json.code, 0);
  assert.match(bad.text, /not understood by stock Elkeid agents/);
  const good = await m.call('POST', '/api/v1/agent/createTask/ctrl', {
    token: op,
    body: { id_list: ['agent-x'], data: { agent_ctrl: 1060 } },
  });
  assert.equal(good.json.code, 0, good.text);
});
