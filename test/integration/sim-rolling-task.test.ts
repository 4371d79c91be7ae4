/**
 * The simulator's rolling-task scenario end to end: `fleetgate sim` (runSim) with its agents on a
 * real gateway, creating and rolling a plugin task through a real manager's HTTP API with an API
 * key, over the embedded DynamoDB. A stock manager (Elkeid's status data types) decides the
 * subtasks, since the simulated plugin answers this task with a 5100 record.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { runSim } from '../../loadtest/sim/command.js';
import type { SimReport } from '../../loadtest/sim/report.js';
import { type ConfigMsg, createConfigStore } from '../../manager/configs.js';
import { captureErrors } from '../helpers/console.js';
import { tempDir } from '../helpers/gateway.js';
import { startTestManager } from '../helpers/manager-harness.js';
import { FAST_DISPATCH, startTaskCluster } from '../helpers/task-cluster.js';

const AGENTS = 48;
const PERCENT = 0.25;
const STEP = Math.floor(AGENTS * PERCENT);

test('rolling-task: one task to every simulated agent, released batch by batch, every result succeeds', async (t) => {
  const cluster = await startTaskCluster(t, { gateways: 1, configSource: true });
  // Agents get the collector plugin from the default scope at their first heartbeat, so they
  // answer the task "succeed".
  await createConfigStore({ client: cluster.db.client, tablePrefix: cluster.db.prefix }).replace(
    'default',
    [
      {
        name: 'collector',
        type: 'tar.gz',
        version: '1.0.0',
        sha256: 'a'.repeat(64),
        download_url: ['https://dl.example/collector.tar.gz'],
      },
    ] as ConfigMsg[],
    'test',
  );
  const m = await startTestManager(t, { db: cluster.db, dispatcher: FAST_DISPATCH });
  const { key } = await m.role.api.apiKeys.create({
    name: 'sim',
    owner: 'root',
    ownerAccount: (await m.role.api.users.get('root'))?.accountId,
    role: 'operator',
  });
  const gw = cluster.gateways[0]!.g;
  const pki = tempDir(t, 'fg-sim-rt-');
  writeFileSync(path.join(pki, 'ca.crt'), gw.tls.ca);
  writeFileSync(path.join(pki, 'client.crt'), gw.tls.cert);
  writeFileSync(path.join(pki, 'client.key'), gw.tls.key);
  const json = path.join(pki, 'report.json');

  // Independently of the simulator, follow the task in the store: how many agents are released
  // and how many have a result, at every moment.
  const seen: Array<{ released: number; results: number }> = [];
  let following = true;
  const follow = (async () => {
    let taskId: string | undefined;
    while (following) {
      taskId ??= (await cluster.service.list({ limit: 10 })).items[0]?.task_id;
      if (taskId) {
        const task = await cluster.service.get(taskId);
        const subs = await cluster.service.subtasks(taskId, { limit: 500 });
        const results = subs.items.filter((s) => s.status.startsWith('result_')).length;
        seen.push({ released: task?.distributed_count ?? 0, results });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  let run: { value: number; lines: string[] };
  try {
    // FLEETGATE_SIM_API_KEY instead of --api-key: the key stays off the command line.
    process.env.FLEETGATE_SIM_API_KEY = key;
    run = await captureErrors(() =>
      runSim([
        '--scenario',
        'rolling-task',
        '--agents',
        String(AGENTS),
        '--duration',
        '12',
        '--ramp',
        '0',
        '--disrupt-at',
        '2',
        '--rolling-percent',
        String(PERCENT),
        '--gateway',
        `${gw.address.host}:${gw.address.port}`,
        '--pki',
        pki,
        '--manager',
        m.base,
        '--json',
        json,
      ]),
    );
  } finally {
    delete process.env.FLEETGATE_SIM_API_KEY;
    following = false;
    await follow;
  }
  const { value: code, lines } = run;
  assert.equal(code, 0, lines.join('\n'));
  const report = JSON.parse(readFileSync(json, 'utf8')) as SimReport;
  const rt = report.rollingTask;
  assert.ok(rt, 'the report has a rollingTask section');
  assert.equal(rt.error, undefined);
  assert.equal(rt.agents, AGENTS);

  // The manager's view: every subtask result_succeed, the task finished, counts as reported.
  const task = (await m.call('GET', `/api/v1/agent/getTask/${rt.taskId}`, { token: m.token('root') })).json
    .data;
  assert.equal(task.task_status, 'finished');
  assert.equal(task.id_count, AGENTS);
  assert.equal(task.counts.result_succeed, AGENTS);
  assert.deepEqual(
    [rt.resultSucceed, rt.resultFailed, rt.other, rt.taskStatus],
    [task.counts.result_succeed, task.counts.result_failed, 0, task.task_status],
  );
  const subs = (await m.call('GET', `/api/v1/agent/getSubTask/${rt.taskId}`, { token: m.token('root') })).json
    .data as Array<{ agent_id: string; token: string; status: string; task_result: { token?: string } }>;
  assert.equal(subs.length, AGENTS);
  for (const s of subs) {
    assert.equal(s.status, 'result_succeed', JSON.stringify(s));
    assert.equal(s.task_result?.token, s.token, 'the result came back with the subtask token');
  }

  // Every agent received exactly one command, with its own token.
  assert.equal(report.taskResults, AGENTS, 'the agents answered one plugin task each');
  assert.deepEqual(
    [rt.commandsReceived, rt.agentsWithCommand, rt.duplicateCommands, rt.wrongToken],
    [AGENTS, AGENTS, 0, 0],
  );
  assert.equal(rt.commandMs.count, AGENTS);
  assert.equal(rt.resultMs.count, AGENTS);

  // Batches in order: four of 12, each released after the previous one's last result.
  assert.deepEqual(
    rt.batches.map((b) => [b.batch, b.agents]),
    [1, 2, 3, 4].map((k) => [k, STEP]),
  );
  for (const [i, b] of rt.batches.entries()) {
    assert.ok(b.lastResultMs !== null && b.lastResultMs >= 0, `batch ${b.batch} done`);
    const prev = rt.batches[i - 1];
    if (prev) assert.ok(b.releasedAfterMs >= prev.releasedAfterMs + prev.lastResultMs!);
  }
  assert.ok(rt.allResultsMs !== null && rt.allResultsMs >= rt.batches[3]!.releasedAfterMs);
  // The store, seen from outside: released grows in steps of 25 %, results never run ahead of it.
  const released = [...new Set(seen.map((s) => s.released))].filter((n) => n > 0);
  assert.deepEqual(released, [STEP, 2 * STEP, 3 * STEP, 4 * STEP]);
  for (const s of seen) assert.ok(s.results <= s.released, JSON.stringify(s));
  assert.ok(
    seen.some((s) => s.released === STEP && s.results === STEP),
    'batch 1 complete before batch 2',
  );
  // Progress lines while it ran.
  assert.ok(lines.some((l) => /batch 4\/4 released \(12 agents\)/.test(l)));
  assert.ok(lines.some((l) => /results 48\/48 released/.test(l)));
});

test('rolling-task without --manager / --api-key is refused at start, naming what is missing', async () => {
  const saved = process.env.FLEETGATE_SIM_API_KEY;
  delete process.env.FLEETGATE_SIM_API_KEY;
  let errors: string[];
  try {
    ({ lines: errors } = await captureErrors(async () => {
      const base = [
        '--scenario',
        'rolling-task',
        '--gateway',
        '127.0.0.1:1',
        '--agents',
        '1',
        '--duration',
        '1',
      ];
      assert.equal(await runSim(base), 2);
      assert.equal(await runSim([...base, '--manager', 'http://127.0.0.1:1']), 2);
      assert.equal(await runSim([...base, '--api-key', 'fgk_x']), 2);
      assert.equal(
        await runSim([
          ...base,
          '--manager',
          'http://127.0.0.1:1',
          '--api-key',
          'k',
          '--rolling-percent',
          '2',
        ]),
        2,
      );
    }));
  } finally {
    if (saved !== undefined) process.env.FLEETGATE_SIM_API_KEY = saved;
  }
  assert.match(errors[0]!, /scenario rolling-task needs --manager URL and --api-key KEY/);
  assert.match(errors[1]!, /scenario rolling-task needs --api-key KEY \(or FLEETGATE_SIM_API_KEY\)$/);
  assert.match(errors[2]!, /scenario rolling-task needs --manager URL$/);
  assert.match(errors[3]!, /--rolling-percent must be in \(0, 1\]/);
});
