/**
 * A gateway whose DynamoDB is down when it starts: the real `fleetgate
 * gateway` process starts anyway, serves agents (their records are taken), reports itself ready
 * but degraded with the cause in /readyz and `fleetgate_store_available 0`, and once the store
 * (a real dynalite on the configured port) comes up, creates the tables in the background and
 * reports the store available again — the same process throughout.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { encodeItem } from '../../gateway/agent/item.js';
import { connectAgent, openTransfer } from '../../loadtest/agent/raw-agent.js';
import { createDynamoClient } from '../../platform/store/dynamo-client.js';
import { startEmbeddedDynamo } from '../../platform/store/embedded.js';
import { startFleetgateProcess } from '../helpers/gateway.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  for (;;) {
    last = await fn().catch(() => undefined);
    if (last !== undefined && ok(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`);
    await sleep(200);
  }
}

function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

test('DynamoDB down at start: the gateway starts, serves agents, says degraded, and recovers when it is up', {
  timeout: 120_000,
}, async (t) => {
  const dynamoPort = await freePort(); // nothing listens there yet
  const prefix = `down${process.pid}-`;
  const gw = await startFleetgateProcess(t, 'gateway', {
    FLEETGATE_DYNAMODB_ENDPOINT: `http://127.0.0.1:${dynamoPort}`,
    FLEETGATE_TABLE_PREFIX: prefix,
    FLEETGATE_KAFKA_BROKERS: '',
  });
  const control = Number(/control API\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(gw.output())![1]);
  const base = `http://127.0.0.1:${control}`;
  const readyz = async () => {
    const r = await fetch(`${base}/readyz`);
    return { status: r.status, body: (await r.json()) as { status: string; degraded?: string[] } };
  };
  const metrics = async () => (await fetch(`${base}/metrics`)).text();

  // Agents are served: records are taken (to the spool here) while the store is down.
  const session = await connectAgent({ host: '127.0.0.1', port: gw.port }, gw.tls);
  t.after(() => session.destroy());
  const s = openTransfer(session);
  for (let i = 0; i < 5; i++) {
    s.send({
      AgentID: 'store-down-agent',
      Hostname: 'h',
      Data: [{ DataType: 1000, Timestamp: i + 1, Body: encodeItem({ cpu: '0.1' }) }],
    });
  }
  await until(metrics, (m) => metric(m, 'fleetgate_ingest_records_total') === 5, 20_000, 'records taken');
  const degraded = await until(readyz, (r) => r.body.status === 'degraded', 20_000, 'degraded');
  assert.equal(degraded.status, 200, 'still ready: agents are served');
  assert.match(degraded.body.degraded?.join(' ') ?? '', /store unavailable: .*(ECONNREFUSED|connect)/i);
  assert.equal(metric(await metrics(), 'fleetgate_store_available'), 0);
  assert.equal(gw.child.exitCode, null);

  // The store comes up on that port: tables are created in the background, the state clears.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fg-dyn-'));
  const dynamo = await startEmbeddedDynamo({ dir, port: dynamoPort });
  t.after(async () => {
    await dynamo.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const client = createDynamoClient({ endpoint: dynamo.endpoint });
  t.after(() => client.destroy());
  await until(
    async () => (await client.send(new ListTablesCommand({}))).TableNames ?? [],
    (names) => names.filter((n) => n.startsWith(prefix)).length >= 3,
    60_000,
    'tables created by the gateway',
  );
  const ready = await until(readyz, (r) => r.status === 200 && r.body.status === 'ready', 60_000, 'ready');
  assert.equal(ready.body.degraded, undefined);
  assert.equal(metric(await metrics(), 'fleetgate_store_available'), 1);
  assert.equal(gw.child.exitCode, null, 'the same process throughout');
  assert.doesNotMatch(gw.output(), /uncaught|unhandled/i);
});
