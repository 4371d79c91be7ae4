/** Task results and agent logs read by the gateway (Elkeid §2.3), besides being forwarded. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeItem } from '../../gateway/agent/item.js';
import type { TaskResult } from '../../gateway/agent/special-records.js';
import { connectAgent, openTransfer } from '../../loadtest/agent/raw-agent.js';
import { startTestGateway, waitFor } from '../helpers/gateway.js';
import { metricValue } from '../helpers/metrics.js';

test('task results reach the task-result sink with data_type added; all records still reach the ingest sink', async (t) => {
  const results: TaskResult[] = [];
  const g = await startTestGateway(t, { taskResults: { report: (r) => results.push(r) } });
  const session = await connectAgent(g.address, g.tls);
  t.after(() => session.destroy());
  const s = openTransfer(session);
  s.send({
    AgentID: 'tasks-1',
    Data: [
      { DataType: 5100, Timestamp: 1, Body: encodeItem({ token: 'tok-a', status: 'succeed', msg: '' }) },
      {
        DataType: 2001,
        Timestamp: 2,
        Body: encodeItem({ token: 'tok-b', status: 'failed', msg: 'boom', name: 'collector' }),
      },
      { DataType: 1010, Timestamp: 3, Body: encodeItem({ level: 'error', source: 'agent', msg: 'x' }) },
      { DataType: 59, Timestamp: 4, Body: encodeItem({ exe: '/bin/true' }) },
    ],
  });
  await waitFor(() => g.sink.records === 4, 5000, 'all four records forwarded');
  assert.equal(results.length, 2);
  assert.deepEqual(
    results.map((r) => ({ agentId: r.agentId, dataType: r.dataType, fields: { ...r.fields } })),
    [
      {
        agentId: 'tasks-1',
        dataType: 5100,
        fields: { token: 'tok-a', status: 'succeed', msg: '', data_type: '5100' },
      },
      {
        agentId: 'tasks-1',
        dataType: 2001,
        fields: { token: 'tok-b', status: 'failed', msg: 'boom', name: 'collector', data_type: '2001' },
      },
    ],
  );
  assert.equal(await metricValue(g.gateway.metrics.registry, 'fleetgate_task_results_total'), 2);
});
