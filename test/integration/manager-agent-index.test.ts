/**
 * `GET /api/fleet/agents` (the console's agents table) through a real manager over dynalite:
 * paging without overlap, sorting both ways, each filter, statuses from the gateways'
 * aggregates, a tag change seen with `fresh=1`, and refusals of bad parameters.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { batchWriteAll } from '../../platform/store/batch-write.js';
import { FLEET_SCOPE } from '../../platform/store/fleet-items.js';
import { tableName } from '../../platform/store/schema.js';
import { startTestManager } from '../helpers/manager-harness.js';

const LIVE = '10.0.0.1:6751';
const DEAD = '10.0.0.2:6751';

test('the agents table: paging, sorting, filters, statuses, fresh index, refusals', async (t) => {
  const m = await startTestManager(t, { api: { consoleDir: false } });
  const doc = DynamoDBDocumentClient.from(m.db.client);
  const nowS = Math.floor(Date.now() / 1000);
  const items = Array.from({ length: 30 }, (_, i) => {
    const gateway = i < 20 ? LIVE : DEAD;
    return {
      PutRequest: {
        Item: {
          agentId: `idx-agent-${String(i).padStart(2, '0')}`,
          gateway,
          lastGateway: gateway,
          online: true,
          hbAt: nowS - i,
          hostname: `host-${String(29 - i).padStart(2, '0')}.example`,
          version: i % 3 === 0 ? '1.9.1.3' : '1.9.1.4',
          platform: 'debian',
          ipv4: [`10.1.0.${i}`],
        },
      },
    };
  });
  await batchWriteAll(doc, tableName(m.db.prefix, 'agents'), items, 'test agents');
  for (const [id, age] of [
    [LIVE, 0],
    [DEAD, 10 * 60_000],
  ] as const) {
    await doc.send(
      new PutCommand({
        TableName: tableName(m.db.prefix, 'configs'),
        Item: {
          scope: FLEET_SCOPE.gateway,
          name: id,
          gatewayId: id,
          updatedAtMs: Date.now() - age,
          connected: 1,
        },
      }),
    );
  }
  const viewer = await m.user('ivy', 'viewer');
  const list = async (query: string) => {
    const r = await m.call('GET', `/api/fleet/agents?${query}`, { token: viewer });
    assert.equal(r.status, 200, r.text);
    return r.json as { total: number; items: Array<Record<string, unknown>>; indexed: number };
  };

  const all = await list('');
  assert.equal(all.total, 30);
  assert.equal(all.indexed, 30);
  assert.deepEqual(
    all.items.map((a) => a.agent_id),
    items.map((i) => i.PutRequest.Item.agentId),
  );
  assert.deepEqual(all.items[0], {
    agent_id: 'idx-agent-00',
    hostname: 'host-29.example',
    ips: ['10.1.0.0'],
    status: 'running',
    version: '1.9.1.3',
    platform: 'debian',
    gateway: LIVE,
    tags: [],
    last_heartbeat_time: nowS,
  });

  // Pages of 7: five pages, the last of two, together every agent once.
  const seen: unknown[] = [];
  for (let p = 1; p <= 5; p++)
    seen.push(...(await list(`page=${p}&page_size=7`)).items.map((a) => a.agent_id));
  assert.equal(seen.length, 30);
  assert.equal(new Set(seen).size, 30);

  const byHost = await list('sort=hostname&order=desc&page_size=3');
  assert.deepEqual(
    byHost.items.map((a) => a.hostname),
    ['host-29.example', 'host-28.example', 'host-27.example'],
  );
  const oldestHeartbeat = await list('sort=last_heartbeat_time&order=asc&page_size=1');
  assert.equal(oldestHeartbeat.items[0]!.agent_id, 'idx-agent-29');

  // Statuses: the dead gateway's agents are offline.
  assert.equal((await list('status=offline')).total, 10);
  assert.equal((await list('status=running')).total, 20);
  assert.equal((await list(`gateway=${encodeURIComponent(DEAD)}`)).total, 10);
  assert.equal((await list('version=1.9.1.3')).total, 10);
  assert.deepEqual(
    (await list('ip=10.1.0.2')).items.map((a) => a.agent_id),
    [
      'idx-agent-02',
      'idx-agent-20',
      'idx-agent-21',
      'idx-agent-22',
      'idx-agent-23',
      'idx-agent-24',
      'idx-agent-25',
      'idx-agent-26',
      'idx-agent-27',
      'idx-agent-28',
      'idx-agent-29',
    ],
  );
  assert.equal((await list('id=AGENT-1')).total, 10, 'substring, case-insensitive');
  assert.equal((await list('hostname=host-0')).total, 10);

  // A tag change shows once the index is rebuilt (fresh=1 waits for it).
  const op = await m.user('otto', 'operator');
  const tagged = await m.call('POST', '/api/v1/addTags', {
    token: op,
    body: { tag: 'canary', id_list: ['idx-agent-03', 'idx-agent-04'] },
  });
  assert.equal(tagged.json.code, 0);
  const canary = await list('tag=canary&fresh=1');
  assert.deepEqual(
    canary.items.map((a) => [a.agent_id, a.tags]),
    [
      ['idx-agent-03', ['canary']],
      ['idx-agent-04', ['canary']],
    ],
  );

  for (const bad of ['sort=ips', 'order=up', 'page=0', 'page_size=-1', `id=${'x'.repeat(129)}`]) {
    const r = await m.call('GET', `/api/fleet/agents?${bad}`, { token: viewer });
    assert.equal(r.status, 400, bad);
    assert.equal(r.json.error, 'invalid_parameter', bad);
  }
  assert.equal((await m.call('GET', '/api/fleet/agents')).status, 401);
});
