/**
 * `POST /api/v6/component/GetComponentInstances` (docs/elkeid-protocol.md §2.7, §4.4): what a stock
 * Elkeid AgentCenter asks the manager at an agent's first heartbeat, here AK/SK-signed. The
 * answer is the agent's effective config (default ⊕ tags ⊕ agent) without `detail`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { agentScope, tagScope } from '../../manager/configs.js';
import { startTestManager } from '../helpers/manager-harness.js';

const item = (name: string, version: string, detail = '') => ({
  name,
  type: 'tar.gz',
  signature: `sig-${name}`,
  version,
  sha256: 'b'.repeat(64),
  download_url: [`https://downloads.example/${name}-${version}.tar.gz`],
  detail,
});

const ASK = { agent_id: 'cmp-agent-1', kernel_version: '5.15.0', platform_family: 'debian', arch: 'x86_64' };

test('GetComponentInstances: the effective config for the AgentCenter, signed, without detail', async (t) => {
  const m = await startTestManager(t);
  const path = '/api/v6/component/GetComponentInstances';

  // Nothing configured: code 6, never an empty list (a stock AC would uninstall every plugin).
  const none = await m.call('POST', path, { sign: true, body: ASK });
  assert.equal(none.status, 200);
  assert.equal(none.json.code, 6, none.text);

  const { configs, tags } = m.role.api;
  await configs.replace(
    'default',
    [item('collector', '1.0.0.0', '{"x":1}'), item('driver', '1.0.0.0')],
    'test',
  );
  await configs.replace(tagScope('web'), [item('driver', '2.0.0.0')], 'test');
  await configs.replace(agentScope('cmp-agent-1'), [{ ...item('scanner', '3.0.0.0') }], 'test');
  await tags.add('web', ['cmp-agent-1'], 'test');

  const r = await m.call('POST', path, {
    sign: true,
    body: { ...ASK, hostname: 'h1', extra_field: 'kept out' },
  });
  assert.equal(r.status, 200);
  assert.deepEqual([r.json.code, r.json.msg], [0, 'success']);
  const byName = new Map((r.json.data as Array<Record<string, unknown>>).map((c) => [c.name, c]));
  assert.deepEqual([...byName.keys()].sort(), ['collector', 'driver', 'scanner']);
  assert.equal(byName.get('driver')!.version, '2.0.0.0', 'the tag override wins over the default');
  assert.deepEqual(byName.get('collector'), {
    name: 'collector',
    type: 'tar.gz',
    signature: 'sig-collector',
    version: '1.0.0.0',
    sha256: 'b'.repeat(64),
    download_url: ['https://downloads.example/collector-1.0.0.0.tar.gz'],
  });
  // Another agent (no tag, no override) gets the default.
  const other = await m.call('POST', path, { sign: true, body: { ...ASK, agent_id: 'cmp-agent-2' } });
  assert.deepEqual(
    (other.json.data as Array<{ name: string; version: string }>).map((c) => `${c.name}@${c.version}`).sort(),
    ['collector@1.0.0.0', 'driver@1.0.0.0'],
  );

  // Unsigned (Elkeid leaves it open): refused. A viewer may read it; bad bodies are code 5.
  const open = await m.call('POST', path, { body: ASK });
  assert.equal(open.status, 401);
  assert.equal(open.json.code, 1);
  const viewer = await m.user('v', 'viewer');
  assert.equal((await m.call('POST', path, { token: viewer, body: ASK })).json.code, 0);
  for (const bad of [{}, { agent_id: '' }, { agent_id: 7 }, { agent_id: 'x', arch: 64 }, []]) {
    const b = await m.call('POST', path, { sign: true, body: bad });
    assert.equal(b.json.code, 5, `${JSON.stringify(bad)}: ${b.text}`);
  }
});
