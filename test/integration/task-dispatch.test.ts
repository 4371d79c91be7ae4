/**
 * Distributed task dispatch end to end: dynalite, three real gateways (mTLS gRPC and
 * the signed control API with its delivery guard), 300 simulated agents, dispatchers sharing the
 * store. Config to a tag, plugin task results reconciled (and replayed 3×), an offline agent
 * retried to result_failed, a result timeout, a dispatcher killed mid-chunk (no token delivered
 * twice), rolling runs and cancel, agents moving between gateways mid-task.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeItem } from '../../gateway/agent/item.js';
import { connectAgent, openTransfer } from '../../loadtest/agent/raw-agent.js';
import { SimAgent } from '../../loadtest/sim/sim-agent.js';
import { type ConfigMsg, createConfigStore } from '../../manager/configs.js';
import { FanoutConfirmError, TaskStateError } from '../../manager/tasks/errors.js';
import type { ConfigItem } from '../../manager/tasks/types.js';
import { waitFor } from '../helpers/gateway.js';
import { startTestManager } from '../helpers/manager-harness.js';
import { startTaskCluster } from '../helpers/task-cluster.js';

const plugin = (version: string): ConfigItem => ({
  name: 'collector',
  type: 'tar.gz',
  version,
  sha256: 'a'.repeat(64),
  download_url: ['https://dl.example/collector.tar.gz'],
});

const allFinal = (s: string[]) => s.every((x) => x === 'result_succeed' || x === 'result_failed');
const allSucceeded = (s: string[]) => s.length > 0 && s.every((x) => x === 'result_succeed');

test('task dispatch across three gateways and two dispatchers', async (t) => {
  // The simulator answers plugin tasks with 2001 records; Elkeid's manager would only store their
  // task_result (its status types are 5100/8010/6000), so the test counts 2001 as a status type.
  const c = await startTaskCluster(t, {
    gateways: 3,
    service: { statusDataTypes: ['5100', '8010', '6000', '2001'] },
  });
  const ids = [
    ...(await c.addAgents('ag', 100, 0, 0)),
    ...(await c.addAgents('ag', 100, 1, 100)),
    ...(await c.addAgents('ag', 100, 2, 200)),
  ];
  const blue = ids.filter((_, i) => i % 2 === 0);
  await c.ctx.tags.add('blue', blue, 'test');
  const d1 = c.dispatcher({ owner: 'd1' });
  const d2 = c.dispatcher({ owner: 'd2' });
  d1.start();
  d2.start();
  const resultCount = async (result: string) => {
    const m = c.registry.getSingleMetric('fleetgate_dispatch_results_total');
    const v = (await m?.get())?.values.find((x) => x.labels.result === result);
    return v?.value ?? 0;
  };
  const configsOf = (version: string) =>
    c.received.filter((r) => !r.command.Task && r.command.Config.some((i) => i.Version === version));

  await t.test('a config task to a tag reaches exactly the tagged agents', async () => {
    await assert.rejects(
      c.service.create({
        type: 'Agent_Config',
        target: { tag: 'blue' },
        data: { config: [plugin('1.0.0')] },
        user: 'op',
      }),
      (err: unknown) => err instanceof FanoutConfirmError && err.count === 150,
    );
    const input = {
      type: 'Agent_Config' as const,
      target: { tag: 'blue' },
      data: { config: [plugin('1.0.0')] },
      user: 'op',
      confirm_fanout: 150,
      request_id: 'req-blue-1',
    };
    // The same request_id three times (twice concurrently): one task.
    const [a, b] = await Promise.all([c.service.create(input), c.service.create(input)]);
    const { task_id, count } = await c.service.create(input);
    assert.equal(count, 150);
    assert.equal(a.task_id, task_id);
    assert.equal(b.task_id, task_id);
    assert.equal((await c.service.list({ limit: 50 })).items.filter((v) => v.tag === 'blue').length, 1);
    await c.service.run({ task_id, user: 'op' });
    await c.waitSubtasks(task_id, allSucceeded);
    const got = configsOf('1.0.0').map((r) => r.agentId);
    assert.deepEqual([...got].sort(), [...blue].sort(), 'each tagged agent got it once, no other agent');
    const deadline = Date.now() + 5000;
    let view = await c.service.get(task_id);
    while (view?.task_status !== 'finished' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      view = await c.service.get(task_id);
    }
    assert.equal(view?.task_status, 'finished');
    assert.equal(view?.counts.result_succeed, 150);
    assert.equal(view?.sub_task_succeed, 150);
  });

  await t.test(
    'a plugin task: every subtask reconciled by its result; replaying results changes nothing',
    async () => {
      // Every agent needs the plugin to answer "succeed".
      const cfg = await c.service.create({
        type: 'Agent_Config',
        target: { id_list: ids },
        data: { config: [plugin('1.0.0')] },
        user: 'op',
        confirm_fanout: 300,
      });
      await c.service.run({ task_id: cfg.task_id, user: 'op' });
      await c.waitSubtasks(cfg.task_id, allSucceeded);
      const { task_id } = await c.service.create({
        type: 'Agent_Task',
        target: { id_list: ids },
        data: { task: { name: 'collector', data: '{"action":"scan"}', data_type: 5000 } },
        user: 'op',
        confirm_fanout: 300,
      });
      await c.service.run({ task_id, user: 'op' });
      const subs = await c.waitSubtasks(task_id, allSucceeded);
      assert.equal(subs.length, 300);
      for (const s of subs) {
        assert.equal(s.task_result?.token, s.token);
        assert.equal(s.task_result?.status, 'succeed');
      }
      const mine = new Set(subs.map((s) => `${s.agent_id} ${s.token}`));
      const deliveries = [...c.tokenDeliveries()].filter(([k]) => mine.has(k));
      assert.equal(deliveries.length, 300);
      assert.ok(
        deliveries.every(([, n]) => n === 1),
        'each token delivered once',
      );
      const results = subs.map((s) => s.task_result!);
      for (let i = 0; i < 3; i++) {
        const r = await c.service.applyResults(results);
        assert.deepEqual(r, { applied: 0, unknown: 0, ignored: 300 });
      }
      const again = await c.waitSubtasks(task_id, allSucceeded);
      assert.deepEqual(
        again.map((s) => [s.agent_id, s.status, s.update_time]),
        subs.map((s) => [s.agent_id, s.status, s.update_time]),
      );
      assert.deepEqual(
        await c.service.applyResults([{ token: 'a'.repeat(20), status: 'succeed', data_type: '2001' }]),
        {
          applied: 0,
          unknown: 1,
          ignored: 0,
        },
      );
    },
  );

  await t.test('an offline agent is retried and ends result_failed; a silent agent times out', async () => {
    // A raw agent that receives commands and never answers.
    const g = c.gateways[0]!.g;
    const session = await connectAgent(g.address, g.tls);
    const mute = openTransfer(session);
    mute.send({
      AgentID: 'mute-1',
      Hostname: 'mute',
      Data: [{ DataType: 1000, Timestamp: 1, Body: encodeItem({ state: 'running', platform: 'debian' }) }],
    });
    t.after(() => session.close());
    await waitFor(() => g.gateway.sessions.get('mute-1')?.detail !== undefined, 5000, 'mute agent');
    for (let i = 0; ; i++) {
      if ((await c.ctx.agents.get('mute-1'))?.online === true) break;
      if (i > 100) throw new Error('mute agent not online');
      await new Promise((r) => setTimeout(r, 50));
    }
    const { task_id } = await c.service.create({
      type: 'Agent_Task',
      target: { id_list: ['ghost-1', 'mute-1', 'ag-0001'] },
      data: { task: { name: 'collector', data: '{}', data_type: 5000 } },
      user: 'op',
      max_attempts: 3,
      subtask_running_timeout: 1,
    });
    await c.service.run({ task_id, user: 'op' });
    const subs = await c.waitSubtasks(task_id, allFinal);
    const by = new Map(subs.map((s) => [s.agent_id, s]));
    assert.equal(by.get('ghost-1')?.status, 'result_failed');
    assert.equal(by.get('ghost-1')?.attempts, 3);
    assert.match(by.get('ghost-1')!.status_msg, /offline/);
    assert.equal(by.get('mute-1')?.status, 'result_failed');
    assert.equal(by.get('mute-1')?.status_msg, 'Timeout waiting for agent response');
    assert.equal(mute.commands.length, 1, 'delivered once, not retried after delivery');
    assert.equal(by.get('ag-0001')?.status, 'result_succeed');
  });

  await t.test('a dispatcher killed mid-chunk: another finishes, no token delivered twice', async () => {
    await d1.stop();
    await d2.stop();
    /** Runs a task with a victim that dies right after its first gateway answered, then an heir. */
    const killAndTakeOver = async (data: Parameters<typeof c.service.create>[0]['data']) => {
      let killedAt = 0;
      const victim = c.dispatcher({
        owner: `victim-${Date.now()}`,
        hooks: {
          afterSend: () => {
            if (!killedAt) killedAt = Date.now();
            victim.kill();
          },
        },
      });
      const type = data.task ? 'Agent_Task' : 'Agent_Config';
      const { task_id } = await c.service.create({
        type,
        target: { id_list: ids },
        data,
        user: 'op',
        confirm_fanout: 300,
      });
      await c.service.run({ task_id, user: 'op' });
      victim.start();
      await waitFor(() => killedAt > 0, 10_000, 'the victim to send a batch');
      const heir = c.dispatcher({ owner: `heir-${Date.now()}` });
      heir.start();
      const subs = await c.waitSubtasks(task_id, allSucceeded);
      await heir.stop();
      return subs;
    };

    // A plugin task: every token reaches its agent exactly once.
    const subs = await killAndTakeOver({ task: { name: 'collector', data: '{"n":2}', data_type: 5000 } });
    const mine = new Set(subs.map((s) => `${s.agent_id} ${s.token}`));
    const deliveries = [...c.tokenDeliveries()].filter(([k]) => mine.has(k));
    assert.equal(deliveries.length, 300, 'every agent got its token');
    assert.deepEqual(
      deliveries.filter(([, n]) => n !== 1),
      [],
      'no token delivered twice',
    );

    // A config task (no result comes back, so the heir finds the victim's chunk undone and re-sends
    // it): the gateways recognise the tokens already sent on those streams and answer duplicate.
    const duplicatesBefore = await resultCount('duplicate');
    await killAndTakeOver({ config: [plugin('9.0.0')] });
    const perAgent = new Map<string, number>();
    for (const r of configsOf('9.0.0')) perAgent.set(r.agentId, (perAgent.get(r.agentId) ?? 0) + 1);
    assert.equal(perAgent.size, 300);
    assert.deepEqual(
      [...perAgent].filter(([, n]) => n !== 1),
      [],
      'no config delivered twice',
    );
    assert.ok(
      (await resultCount('duplicate')) > duplicatesBefore,
      'the take-over re-sent and was de-duplicated',
    );
    d1.start();
    d2.start();
  });

  await t.test('rolling runs release half, then all; cancel stops a task', async () => {
    const { task_id } = await c.service.create({
      type: 'Agent_Config',
      target: { id_list: ids },
      data: { config: [plugin('2.0.0')] },
      user: 'op',
      confirm_fanout: 300,
    });
    const first = await c.service.run({ task_id, rolling_percent: 0.5, user: 'op' });
    assert.equal(first.id_count, 150);
    await c.waitSubtasks(task_id, (s) => s.filter((x) => x === 'result_succeed').length === 150);
    await new Promise((r) => setTimeout(r, 500));
    const half = configsOf('2.0.0').map((r) => r.agentId);
    assert.deepEqual([...half].sort(), [...ids].sort().slice(0, 150), 'exactly the first half');
    assert.equal((await c.service.get(task_id))?.task_status, 'running');
    await c.service.run({ task_id, rolling_percent: 0.5, user: 'op' });
    await c.waitSubtasks(task_id, allSucceeded);
    assert.equal(configsOf('2.0.0').length, 300);

    const cancelled = await c.service.create({
      type: 'Agent_Config',
      target: { id_list: ids },
      data: { config: [plugin('3.0.0')] },
      user: 'op',
      confirm_fanout: 300,
    });
    await c.service.run({ task_id: cancelled.task_id, run_number: 100, user: 'op' });
    await c.waitSubtasks(cancelled.task_id, (s) => s.filter((x) => x === 'result_succeed').length === 100);
    await c.service.cancel(cancelled.task_id, 'op');
    await assert.rejects(c.service.run({ task_id: cancelled.task_id, user: 'op' }), TaskStateError);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(configsOf('3.0.0').length, 100, 'nothing more after cancel');
    assert.equal((await c.service.get(cancelled.task_id))?.task_status, 'cancelled');
  });

  await t.test('quick tasks: one agent, the gateway answer; with a token, a tracked subtask', async () => {
    const plain = await c.service.quick({
      agent_id: 'ag-0002',
      command: { task: { name: 'collector', data: '{}', data_type: 5000 } },
      token: false,
      user: 'op',
    });
    assert.deepEqual(plain, { token: '', result: 'sent' });
    const tracked = await c.service.quick({
      agent_id: 'ag-0003',
      command: { task: { name: 'collector', data: '{}', data_type: 5000 } },
      token: true,
      user: 'op',
    });
    assert.equal(tracked.result, 'sent');
    assert.match(tracked.token, /^[0-9a-v]{20}$/);
    const task = (await c.service.list({ limit: 5 })).items.find((v) => v.action === 'quick');
    assert.ok(task?.task_id.startsWith('task-'));
    const [sub] = await c.waitSubtasks(task!.task_id, allSucceeded);
    assert.equal(sub?.token, tracked.token);
    assert.equal(c.tokenDeliveries().get(`ag-0003 ${tracked.token}`), 1);
    await assert.rejects(
      c.service.quick({ agent_id: 'nobody', command: { agent_ctrl: 1060 }, token: false, user: 'op' }),
      /not found/,
    );
  });

  await t.test('agents moving to another gateway mid-task get their command there', async () => {
    const movers = ids.slice(0, 10);
    for (const id of movers) c.agents.get(id)!.stop();
    for (let i = 0; ; i++) {
      const items = await Promise.all(movers.map((id) => c.ctx.agents.get(id)));
      if (items.every((x) => x?.online !== true)) break;
      if (i > 200) throw new Error('movers still online');
      await new Promise((r) => setTimeout(r, 50));
    }
    const { task_id } = await c.service.create({
      type: 'Agent_Config',
      target: { id_list: movers },
      data: { config: [plugin('4.0.0')] },
      user: 'op',
      max_attempts: 30,
    });
    await c.service.run({ task_id, user: 'op' });
    // Offline: retried, not final.
    await c.waitSubtasks(task_id, (s) => s.every((x) => x === 'failed'));
    const target = c.gateways[1]!;
    for (const [i, id] of movers.entries()) {
      const a = new SimAgent(id, 1000 + i, {
        tls: target.g.tls,
        gateway: target.g.address,
        scenario: {
          name: 'm',
          description: 'm',
          durationS: 60,
          rampS: 0,
          eventsPerAgentPerS: 0,
          reconnectDelayMs: 60_000,
        },
        stats: c.stats,
        onCommand: (agentId, command) => c.received.push({ agentId, command }),
      });
      c.agents.set(id, a);
      a.start();
    }
    const subs = await c.waitSubtasks(task_id, allSucceeded);
    for (const s of subs) assert.equal(s.gateway, target.controlAddr);
    assert.deepEqual(
      configsOf('4.0.0')
        .map((r) => r.agentId)
        .sort(),
      [...movers].sort(),
    );
  });
});

test('a config task persists into the agents’ scopes: a reconnect keeps it, delConfig sticks', async (t) => {
  const c = await startTaskCluster(t, { gateways: 1, configSource: true });
  const m = await startTestManager(t, { db: c.db, dispatcher: false });
  const scanner = { ...plugin('1.0.0'), name: 'scanner' };
  await createConfigStore({ client: c.db.client, tablePrefix: c.db.prefix }).replace(
    'default',
    [plugin('1.0.0'), scanner] as ConfigMsg[],
    'test',
  );
  const ids = await c.addAgents('cf', 5, 0);
  const red = ids.slice(0, 3);
  await c.ctx.tags.add('red', red, 'test');
  c.dispatcher().start();
  const versions = (list: Array<{ Name?: string | null; Version?: string | null }> | undefined) =>
    Object.fromEntries((list ?? []).map((i) => [i.Name, i.Version]));
  // A distinct query per call: the same signed request twice within one second is a replay,
  // which the manager refuses (AK/SK signatures carry a seconds timestamp and no nonce).
  let call = 0;
  const getConfig = async (id: string) => {
    const r = await m.call('GET', `/api/v1/agent/getConfig/${id}?call=${++call}`, { sign: true });
    assert.equal(r.status, 200, r.text);
    return Object.fromEntries(((r.json as { data: ConfigMsg[] }).data ?? []).map((i) => [i.name, i.version]));
  };
  // Stops the agent's stream and connects it again: its gateway pushes the store's effective
  // config at the first heartbeat (what Elkeid's AgentCenter asks GetComponentInstances for).
  const reconnect = async (id: string) => {
    c.agents.get(id)!.stop();
    await waitFor(() => c.gateways[0]!.g.gateway.sessions.get(id) === undefined, 10_000, `${id} gone`);
    const before = c.received.length;
    await c.addAgents('cf', 1, 0, ids.indexOf(id));
    await waitFor(
      () => c.received.slice(before).some((r) => r.agentId === id && r.command.Config.length > 0),
      10_000,
      `${id} pushed its config`,
    );
    const got = c.received.slice(before).filter((r) => r.agentId === id && r.command.Config.length > 0);
    return versions(got.at(-1)!.command.Config);
  };

  await t.test('an upgrade to a tag survives a reconnect; getConfig shows it', async () => {
    const { task_id } = await c.service.create({
      type: 'Agent_Config',
      target: { tag: 'red' },
      data: { config: [plugin('2.0.0')] },
      user: 'op',
    });
    await c.service.run({ task_id, user: 'op' });
    await c.waitSubtasks(task_id, allSucceeded);
    assert.deepEqual((await reconnect('cf-0000')).collector, '2.0.0', 'the upgrade, not the old config');
    assert.deepEqual(await reconnect('cf-0003'), { collector: '1.0.0', scanner: '1.0.0' });
    assert.deepEqual(await getConfig('cf-0001'), { collector: '2.0.0', scanner: '1.0.0' });
    assert.deepEqual(await getConfig('cf-0004'), { collector: '1.0.0', scanner: '1.0.0' });
    const gci = await m.call('POST', '/api/v6/component/GetComponentInstances', {
      sign: true,
      body: { agent_id: 'cf-0002' },
    });
    assert.deepEqual(
      Object.fromEntries((gci.json as { data: ConfigMsg[] }).data.map((i) => [i.name, i.version])),
      { collector: '2.0.0', scanner: '1.0.0' },
    );
    const writes = await c.registry.getSingleMetric('fleetgate_dispatch_config_writes_total')?.get();
    assert.equal(writes?.values[0]?.value, 3, 'one item per (agent, plugin)');
    // The same items again: delivered, nothing written.
    const again = await c.service.create({
      type: 'Agent_Config',
      target: { tag: 'red' },
      data: { config: [plugin('2.0.0')] },
      user: 'op',
    });
    await c.service.run({ task_id: again.task_id, user: 'op' });
    await c.waitSubtasks(again.task_id, allSucceeded);
    const after = await c.registry.getSingleMetric('fleetgate_dispatch_config_writes_total')?.get();
    assert.equal(after?.values[0]?.value, 3, 'idempotent');
  });

  await t.test('delConfig removes a default-scope plugin from its targets only, for good', async () => {
    const before = c.received.length;
    const { task_id } = await c.service.create({
      type: 'Agent_Config',
      action: 'delConfig',
      target: { id_list: ['cf-0001', 'cf-0003'] },
      data: { config: [{ name: 'scanner' }] as ConfigItem[] },
      user: 'op',
    });
    await c.service.run({ task_id, user: 'op' });
    await c.waitSubtasks(task_id, allSucceeded);
    const sent = c.received.slice(before).filter((r) => r.agentId === 'cf-0001');
    assert.deepEqual(versions(sent.at(-1)?.command.Config), { collector: '2.0.0' }, 'delivered without it');
    assert.deepEqual(await reconnect('cf-0001'), { collector: '2.0.0' }, 'a target does not get it back');
    assert.deepEqual(await reconnect('cf-0003'), { collector: '1.0.0' });
    assert.deepEqual(await reconnect('cf-0004'), { collector: '1.0.0', scanner: '1.0.0' }, 'a non-target');
    assert.deepEqual(await getConfig('cf-0001'), { collector: '2.0.0' });
    assert.deepEqual(await getConfig('cf-0002'), { collector: '2.0.0', scanner: '1.0.0' });
  });
});
