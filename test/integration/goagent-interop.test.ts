/**
 * The gateway against an independent client: loadtest/goagent, grpc-go with the stock Elkeid
 * agent's behaviour (snappy framing compressor, mTLS to `elkeid.com`, its dial options, 100 ms
 * send ticks, heartbeats, command handling, FileExt uploads).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeItem } from '../../gateway/agent/item.js';
import { startTestGateway, waitFor } from '../helpers/gateway.js';
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
