/**
 * The embedded store (dynalite, LevelDB on disk) and the client's failure timing: tables from
 * the schema module, data surviving a restart, one process per directory, a dead store noticed
 * in about a second.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DescribeTableCommand, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { createRegistryStore } from '../../discovery/registry-store.js';
import { createDynamoClient, ensureTables } from '../../platform/store/dynamo-client.js';
import { startEmbeddedDynamo } from '../../platform/store/embedded.js';
import { openStore } from '../../platform/store/open.js';
import { TABLE_KEYS, TABLES, tableName } from '../../platform/store/schema.js';

const config = (dataDir: string) => ({
  dataDir,
  dynamodbEndpoint: undefined,
  awsRegion: undefined,
  tablePrefix: 'fleetgate-',
});

test('embedded store: every table of the schema, on disk under <dataDir>/dynamodb, kept across restarts', async (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'fg-store-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));

  const first = await openStore(config(dataDir));
  assert.equal(first.kind, 'embedded');
  assert.equal(first.embedded?.persistent, true);
  assert.deepEqual(first.tables?.created.sort(), TABLE_KEYS.map((k) => tableName('fleetgate-', k)).sort());
  assert.equal(first.tables?.ttl['fleetgate-registry'], 'unsupported', 'dynalite has no UpdateTimeToLive');
  const { Table } = await first.client.send(new DescribeTableCommand({ TableName: 'fleetgate-subtasks' }));
  assert.equal(Table?.GlobalSecondaryIndexes?.[0]?.IndexName, 'byToken');
  assert.equal(Table?.BillingModeSummary?.BillingMode, 'PAY_PER_REQUEST');
  await createRegistryStore({ client: first.client, tablePrefix: 'fleetgate-', ttlMs: 3_600_000 }).register({
    name: 'hids_svr_grpc',
    ip: '10.0.0.1',
    port: 6751,
    weight: 3,
  });

  // One process per LevelDB directory: a second store on it is refused with a clear error.
  await assert.rejects(openStore(config(dataDir)), /in use by another process/);
  await first.close();

  const second = await openStore(config(dataDir));
  t.after(() => second.close());
  assert.deepEqual(second.tables?.created, []);
  const listed = await createRegistryStore({ client: second.client, tablePrefix: 'fleetgate-' }).list(
    'hids_svr_grpc',
  );
  assert.equal(listed[0]?.weight, 3);
});

test('an existing table with other keys than the schema is an error at start', async (t) => {
  const dynamo = await startEmbeddedDynamo({});
  const client = createDynamoClient({ endpoint: dynamo.endpoint });
  t.after(async () => {
    client.destroy();
    await dynamo.close();
  });
  await ensureTables(client, 'x-', [{ ...TABLES.registry, sk: { name: 'other', type: 'S' } }]);
  await assert.rejects(ensureTables(client, 'x-', [TABLES.registry]), /key schema name:HASH,other:RANGE/);
  const names = await client.send(new ListTablesCommand({}));
  assert.deepEqual(names.TableNames, ['x-registry']);
});

test('a dead store fails a call within 2 s: refused, or accepting and never answering', async (t) => {
  const refused = createDynamoClient({ endpoint: 'http://127.0.0.1:1' });
  t.after(() => refused.destroy());
  let started = Date.now();
  await assert.rejects(refused.send(new ListTablesCommand({})));
  assert.ok(Date.now() - started < 1000, `refused: ${Date.now() - started} ms`);

  const sockets = new Set<net.Socket>();
  const hung = net.createServer((s) => sockets.add(s));
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    hung.close();
  });
  const silent = createDynamoClient({
    endpoint: `http://127.0.0.1:${(hung.address() as net.AddressInfo).port}`,
  });
  t.after(() => silent.destroy());
  started = Date.now();
  await assert.rejects(silent.send(new ListTablesCommand({})), /requestTimeout|timed? ?out/i);
  const took = Date.now() - started;
  assert.ok(took >= 4000 && took < 7000, `hung: ${took} ms (3 attempts × 1500 ms)`);
});
