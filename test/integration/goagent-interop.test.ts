/**
 * The gateway against an independent client: loadtest/goagent, grpc-go with the stock Elkeid
 * agent's behaviour (snappy framing compressor, mTLS to `elkeid.com`, its dial options, 100 ms
 * send ticks, heartbeats, command handling, FileExt uploads).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { decodeItem } from '../../gateway/agent/item.js';
import type { TaskResult } from '../../gateway/agent/special-records.js';
import { createStoreConfigSource } from '../../manager/configs.js';
import { startTestDynamo } from '../helpers/dynalite.js';
import { startTestGateway, tempDir, waitFor } from '../helpers/gateway.js';
import { startGoAgent } from '../helpers/goagent.js';
import { metricValue } from '../helpers/metrics.js';

test('goagent: heartbeat and plugin records reach the sink with the agent header', async (t) => {
  const g = await startTestGateway(t);
  const a = startGoAgent(t, { address: g.address, tls: g.tls, id: 'go-basic-1', args: ['-rate', '20'] });
  await waitFor(() => g.gateway.sessions.get('go-basic-1')?.detail !== undefined, 15_000, 'heartbeat');
  await waitFor(() => g.sink.batches.flatMap((b) => b.raw.Data).length >= 20, 10_000, '20 records');
  const batch = g.sink.batches.find((b) => b.raw.Data.some((r) => r.DataType === 5003))!;
  assert.equal(batch.raw.AgentID, 'go-basic-1');
  assert.equal(batch.raw.Product, 'elkeid-agent');
  assert.deepEqual(batch.raw.IntranetIPv4, ['10.0.0.2']);
  const rec = batch.raw.Data.find((r) => r.DataType === 5003)!;
  assert.match(decodeItem(rec.Body!).seq ?? '', /^\d+$/);
  assert.equal(a.seen('stream_end').length, 0);
});

test('goagent: a burst of commands is delivered without a too_many_pings GOAWAY (grpc-go BDP pings)', async (t) => {
  const g = await startTestGateway(t);
  const id = 'go-burst-1';
  const a = startGoAgent(t, { address: g.address, tls: g.tls, id, args: ['-plugins', 'collector'] });
  await waitFor(() => g.gateway.sessions.get(id)?.detail !== undefined, 15_000, 'heartbeat');
  const results: string[] = [];
  for (let i = 0; i < 10; i++) {
    results.push(
      await g.gateway.sessions.send(id, { Task: { DataType: 5000, Name: 'collector', Token: `burst-${i}` } }),
    );
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(results, Array(10).fill('sent'));
  await waitFor(() => a.seen('task').length === 10, 10_000, 'ten tasks at the agent');
  assert.equal(
    await metricValue(g.gateway.metrics.registry, 'fleetgate_http2_sessions_closed_total', {
      reason: 'too_many_pings',
    }),
    0,
  );
  assert.equal(a.seen('stream_end').length, 0, JSON.stringify(a.seen('stream_end')));
  assert.equal(g.gateway.sessions.get(id)?.live, true);
});

test('goagent: an upload (task 1050 over FileExt) reports its outcome to the task-result path', async (t) => {
  const results: TaskResult[] = [];
  const g = await startTestGateway(t, { taskResults: { report: (r) => results.push(r) } });
  const id = 'go-upload-1';
  const a = startGoAgent(t, { address: g.address, tls: g.tls, id, args: ['-upload-interval', '20ms'] });
  await waitFor(() => g.gateway.sessions.get(id)?.detail !== undefined, 15_000, 'heartbeat');
  const file = path.join(tempDir(t), 'evidence.bin');
  const content = randomBytes(300 * 1024);
  writeFileSync(file, content);
  const token = 'upload-token-1';
  const data = JSON.stringify({ path: file, buf_size: 64 * 1024 });
  assert.equal(
    await g.gateway.sessions.send(id, {
      Task: { DataType: 1050, Name: 'elkeid-agent', Data: data, Token: token },
    }),
    'sent',
  );
  const done = await a.waitEvent('upload', undefined, 20_000);
  assert.equal(done.status, 'succeed', JSON.stringify(done));
  await waitFor(() => results.some((r) => r.fields.token === token), 5000, 'upload result reported');
  const r = results.find((x) => x.fields.token === token)!;
  assert.deepEqual(r, { agentId: id, dataType: 5100, fields: { token, status: 'succeed', msg: token } });
  assert.deepEqual(readFileSync(path.join(g.dataDir, 'uploads', token)), content);
  assert.equal(g.gateway.uploads.get(token)?.sha256, createHash('sha256').update(content).digest('hex'));
});

test('goagent: a failed upload is reported failed by the gateway as well', async (t) => {
  const results: TaskResult[] = [];
  const g = await startTestGateway(t, {
    taskResults: { report: (r) => results.push(r) },
    maxUploadBytes: 100 * 1024,
  });
  const id = 'go-upload-2';
  const a = startGoAgent(t, { address: g.address, tls: g.tls, id, args: ['-upload-interval', '20ms'] });
  await waitFor(() => g.gateway.sessions.get(id)?.detail !== undefined, 15_000, 'heartbeat');
  const file = path.join(tempDir(t), 'big.bin');
  writeFileSync(file, randomBytes(300 * 1024));
  const token = 'upload-token-2';
  const data = JSON.stringify({ path: file, buf_size: 64 * 1024 });
  await g.gateway.sessions.send(id, {
    Task: { DataType: 1050, Name: 'elkeid-agent', Data: data, Token: token },
  });
  const done = await a.waitEvent('upload', undefined, 20_000);
  assert.equal(done.status, 'failed');
  await waitFor(
    () => results.some((r) => r.fields.token === token && r.agentId === id),
    5000,
    'failure reported',
  );
  const fromGateway = results.find((x) => x.fields.token === token && x.fields.status === 'failed')!;
  assert.match(String(fromGateway.fields.msg), /upload limit/);
});

test('goagent: the stored config is pushed when the agent is identified, not at its next heartbeat', async (t) => {
  const db = await startTestDynamo();
  t.after(() => db.close());
  const configSource = createStoreConfigSource({ client: db.client, tablePrefix: db.prefix });
  await configSource.store.replace(
    'default',
    [
      {
        name: 'collector',
        type: 'go',
        signature: 'sig',
        version: '1.0.0.1',
        sha256: 'a'.repeat(64),
        download_url: ['http://example.invalid/collector'],
        detail: '',
      },
    ],
    'test',
  );
  const g = await startTestGateway(t, { configSource });
  const id = 'go-config-1';
  // A stock agent sends its heartbeat once a minute: a new connection starts with other records.
  const a = startGoAgent(t, {
    address: g.address,
    tls: g.tls,
    id,
    args: ['-rate', '5', '-reconnect-wait', '200ms'],
  });
  await a.waitEvent('config', undefined, 15_000);
  assert.equal(g.gateway.sessions.close(id), true);
  await waitFor(() => a.seen('stream_open').length === 2, 10_000, 'reconnected');
  await waitFor(() => a.seen('config').length === 2, 10_000, 'config pushed on the new connection');
  assert.deepEqual(a.seen('config')[1]!.plugins, ['collector@1.0.0.1']);
  assert.equal(
    g.sink.batches.filter((b) => b.raw.Data.some((r) => r.DataType === 1000)).length,
    1,
    'one heartbeat in all (at start)',
  );
});
