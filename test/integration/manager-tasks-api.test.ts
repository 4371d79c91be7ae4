/**
 * The task routes through the real engine: a manager (its own dispatcher) over the store of a
 * task cluster (two real gateways with their control APIs, simulated agents, result sinks).
 * Elkeid's v1 flow — addTags, createTask/task to the tag, controlTask run, getSubTask, getTask,
 * getJob — and ours for a config task; the fan-out guard over HTTP; a replayed result changes
 * nothing; every call audited with its agents.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTestManager } from '../helpers/manager-harness.js';
import { startTaskCluster } from '../helpers/task-cluster.js';

const FINAL = new Set(['result_succeed', 'result_failed']);

test('v1 and fleet task routes over the real engine: tag → task → run → results; config task; guard', async (t) => {
  // The gateways' result sinks apply results through the cluster's service; the simulator answers
  // plugin tasks with 2001 records, counted as status records here (Elkeid: 5100/8010/6000).
  const cluster = await startTaskCluster(t, {
    gateways: 2,
    service: { statusDataTypes: ['5100', '8010', '6000', '2001'] },
  });
  const a = await cluster.addAgents('api-a', 4, 0);
  const b = await cluster.addAgents('api-b', 3, 1);
  const m = await startTestManager(t, { db: cluster.db, api: { tasks: { fanoutConfirmAbove: 4 } } });
  const op = await m.user('op', 'operator');
  const viewer = await m.user('view', 'viewer');

  // Elkeid's v1 flow: tag two agents on each gateway, a plugin task to the tag, run it.
  const tagged = [a[0]!, a[1]!, b[0]!, b[1]!];
  assert.equal(
    (await m.call('POST', '/api/v1/addTags', { token: op, body: { tag: 'canary', id_list: tagged } })).json
      .code,
    0,
  );
  const created = await m.call('POST', '/api/v1/agent/createTask/task', {
    token: op,
    body: {
      tag: 'canary',
      task_name: 'api test',
      data: { task: { name: 'collector', data: '{}', data_type: 5100 } },
    },
  });
  assert.equal(created.json.code, 0, created.text);
  const taskId = created.json.data.task_id as string;
  assert.equal(created.json.data.count, 4, 'exactly the tagged agents');
  assert.equal(
    (
      await m.call('POST', '/api/v1/agent/controlTask', {
        token: viewer,
        body: { task_id: taskId, action: 'run' },
      })
    ).status,
    403,
    'viewers cannot run tasks',
  );
  const run = await m.call('POST', '/api/v1/agent/controlTask', {
    token: op,
    body: { task_id: taskId, action: 'run', rolling_percent: 1, concurrence: 2 },
  });
  assert.equal(run.json.code, 0, run.text);
  assert.equal(run.json.data.id_count, 4);

  // The agents answer (the simulator reports "failed": it has no collector plugin): every subtask final.
  let subs: Array<{ agent_id: string; status: string; token: string }> = [];
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    subs = (await m.call('GET', `/api/v1/agent/getSubTask/${taskId}`, { token: viewer })).json.data;
    if (subs.length === 4 && subs.every((s) => FINAL.has(s.status))) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(subs.map((s) => s.agent_id).sort(), [...tagged].sort());
  assert.ok(
    subs.every((s) => FINAL.has(s.status)),
    JSON.stringify(subs.map((s) => s.status)),
  );
  const page = await m.call('POST', '/api/v1/agent/getSubTask/filter?page=1&page_size=3', {
    token: viewer,
    body: { filter: [{ key: 'task_id', rules: [{ operator: '$eq', value: taskId }] }], condition: '$and' },
  });
  assert.deepEqual(
    [page.json.data.total, page.json.data.count, page.json.data.pages, page.json.data.has_next],
    [4, 3, 2, true],
  );
  // The task finishes (counters follow) and is listed.
  let task: Record<string, unknown> = {};
  for (let i = 0; i < 100; i++) {
    task = (await m.call('GET', `/api/v1/agent/getTask/${taskId}`, { token: viewer })).json.data;
    if (task.task_status === 'finished') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(task.task_status, 'finished', JSON.stringify(task));
  const listed = await m.call('POST', '/api/v1/agent/getTask/filter', {
    token: viewer,
    body: { filter: [{ key: 'task_id', rules: [{ operator: '$eq', value: taskId }] }] },
  });
  assert.equal(listed.json.data.total, 1);
  const job = await m.call('GET', `/api/v1/agent/getJob/${run.json.data.jobID}`, { token: viewer });
  assert.equal(job.json.code, 0, job.text);
  assert.equal(job.json.data.info.task_id, taskId);
  assert.equal(job.json.data.info.con_num, 2);

  // A gateway replaying a result changes nothing.
  const before = JSON.stringify(subs.map((s) => [s.agent_id, s.status]).sort());
  const replay = await m.call('POST', '/api/v1/agent/updateSubTask', {
    sign: true,
    body: [{ token: subs[0]!.token, status: 'succeed', msg: 'replayed', data_type: '5100' }],
  });
  assert.equal(replay.json.code, 0, replay.text);
  assert.equal(replay.json.data.applied, 0, 'a final subtask is not changed again');
  const after = (await m.call('GET', `/api/v1/agent/getSubTask/${taskId}`, { token: viewer })).json
    .data as typeof subs;
  assert.equal(JSON.stringify(after.map((s) => [s.agent_id, s.status]).sort()), before);
  assert.equal(
    (await m.call('POST', '/api/v1/agent/updateSubTask', { token: viewer, body: [] })).status,
    403,
    'viewers cannot post results',
  );

  // Fan-out guard (threshold 4 here): 5 agents need confirm_fanout 5.
  const five = [...a, b[2]!];
  const guarded = await m.call('POST', '/api/fleet/tasks', {
    token: op,
    body: { action: 'config', id_list: five, data: { config: [{ name: 'collector', version: '1.0.0.2' }] } },
  });
  assert.equal(guarded.status, 400, guarded.text);
  assert.equal(guarded.json.error, 'fanout_unconfirmed');
  assert.match(guarded.json.message, /5 agents/);
  const confirmed = await m.call('POST', '/api/fleet/tasks', {
    token: op,
    body: {
      action: 'config',
      id_list: five,
      confirm_fanout: 5,
      data: { config: [{ name: 'collector', version: '1.0.0.2' }] },
    },
  });
  assert.equal(confirmed.status, 201, confirmed.text);
  const cfgId = confirmed.json.task_id as string;
  const configsBefore = cluster.stats.configsApplied;
  const ran = await m.call('POST', `/api/fleet/tasks/${cfgId}/run`, {
    token: op,
    body: { rolling_percent: 1 },
  });
  assert.equal(ran.status, 200, ran.text);
  assert.equal(ran.json.released, 5);
  let cfgSubs: Array<{ status: string }> = [];
  for (let i = 0; i < 150; i++) {
    cfgSubs = (await m.call('GET', `/api/fleet/tasks/${cfgId}/subtasks?limit=10`, { token: viewer })).json
      .items;
    if (cfgSubs.length === 5 && cfgSubs.every((s) => s.status === 'result_succeed')) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(
    cfgSubs.map((s) => s.status),
    Array(5).fill('result_succeed'),
  );
  assert.ok(cluster.stats.configsApplied >= configsBefore + 5, 'the five agents got the config');
  const cancelled = await m.call('POST', `/api/fleet/tasks/${cfgId}/cancel`, { token: op });
  assert.ok([200, 409].includes(cancelled.status), cancelled.text);

  // Audited with the agents.
  const audit = (await m.call('GET', '/api/fleet/audit', { token: m.token('root') })).json.items as Array<{
    action: string;
    agentCount?: number;
    agents?: string[];
    target?: string;
  }>;
  const createEntry = audit.find((e) => e.action === 'POST /api/v1/agent/createTask/task');
  assert.equal(createEntry?.agentCount, 4);
  assert.equal(createEntry?.target, `task:${taskId}`);
  const fleetCreate = audit.find((e) => e.action === 'POST /api/fleet/tasks' && e.agentCount === 5);
  assert.deepEqual(fleetCreate?.agents?.sort(), [...five].sort());
  assert.ok(audit.some((e) => e.action === 'POST /api/v1/agent/controlTask' && e.agentCount === 4));
});
