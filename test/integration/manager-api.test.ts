/**
 * The Elkeid-compatible v1 endpoints and our own API over a running manager and a real dynalite:
 * tags (by ID, by address, by filter; queryInfo signed by a gateway), the default / per-tag /
 * per-agent config merge, agent status and listings (paging caps, filter JSON) from items a
 * HeartbeatWriter wrote, load-control settings, and the audit trail of every change.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHeartbeatWriter } from '../../manager/agent-status-writer.js';
import { createStoreConfigSource } from '../../manager/configs.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { FakeRegistry, FakeSession, startTestManager, type TestManager } from '../helpers/manager-harness.js';

const sha = (c: string) => c.repeat(64);
const plugin = (name: string, version: string, c = 'a') => ({
  name,
  version,
  type: 'tar.gz',
  sha256: sha(c),
  signature: '',
  download_url: [`https://downloads.example/${name}-${version}.tar.gz`],
  detail: '',
});

async function fleet(m: TestManager, n: number, gatewayId = 'gw-a:6751') {
  const reg = new FakeRegistry();
  const writer = createHeartbeatWriter({
    client: m.db.client,
    tablePrefix: m.db.prefix,
    gatewayId,
    controlAddr: 'gw-a:6752',
    sessions: reg,
    logger: silentLogger(),
  });
  const sessions: FakeSession[] = [];
  for (let i = 0; i < n; i++) {
    const s = reg.add(
      new FakeSession(`agent-${String(i).padStart(3, '0')}`, {
        ip: `10.0.0.${i + 1}`,
        version: i % 2 ? '1.9.1.4' : '1.8.0.0',
      }),
    );
    s.heartbeat({ idc: i < 3 ? 'east' : 'west' });
    sessions.push(s);
  }
  writer.sweep();
  await writer.settle();
  await writer.publishAggregate();
  return { reg, writer, sessions };
}

test('tags: add by ID and by address, queryInfo for gateways (AK/SK), getTags, delTags, by filter', async (t) => {
  const m = await startTestManager(t);
  await fleet(m, 6);
  const op = await m.user('op', 'operator');
  const add = await m.call('POST', '/api/v1/addTags', {
    token: op,
    body: { tag: 'web', id_list: ['agent-000', 'agent-001'], ipv4_list: ['10.0.0.3'] },
  });
  assert.deepEqual(add.json, { code: 0, msg: 'success', data: null });
  await m.call('POST', '/api/v1/addTags', { token: op, body: { tag: 'prod', id_list: ['agent-001'] } });
  const info = await m.call('POST', '/api/v1/agent/queryInfo', {
    sign: true,
    body: { id_list: ['agent-001', 'agent-002', 'agent-005'] },
  });
  assert.deepEqual(info.json.data, {
    'agent-001': { tags: 'prod,web', psm_name: '', psm_path: '', enhanced: 'false' },
    'agent-002': { tags: 'web', psm_name: '', psm_path: '', enhanced: 'false' },
    'agent-005': { tags: '', psm_name: '', psm_path: '', enhanced: 'false' },
  });
  assert.equal(
    (await m.call('POST', '/api/v1/agent/queryInfo', { body: { id_list: [] } })).status,
    401,
    'unsigned',
  );
  assert.deepEqual((await m.call('GET', '/api/v1/getTags', { token: op })).json.data, ['prod', 'web']);
  assert.deepEqual(
    (await m.call('POST', '/api/v1/getTags', { token: op, body: { id_list: ['agent-000', 'agent-004'] } }))
      .json.data,
    {
      'agent-000': 'web',
      'agent-004': '',
    },
  );
  await m.call('POST', '/api/v1/delTags', { token: op, body: { tag: 'prod', id_list: ['agent-001'] } });
  assert.deepEqual((await m.call('GET', '/api/v1/getTags', { token: op })).json.data, ['web']);
  const byFilter = await m.call('POST', '/api/v1/addTags/filter?tag=east', {
    token: op,
    body: { filter: [{ key: 'idc', rules: [{ operator: '$eq', value: 'east' }] }], condition: '$and' },
  });
  assert.deepEqual(byFilter.json.data, { count: 3 });
  const stats = await m.call('GET', '/api/fleet/stats', { token: op });
  assert.deepEqual(
    stats.json.by_tag.east,
    { members: 3, online: 0 },
    'online per tag follows the next gateway refresh',
  );
  assert.equal(
    (await m.call('POST', '/api/v1/addTags', { token: op, body: { tag: 'a,b', id_list: ['x'] } })).json.code,
    5,
  );
});

test('configs: default, per-tag and per-agent overrides merged (§4.5); getConfig and the gateway config source agree', async (t) => {
  const m = await startTestManager(t);
  const op = await m.user('op', 'operator');
  const viewer = await m.user('vi', 'viewer');
  assert.deepEqual((await m.call('GET', '/api/v1/agent/getDefaultConfig', { token: viewer })).json.data, []);
  const fresh = createStoreConfigSource({ client: m.db.client, tablePrefix: m.db.prefix, cacheMs: 0 });
  assert.equal(await fresh.configFor({ agent_id: 'agent-1' }), undefined, 'nothing configured: push nothing');

  const upd = await m.call('POST', '/api/v1/agent/updateDefaultConfig', {
    token: op,
    body: { type: 'agent_config', config: [plugin('driver', '1.0.0'), plugin('collector', '1.0.0')] },
  });
  assert.equal(upd.json.code, 0);
  assert.equal(
    (await m.call('POST', '/api/v1/agent/updateDefaultConfig', { token: viewer, body: { config: [] } }))
      .status,
    403,
  );
  const bad = await m.call('POST', '/api/v1/agent/updateDefaultConfig', {
    token: op,
    body: { config: [{ name: '../x', version: '1' }] },
  });
  assert.equal(bad.json.code, 5);

  await m.call('POST', '/api/v1/addTags', { token: op, body: { tag: 'canary', id_list: ['agent-1'] } });
  const tagPut = await m.call('PUT', '/api/fleet/configs/tags/canary', {
    token: op,
    body: { config: [{ name: 'driver', version: '2.0.0', sha256: sha('b') }, { name: 'collector' }] },
  });
  assert.equal(tagPut.status, 200);
  await m.call('PUT', '/api/fleet/configs/agents/agent-1', {
    token: op,
    body: { config: [plugin('scanner', '3.0.0', 'c')] },
  });

  const eff = (await m.call('GET', '/api/v1/agent/getConfig/agent-1', { sign: true })).json.data as Array<
    Record<string, unknown>
  >;
  assert.deepEqual(
    eff.map((c) => [c.name, c.version, String(c.sha256)[0]]),
    [
      ['driver', '2.0.0', 'b'],
      ['scanner', '3.0.0', 'c'],
    ],
  );
  const other = (await m.call('GET', '/api/v1/agent/getConfig/agent-2', { token: viewer })).json
    .data as Array<Record<string, unknown>>;
  assert.deepEqual(
    other.map((c) => [c.name, c.version]),
    [
      ['driver', '1.0.0'],
      ['collector', '1.0.0'],
    ],
  );
  const pushed = await m.role.configSource.configFor({ agent_id: 'agent-1' });
  assert.deepEqual(
    pushed?.map((c) => [c.Name, c.Version, c.DownloadURL?.[0]]),
    [
      ['driver', '2.0.0', 'https://downloads.example/driver-1.0.0.tar.gz'],
      ['scanner', '3.0.0', 'https://downloads.example/scanner-3.0.0.tar.gz'],
    ],
  );
  const clean = await m.call('GET', '/api/fleet/agents/agent-1/config', { token: viewer });
  assert.deepEqual(clean.json.scopes, ['default', 'tag#canary', 'agent#agent-1']);
  assert.equal((await m.call('DELETE', '/api/fleet/configs/agents/agent-1', { token: op })).status, 200);
  const after = (await m.call('GET', '/api/v1/agent/getConfig/agent-1', { token: viewer })).json
    .data as Array<Record<string, unknown>>;
  assert.deepEqual(
    after.map((c) => c.name),
    ['driver'],
  );
});

test('getStatus: list (paged, capped), by id, filter JSON; statuses from the gateway aggregate', async (t) => {
  const m = await startTestManager(t);
  const { reg, writer, sessions } = await fleet(m, 12);
  const v = await m.user('vi', 'viewer');
  const list = await m.call('GET', '/api/v1/agent/getStatus?page=2&page_size=5', { token: v });
  assert.equal(list.json.code, 0);
  const page = list.json.data;
  assert.deepEqual(
    [page.total, page.count, page.pages, page.page, page.page_size, page.has_prev, page.has_next],
    [12, 5, 3, 2, 5, true, true],
  );
  const capped = await m.call('GET', '/api/v1/agent/getStatus?page_size=100000', { token: v });
  assert.equal(capped.json.data.page_size, 5000);
  assert.equal(capped.json.data.count, 12);

  const one = (await m.call('GET', '/api/v1/agent/getStatus/agent-004', { token: v })).json.data;
  assert.equal(one.agent_id, 'agent-004');
  assert.equal(one.status, 'running');
  assert.equal(one.hostname, 'host-agent-004');
  assert.equal(one.platform, 'debian');
  assert.deepEqual(one.intranet_ipv4, ['10.0.0.5']);
  assert.equal(one.source_ip, 'gw-a');
  assert.equal((await m.call('GET', '/api/v1/agent/getStatus/nope', { token: v })).json.code, 6);

  // Abnormal heartbeat, a disconnect: both written within a sweep.
  sessions[1]!.heartbeat({ state: 'abnormal', state_detail: 'plugin crashed' });
  reg.remove(sessions[2]!);
  writer.sweep();
  await writer.settle();
  const filtered = await m.call(
    'POST',
    '/api/v1/agent/getStatus/filter?page_size=50&order_key=agent_id&order_value=-1',
    {
      token: v,
      body: {
        filter: [
          { key: 'status', rules: [{ operator: '$in', value: ['abnormal', 'offline'] }], condition: '$and' },
        ],
        condition: '$and',
      },
    },
  );
  assert.deepEqual(
    filtered.json.data.items.map((d: Record<string, unknown>) => [d.agent_id, d.status]),
    [
      ['agent-002', 'offline'],
      ['agent-001', 'abnormal'],
    ],
  );
  const byVersion = await m.call('POST', '/api/v1/agent/getStatus/filter', {
    token: v,
    body: {
      filter: [
        { key: 'version', rules: [{ operator: '$eq', value: '1.9.1.4' }], condition: '$and' },
        {
          key: 'intranet_ipv4',
          rules: [{ operator: '$regex', value: '^10\\.0\\.0\\.(2|4)$' }],
          condition: '$and',
        },
      ],
      condition: '$and',
    },
  });
  assert.deepEqual(byVersion.json.data.items.map((d: Record<string, unknown>) => d.agent_id).sort(), [
    'agent-001',
    'agent-003',
  ]);
  const badFilter = await m.call('POST', '/api/v1/agent/getStatus/filter', {
    token: v,
    body: { filter: [{ key: 'x', rules: [{ operator: '$where', value: 1 }] }] },
  });
  assert.equal(badFilter.json.code, 5);

  // Statistics follow the aggregate; a gateway that stops publishing takes its agents offline.
  await writer.publishAggregate();
  const stats = (await m.call('GET', '/api/fleet/stats', { token: v })).json;
  assert.deepEqual(
    [stats.total, stats.online, stats.running, stats.abnormal, stats.offline],
    [12, 11, 10, 1, 1],
  );
  assert.deepEqual(stats.by_version, { '1.8.0.0': 5, '1.9.1.4': 6 });
  assert.deepEqual(stats.by_platform, { debian: 11 });
  assert.deepEqual(stats.gateways['gw-a:6751'], {
    connected: 11,
    online: 11,
    alive: true,
    updated_at: stats.gateways['gw-a:6751'].updated_at,
  });
  await writer.close();
  const gone = (await m.call('GET', '/api/v1/agent/getStatus/agent-004', { token: v })).json.data;
  assert.equal(gone.status, 'offline');
  const statsAfter = (await m.call('GET', '/api/fleet/stats', { token: v })).json;
  assert.deepEqual([statsAfter.total, statsAfter.online, statsAfter.offline], [12, 0, 12]);
});

test('load control settings: desired limit per gateway stored, listed, cleared, expiring', async (t) => {
  const m = await startTestManager(t);
  await fleet(m, 2);
  const op = await m.user('op', 'operator');
  assert.deepEqual((await m.call('GET', '/api/fleet/gateways/gw-a:6751/limit', { token: op })).json, {
    gateway: 'gw-a:6751',
    limit: null,
    updated_at: null,
    expires_at: null,
    updated_by: null,
    enforced: true,
  });
  const put = await m.call('PUT', '/api/fleet/gateways/gw-a:6751/limit', {
    token: op,
    body: { limit: 1500 },
  });
  assert.equal(put.json.limit, 1500);
  assert.equal(put.json.updated_by, 'user:op');
  assert.equal(
    (await m.call('PUT', '/api/fleet/gateways/gw-a:6751/limit', { token: op, body: { limit: -1 } })).status,
    400,
  );
  const gws = (await m.call('GET', '/api/fleet/gateways', { token: op })).json.gateways;
  assert.deepEqual(
    gws.map((g: Record<string, unknown>) => [g.id, g.control_addr, g.connected, g.desired_limit, g.alive]),
    [['gw-a:6751', 'gw-a:6752', 2, 1500, true]],
  );
  assert.equal(
    (await m.call('DELETE', '/api/fleet/gateways/gw-a:6751/limit', { token: op })).json.limit,
    null,
  );
  // An expiring limit is shown with its expiry; once expired it is no limit.
  const timed = await m.call('PUT', '/api/fleet/gateways/gw-a:6751/limit', {
    token: op,
    body: { limit: 7, expires_in_s: 1 },
  });
  assert.equal(timed.json.limit, 7);
  assert.ok(timed.json.expires_at > Date.now());
  assert.equal(
    (
      await m.call('PUT', '/api/fleet/gateways/gw-a:6751/limit', {
        token: op,
        body: { limit: 7, expires_in_s: 0 },
      })
    ).status,
    400,
  );
  await new Promise((r) => setTimeout(r, 1100));
  assert.deepEqual(
    [(await m.call('GET', '/api/fleet/gateways/gw-a:6751/limit', { token: op })).json.limit],
    [null],
  );
});

test('audit: every state-changing call is recorded (who, what, which agents) and readable by admins only', async (t) => {
  const m = await startTestManager(t);
  const op = await m.user('op', 'operator');
  const root = m.token('root');
  await m.call('POST', '/api/v1/user/login', { body: { username: 'op', password: 'wrong-password' } });
  await m.call('POST', '/api/v1/addTags', { token: op, body: { tag: 'db', id_list: ['a1', 'a2'] } });
  await m.call('POST', '/api/v1/agent/updateDefaultConfig', {
    token: op,
    body: { config: [plugin('driver', '1.0.0')] },
  });
  await m.call('PUT', '/api/fleet/gateways/g1/limit', { token: op, body: { limit: 10 } });
  await m.call('POST', '/api/fleet/users', {
    token: root,
    body: { username: 'new', password: 'new-password-1', role: 'viewer' },
  });
  await m.call('GET', '/api/v1/getTags', { token: op }); // a read: not audited
  assert.equal((await m.call('GET', '/api/fleet/audit', { token: op })).status, 403);
  const log = (await m.call('GET', '/api/fleet/audit?limit=50', { token: root })).json.items as Array<
    Record<string, unknown>
  >;
  assert.deepEqual(
    log.map((e) => [e.actor, e.action, e.status]),
    [
      ['user:op', 'POST /api/v1/user/login', 200],
      ['user:op', 'POST /api/v1/addTags', 200],
      ['user:op', 'POST /api/v1/agent/updateDefaultConfig', 200],
      ['user:op', 'PUT /api/fleet/gateways/:id/limit', 200],
      ['user:root', 'POST /api/fleet/users', 201],
      // Refused role checks are recorded too: reads included.
      ['user:op', 'GET /api/fleet/audit', 403],
    ],
  );
  assert.equal(JSON.parse(String(log[0]!.detail)).result, 'failed');
  assert.equal(log[0]!.code, 1);
  assert.deepEqual([log[1]!.agents, log[1]!.agentCount, log[1]!.target], [['a1', 'a2'], 2, 'tag:db']);
  assert.match(String(log[1]!.bodySha256), /^[0-9a-f]{64}$/);
  assert.equal(log[1]!.role, 'operator');
  assert.equal(log[1]!.sourceIp, '127.0.0.1');
  assert.equal(JSON.stringify(log).includes('wrong-password'), false, 'no password in the log');
  const paged = (await m.call('GET', '/api/fleet/audit?limit=2', { token: root })).json;
  assert.equal(paged.items.length, 2);
  const next = (await m.call('GET', `/api/fleet/audit?limit=10&cursor=${paged.cursor}`, { token: root }))
    .json;
  assert.deepEqual(next.items[0].action, 'POST /api/v1/agent/updateDefaultConfig');
});
