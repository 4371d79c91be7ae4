/**
 * The heartbeat details every connected agent holds (gateway/agent/heartbeat.ts): what they
 * contain, that a hostile key stays data (docs/hardening.md §6), and that V8 keeps them compact
 * (fast properties, not a dictionary: ~0.4–0.9 KB against ~3.2 KB per agent heartbeat).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { agentDetail, pluginDetail } from '../../gateway/agent/heartbeat.js';
import { decodeItem, encodeItem } from '../../gateway/agent/item.js';

const header = {
  intranetIPv4: ['10.0.0.5'],
  extranetIPv4: [],
  intranetIPv6: [],
  extranetIPv6: [],
  hostname: 'web-1',
  version: '1.7.0.24',
  product: 'elkeid-agent',
};
const ctx = {
  agentId: 'a-1',
  peer: '10.0.0.5:4242',
  connectedAt: 1_700_000_000,
  header,
  nowSeconds: 1_700_000_060,
};

test('agentDetail: heartbeat fields converted and sorted, the header fields after them, a null prototype', () => {
  const d = agentDetail(
    decodeItem(
      encodeItem({ cpu: '0.25', nproc: '4', platform: 'debian', version: '9', host_serial: '0012' }),
    ),
    ctx,
  );
  assert.equal(Object.getPrototypeOf(d), null);
  // the heartbeat's keys sorted (one hidden class whatever order the agent sent them in), then
  // the header's; `version` keeps the heartbeat key's place with the header's value
  assert.deepEqual(Object.keys(d), [
    'cpu',
    'host_serial',
    'nproc',
    'platform',
    'version',
    'agent_id',
    'agent_addr',
    'create_at',
    'intranet_ipv4',
    'extranet_ipv4',
    'intranet_ipv6',
    'extranet_ipv6',
    'hostname',
    'product',
    'last_heartbeat_time',
  ]);
  assert.equal(d.cpu, 0.25);
  assert.equal(d.nproc, 4);
  assert.equal(d.host_serial, '0012'); // numeric-looking, kept as a string
  assert.equal(d.version, '1.7.0.24'); // the header's, not the heartbeat's
  assert.deepEqual(d.intranet_ipv4, ['10.0.0.5']);
  assert.equal(d.last_heartbeat_time, 1_700_000_060);
});

test('a heartbeat key such as __proto__ or constructor is data, never the prototype', () => {
  // JSON.parse makes `__proto__` an own key (an object literal would set the prototype instead)
  const fields = decodeItem(
    encodeItem(JSON.parse('{"__proto__": "x", "constructor": "7", "toString": "y"}')),
  );
  assert.ok(Object.hasOwn(fields, '__proto__'));
  for (const d of [agentDetail(fields, ctx), pluginDetail({ ...fields, name: 'driver' }, 1)!]) {
    assert.equal(Object.getPrototypeOf(d), null);
    assert.ok(Object.hasOwn(d, '__proto__'));
    assert.equal(Object.getOwnPropertyDescriptor(d, '__proto__')?.value, 'x'); // data, not the prototype
    assert.equal(d.constructor, 7);
    assert.equal(d.toString, 'y');
  }
  const none = agentDetail({}, ctx);
  assert.equal(none.constructor, undefined);
  assert.equal(none.hasOwnProperty, undefined);
});

test('pluginDetail: undefined without a name, pversion kept as a string', () => {
  assert.equal(pluginDetail({ pversion: '1.0' }, 1), undefined);
  const d = pluginDetail({ name: 'driver', pversion: '1.0', rss: '1024' }, 5)!;
  assert.deepEqual({ ...d }, { name: 'driver', pversion: '1.0', rss: 1024, last_heartbeat_time: 5 });
});

test("details have fast properties in V8, one hidden class whatever the fields' order", () => {
  const heartbeat = fileURLToPath(new URL('../../gateway/agent/heartbeat.ts', import.meta.url));
  const script = `
    const { agentDetail, pluginDetail } = await import(${JSON.stringify(heartbeat)});
    const fields = Object.create(null);
    for (let i = 0; i < 40; i++) fields['field_' + i] = String(i);
    const ctx = ${JSON.stringify(ctx)};
    const agent = agentDetail(fields, ctx);
    const plugin = pluginDetail({ ...fields, name: 'driver' }, 1);
    const reversed = Object.create(null);
    for (const k of Object.keys(fields).reverse()) reversed[k] = String(Number(fields[k]) + 1);
    const other = agentDetail(reversed, { ...ctx, agentId: 'a-2' });
    const dictionary = Object.create(null);
    for (const k of Object.keys(agent)) dictionary[k] = agent[k];
    console.log(JSON.stringify([
      %HasFastProperties(agent), %HasFastProperties(plugin), %HaveSameMap(agent, other),
      %HasFastProperties(dictionary),
    ]));
  `;
  const out = execFileSync(
    process.execPath,
    ['--allow-natives-syntax', '--import', 'tsx', '--input-type=module', '-e', script],
    { encoding: 'utf8', cwd: fileURLToPath(new URL('../..', import.meta.url)) },
  );
  // The last is the control: the object this replaced is a dictionary, so the check can fail.
  assert.deepEqual(JSON.parse(out), [true, true, true, false]);
});
