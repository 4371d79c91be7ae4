/**
 * `npm run bench:console`: how long the console's agents table takes to get a page of 100 rows
 * from the manager with N agents (default 10,000) on the embedded store (dynalite in this
 * process), through the manager's own handler (no network): `GET /api/fleet/agents` (the
 * console's, over the manager's agent index: the first request builds it, the next are served
 * from it) and, for contrast, Elkeid's v1 listings (a Scan each): the first page, a deep page, a
 * page sorted by host name, a page filtered by status. Prints the median
 * and the slowest of --runs runs each; the budget is 300 ms for a page of 100 rows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { Registry } from 'prom-client';
import { createManagerApi } from '../../manager/api.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { batchWriteAll } from '../../platform/store/batch-write.js';
import { createDynamoClient, ensureTables } from '../../platform/store/dynamo-client.js';
import { startEmbeddedDynamo } from '../../platform/store/embedded.js';
import { FLEET_SCOPE } from '../../platform/store/fleet-items.js';
import { tableName } from '../../platform/store/schema.js';

const HELP = `usage: npm run bench:console -- [--agents N] [--runs R]

Times the agents pages the operator console asks for (100 rows) with N agents (default 10000)
on the embedded store, through the manager's handler; R runs each (default 5).`;

const GATEWAY = '10.0.0.5:6751';

function agentItem(i: number, nowS: number): Record<string, unknown> {
  const id = `bench-agent-${String(i).padStart(6, '0')}`;
  const hb = {
    hostname: `node-${i}.prod.example.internal`,
    version: i % 10 === 0 ? '1.9.1.3' : '1.9.1.4',
    platform: 'debian',
    platform_version: '12',
    kernel_version: '6.1.0-18-amd64',
    arch: 'x86_64',
    cpu: '0.01',
    rss: '52000000',
    intranet_ipv4: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`],
  };
  return {
    agentId: id,
    gateway: GATEWAY,
    lastGateway: GATEWAY,
    online: true,
    conn: 1,
    state: i % 50 === 0 ? 'abnormal' : 'running',
    hbAt: nowS,
    firstSeenMs: nowS * 1000,
    connectedAtMs: nowS * 1000,
    hostname: hb.hostname,
    version: hb.version,
    platform: 'debian',
    ipv4: hb.intranet_ipv4,
    hb: JSON.stringify(hb),
    plugins: JSON.stringify([
      { name: 'collector', version: '1.0.0.1', status: 'running', cpu: 0.01, rss: 30_000_000 },
      { name: 'driver', version: '1.0.0.2', status: 'running', cpu: 0.02, rss: 20_000_000 },
    ]),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { agents: { type: 'string' }, runs: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const agents = Number(values.agents ?? 10_000);
  const runs = Number(values.runs ?? 5);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fg-bench-console-'));
  const dynamo = await startEmbeddedDynamo({ dir });
  const client = createDynamoClient({ endpoint: dynamo.endpoint });
  const prefix = 'bench-';
  await ensureTables(client, prefix);
  const doc = DynamoDBDocumentClient.from(client);
  const nowS = Math.floor(Date.now() / 1000);
  const items = Array.from({ length: agents }, (_, i) => ({ PutRequest: { Item: agentItem(i, nowS) } }));
  await batchWriteAll(doc, tableName(prefix, 'agents'), items, 'bench agents', { parallel: 8 });
  await doc.send(
    new PutCommand({
      TableName: tableName(prefix, 'configs'),
      Item: {
        scope: FLEET_SCOPE.gateway,
        name: GATEWAY,
        gatewayId: GATEWAY,
        updatedAtMs: Date.now(),
        connected: agents,
      },
    }),
  );
  const api = createManagerApi({
    client,
    tablePrefix: prefix,
    secret: Buffer.from('bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz'),
    aksk: [],
    logger: silentLogger(),
    registry: new Registry(),
    consoleDir: false,
    rateLimit: { ratePerSecond: 10_000, burst: 10_000 },
  });
  // Tokens carry the account id (manager/tokens.ts): one issued without it is refused.
  const bench = await api.users.create({ username: 'bench', password: 'bench-password-1', role: 'viewer' });
  const token = api.tokens.issue('bench', undefined, bench.accountId).token;
  const statusFilter = JSON.stringify({
    filter: [{ key: 'status', rules: [{ operator: '$eq', value: 'abnormal' }], condition: '$and' }],
    condition: '$and',
  });
  const cases: Array<[string, string, string, string]> = [
    ['index: first request (builds it)', 'GET', '/api/fleet/agents', 'page=1&page_size=100'],
    ['index: page 50', 'GET', '/api/fleet/agents', 'page=50&page_size=100'],
    [
      'index: sorted by host name, descending',
      'GET',
      '/api/fleet/agents',
      'page=1&page_size=100&sort=hostname&order=desc',
    ],
    [
      'index: filtered by status and IP',
      'GET',
      '/api/fleet/agents',
      'page=1&page_size=100&status=abnormal&ip=10.0.1',
    ],
    ['index: rebuilt (fresh=1)', 'GET', '/api/fleet/agents', 'page=1&page_size=100&fresh=1'],
    ['first page', 'GET', '/api/v1/agent/getStatus', 'page=1&page_size=100'],
    ['page 50 (deep)', 'GET', '/api/v1/agent/getStatus', 'page=50&page_size=100'],
    [
      'sorted by host name',
      'GET',
      '/api/v1/agent/getStatus',
      'page=1&page_size=100&order_key=hostname&order_value=1',
    ],
    ['filtered by status', 'POST', '/api/v1/agent/getStatus/filter', 'page=1&page_size=100'],
  ];
  console.log(`${agents} agents on the embedded store, pages of 100 rows, ${runs} runs each`);
  for (const [label, method, p, query] of cases) {
    const ms: number[] = [];
    for (let r = 0; r < runs; r++) {
      const started = performance.now();
      const res = await api.handler({
        method,
        path: p,
        query,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: Buffer.from(method === 'POST' ? statusFilter : ''),
        remoteAddress: '127.0.0.1',
      });
      ms.push(performance.now() - started);
      const parsed = JSON.parse(String(res.body)) as { code?: number; data?: unknown };
      // v1 answers in Elkeid's envelope, /api/fleet plainly.
      const page = (p.startsWith('/api/v1/') ? parsed.data : parsed) as { items: unknown[]; total: number };
      if (res.status !== 200 || (parsed.code ?? 0) !== 0) {
        throw new Error(`${label}: ${String(res.body).slice(0, 200)}`);
      }
      if (r === 0) console.log(`  ${label}: ${page.items.length} rows of ${page.total}`);
    }
    ms.sort((a, b) => a - b);
    console.log(
      `  ${label}: median ${ms[Math.floor(ms.length / 2)]!.toFixed(0)} ms, slowest ${ms[ms.length - 1]!.toFixed(0)} ms`,
    );
  }
  client.destroy();
  await dynamo.close();
  rmSync(dir, { recursive: true, force: true });
}

await main();
