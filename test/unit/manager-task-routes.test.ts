/**
 * routes/tasks.ts over a fake TaskService: how Elkeid's v1 bodies and ours become engine calls,
 * how engine errors become Elkeid codes / HTTP statuses (the fan-out guard says how to confirm),
 * Elkeid's ModelPage paging with its cap, and the audit notes. The route × role walk is in
 * test/integration/manager-authz.test.ts; the real engine behind them in manager-tasks-api.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ManagerDeps } from '../../manager/deps.js';
import { type Ctx, errorResponse, HttpError, type ManagerRoute } from '../../manager/router.js';
import { MAX_TASK_PAGE_SIZE, taskRoutes } from '../../manager/routes/tasks.js';
import {
  FanoutConfirmError,
  TaskNotFoundError,
  TaskStateError,
  TaskValidationError,
} from '../../manager/tasks/errors.js';
import type {
  CreateTaskInput,
  ResultItem,
  SubtaskView,
  TaskService,
  TaskView,
} from '../../manager/tasks/types.js';
import { silentLogger } from '../../platform/obs/logger.js';

function view(i: number, status: TaskView['task_status'] = 'created'): TaskView {
  const counts = {
    total: 1,
    released: 0,
    created: 1,
    running: 0,
    succeed: 0,
    failed: 0,
    result_succeed: 0,
    result_failed: 0,
  };
  return {
    task_id: `17000000000000000${String(i).padStart(2, '0')}abcdef`,
    task_type: 'Agent_Config',
    action: 'config',
    task_name: `t${i}`,
    task_user: 'user:op',
    tag: '',
    id_list: ['a1'],
    data: {},
    task_status: status,
    subtask_running_timeout: 300,
    id_count: 1,
    distributed_count: 0,
    sub_task_created: 1,
    sub_task_running: 0,
    sub_task_failed: 0,
    sub_task_succeed: 0,
    counts,
    create_time: 1_700_000_000 + i,
    update_time: 1_700_000_000 + i,
  };
}

function sub(i: number, status: SubtaskView['status']): SubtaskView {
  return {
    task_id: view(0).task_id,
    agent_id: `agent-${i}`,
    token: `tok${i}`,
    status,
    status_msg: '',
    task_type: 'Agent_Task',
    attempts: 1,
    gateway: '',
    task_result: null,
    insert_time: 0,
    update_time: 0,
  };
}

class FakeTasks implements TaskService {
  created: CreateTaskInput[] = [];
  runs: unknown[] = [];
  cancels: string[] = [];
  results: ResultItem[][] = [];
  quicks: unknown[] = [];
  fail: Error | undefined;
  quickResult = 'sent';
  tasks = Array.from({ length: 7 }, (_, i) => view(i, i % 2 ? 'running' : 'created'));
  subs = Array.from({ length: 12 }, (_, i) => sub(i, i < 4 ? 'result_failed' : 'result_succeed'));
  #check() {
    if (this.fail) throw this.fail;
  }
  async create(input: CreateTaskInput) {
    this.#check();
    this.created.push(input);
    return { task_id: '1700000000000000099zzzzzz', count: input.target.id_list?.length ?? 42 };
  }
  async run(input: Parameters<TaskService['run']>[0]) {
    this.#check();
    this.runs.push(input);
    return { taskID: input.task_id, jobID: 'id-Agent_Config-1700000000000000000', id_count: 3 };
  }
  async cancel(taskId: string) {
    this.#check();
    this.cancels.push(taskId);
    return { taskID: taskId };
  }
  async get(taskId: string) {
    this.#check();
    return this.tasks.find((t) => t.task_id === taskId);
  }
  async list({ limit, cursor }: { limit: number; cursor?: string }) {
    const start = cursor ? Number(cursor) : 0;
    const items = this.tasks.slice(start, start + Math.min(limit, 2));
    const next = start + items.length;
    return next < this.tasks.length ? { items, cursor: String(next) } : { items };
  }
  async subtasks(_taskId: string, { limit, cursor }: { limit: number; cursor?: string }) {
    const start = cursor ? Number(cursor) : 0;
    const items = this.subs.slice(start, start + Math.min(limit, 5));
    const next = start + items.length;
    return next < this.subs.length ? { items, cursor: String(next) } : { items };
  }
  async applyResults(items: readonly ResultItem[]) {
    this.#check();
    this.results.push([...items]);
    return { applied: items.length, unknown: 0, ignored: 0 };
  }
  async quick(input: Parameters<TaskService['quick']>[0]) {
    this.#check();
    this.quicks.push(input);
    return { token: input.token ? 'tttttttttttttttttttt' : '', result: this.quickResult };
  }
}

function setup() {
  const fake = new FakeTasks();
  const deps = { tasks: fake, logger: silentLogger(), now: Date.now } as unknown as ManagerDeps;
  const routes = new Map(taskRoutes(deps).map((r) => [`${r.method} ${r.path}`, r]));
  async function call(
    key: string,
    o: { body?: unknown; query?: string; params?: Record<string, string> } = {},
  ): Promise<{ status: number; json: Record<string, unknown> & { data?: unknown }; ctx: Ctx }> {
    const route = routes.get(key) as ManagerRoute;
    assert.ok(route, key);
    const raw = o.body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(o.body));
    const ctx: Ctx = {
      req: {
        method: route.method,
        path: route.path,
        query: o.query ?? '',
        headers: {},
        body: raw,
        remoteAddress: '127.0.0.1',
      },
      params: o.params ?? {},
      query: new URLSearchParams(o.query ?? ''),
      principal: { kind: 'user', id: 'op', role: 'operator' },
      audit: {},
      body() {
        if (raw.length === 0) throw new HttpError(400, 5, 'a JSON body is required');
        return JSON.parse(raw.toString('utf8'));
      },
    };
    let res: Awaited<ReturnType<ManagerRoute['handler']>>;
    try {
      res = await route.handler(ctx);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      res = errorResponse(route.api, err);
    }
    return { status: res.status, json: JSON.parse(String(res.body)), ctx };
  }
  return { fake, call };
}

test('createTask/{config,task,ctrl,delConfig}: Elkeid bodies become engine inputs; audit notes the targets', async () => {
  const { fake, call } = setup();
  const cfg = await call('POST /api/v1/agent/createTask/config', {
    body: {
      tag: 'web',
      id_list: ['a1', 'a2', 'a1'],
      filter: {
        filter: [{ key: 'platform', rules: [{ operator: '$eq', value: 'debian' }] }],
        condition: '$and',
      },
      data: { config: [{ name: 'collector', version: '1.0.0.1' }] },
      task_name: 'roll collector',
      subtask_running_timeout: 60,
      confirm_fanout: 2,
      request_id: 'req-1',
    },
  });
  assert.deepEqual(cfg.json, {
    code: 0,
    msg: 'success',
    data: { task_id: '1700000000000000099zzzzzz', count: 2 },
  });
  const input = fake.created[0]!;
  assert.equal(input.type, 'Agent_Config');
  assert.equal(input.action, 'config');
  assert.deepEqual(input.target.id_list, ['a1', 'a2']);
  assert.equal(input.target.tag, 'web');
  assert.ok(input.target.filter);
  assert.deepEqual(input.data, { config: [{ name: 'collector', version: '1.0.0.1' }] });
  assert.deepEqual(
    [input.task_name, input.subtask_running_timeout, input.confirm_fanout, input.request_id, input.user],
    ['roll collector', 60, 2, 'req-1', 'user:op'],
  );
  assert.deepEqual(cfg.ctx.audit.agents, ['a1', 'a2']);
  assert.equal(cfg.ctx.audit.agentCount, 2);
  assert.equal(cfg.ctx.audit.target, 'task:1700000000000000099zzzzzz');

  await call('POST /api/v1/agent/createTask/task', {
    body: { tag: 'web', data: { task: { name: 'collector', data: '{}', data_type: 5100 } } },
  });
  assert.equal(fake.created[1]!.type, 'Agent_Task');
  assert.equal(fake.created[1]!.target.tag, 'web');
  // Elkeid's createTask/ctrl makes an Agent_Task from data.task; agent_ctrl alone is a control.
  await call('POST /api/v1/agent/createTask/ctrl', {
    body: { id_list: ['a1'], data: { task: { name: 'elkeid-agent', data: '', data_type: 1060 } } },
  });
  await call('POST /api/v1/agent/createTask/ctrl', { body: { id_list: ['a1'], data: { agent_ctrl: 1060 } } });
  assert.deepEqual(
    fake.created.slice(2).map((c) => [c.type, c.action]),
    [
      ['Agent_Task', 'ctrl'],
      ['Agent_Ctrl', 'ctrl'],
    ],
  );
  await call('POST /api/v1/agent/createTask/delConfig', {
    body: { id_list: ['a1'], data: ['collector', 'driver'] },
  });
  assert.deepEqual(fake.created[4]!.data, { config: [{ name: 'collector' }, { name: 'driver' }] });
  assert.equal(fake.created[4]!.action, 'delConfig');

  // Refused before the engine: no target, bad data, bad fields.
  for (const [key, body] of [
    ['POST /api/v1/agent/createTask/config', { data: { config: [] } }],
    ['POST /api/v1/agent/createTask/task', { id_list: ['a1'], data: {} }],
    ['POST /api/v1/agent/createTask/ctrl', { id_list: ['a1'], data: {} }],
    ['POST /api/v1/agent/createTask/delConfig', { id_list: ['a1'], data: [] }],
    ['POST /api/v1/agent/createTask/config', { id_list: 'a1', data: { config: [] } }],
    ['POST /api/v1/agent/createTask/config', { id_list: ['a1'], data: {}, subtask_running_timeout: -1 }],
    ['POST /api/v1/agent/createTask/config', { id_list: ['a1'], filter: { filter: 'x' }, data: {} }],
  ] as const) {
    const r = await call(key, { body });
    assert.deepEqual(
      [r.status, r.json.code],
      [200, 5],
      `${key} ${JSON.stringify(body)}: ${JSON.stringify(r.json)}`,
    );
  }
  assert.equal(fake.created.length, 5);
});

test('engine errors: the fan-out guard is code 5 saying how to confirm; not found 6; state 3', async () => {
  const { fake, call } = setup();
  fake.fail = new FanoutConfirmError(1234);
  const fan = await call('POST /api/v1/agent/createTask/config', {
    body: { tag: 'all', data: { config: [] } },
  });
  assert.equal(fan.json.code, 5);
  // Elkeid's envelope: msg is the code's text, data the explanation.
  assert.equal(fan.json.msg, 'param invalid');
  assert.match(String(fan.json.data), /1234 agents/);
  assert.match(String(fan.json.data), /"confirm_fanout": 1234/);
  const fanFleet = await call('POST /api/fleet/tasks', {
    body: { action: 'config', tag: 'all', data: { config: [] } },
  });
  assert.equal(fanFleet.status, 400);
  assert.equal(fanFleet.json.error, 'fanout_unconfirmed');
  assert.match(String(fanFleet.json.message), /confirm_fanout/);

  fake.fail = new TaskValidationError('rolling_percent must be in (0, 1]');
  const bad = await call('POST /api/v1/agent/controlTask', {
    body: { task_id: 'x', action: 'run', rolling_percent: 2 },
  });
  assert.deepEqual([bad.json.code, bad.json.data], [5, 'rolling_percent must be in (0, 1]']);
  fake.fail = new TaskNotFoundError('task x not found');
  assert.equal(
    (await call('POST /api/v1/agent/controlTask', { body: { task_id: 'x', action: 'cancel' } })).json.code,
    6,
  );
  assert.equal((await call('POST /api/fleet/tasks/:id/cancel', { params: { id: 'x' } })).status, 404);
  fake.fail = new TaskStateError('task is cancelled');
  assert.equal(
    (await call('POST /api/v1/agent/controlTask', { body: { task_id: 'x', action: 'run' } })).json.code,
    3,
  );
  assert.equal((await call('POST /api/fleet/tasks/:id/run', { params: { id: 'x' } })).status, 409);
});

test('controlTask and our run/cancel: run options reach the engine, the audit has the released count', async () => {
  const { fake, call } = setup();
  const run = await call('POST /api/v1/agent/controlTask', {
    body: { task_id: 'tid', action: 'run', rolling_percent: 0.25, concurrence: 7 },
  });
  assert.deepEqual(run.json.data, {
    taskID: 'tid',
    jobID: 'id-Agent_Config-1700000000000000000',
    id_count: 3,
  });
  assert.deepEqual(fake.runs[0], { task_id: 'tid', user: 'user:op', rolling_percent: 0.25, concurrence: 7 });
  assert.equal(run.ctx.audit.agentCount, 3);
  assert.equal(run.ctx.audit.target, 'task:tid');
  const cancel = await call('POST /api/v1/agent/controlTask', { body: { task_id: 'tid', action: 'cancel' } });
  assert.deepEqual(cancel.json.data, { taskID: 'tid' });
  assert.equal(
    (await call('POST /api/v1/agent/controlTask', { body: { task_id: 'tid', action: 'pause' } })).json.code,
    5,
  );
  assert.equal((await call('POST /api/v1/agent/controlTask', { body: { action: 'run' } })).json.code, 5);
  assert.equal(
    (
      await call('POST /api/v1/agent/controlTask', {
        body: { task_id: 'tid', action: 'run', concurrence: 1000 },
      })
    ).json.code,
    5,
  );
  const ours = await call('POST /api/fleet/tasks/:id/run', {
    params: { id: 'tid' },
    body: { run_number: 10 },
  });
  assert.deepEqual(ours.json, { task_id: 'tid', job_id: 'id-Agent_Config-1700000000000000000', released: 3 });
  assert.deepEqual(fake.runs[1], { task_id: 'tid', user: 'user:op', run_number: 10 });
  const oursCancel = await call('POST /api/fleet/tasks/:id/cancel', { params: { id: 'tid' } });
  assert.deepEqual(oursCancel.json, { task_id: 'tid', task_status: 'cancelled' });
  assert.deepEqual(fake.cancels, ['tid', 'tid']);
});

test('quickTask: token and timeout from the query; the token when delivered; not connected = code 6', async () => {
  const { fake, call } = setup();
  const body = { agent_id: 'a1', command: { task: { name: 'collector', data: '{}', data_type: 5100 } } };
  const r = await call('POST /api/v1/agent/quickTask/task', { query: 'token=true&timeout=30', body });
  assert.deepEqual([r.json.code, r.json.data], [0, 'tttttttttttttttttttt']);
  assert.deepEqual(fake.quicks[0], {
    agent_id: 'a1',
    command: body.command,
    token: true,
    user: 'user:op',
    timeoutSeconds: 30,
  });
  assert.deepEqual(r.ctx.audit.agents, ['a1']);
  assert.equal((await call('POST /api/v1/agent/quickTask/task', { body })).json.data, '');
  fake.quickResult = 'not_connected';
  const nc = await call('POST /api/v1/agent/quickTask/task', { body });
  assert.deepEqual([nc.json.code, nc.json.msg], [6, 'agentID not found']);
  fake.quickResult = 'queue_full';
  assert.equal((await call('POST /api/v1/agent/quickTask/task', { body })).json.code, 10);
  assert.equal((await call('POST /api/v1/agent/quickTask/task', { query: 'timeout=0', body })).json.code, 5);
  assert.equal((await call('POST /api/v1/agent/quickTask/task', { body: { agent_id: 'a1' } })).json.code, 5);
});

test('getTask/filter and getSubTask/filter: Elkeid ModelPage, filter, page_size capped at 500', async () => {
  const { call } = setup();
  const page2 = await call('POST /api/v1/agent/getTask/filter', { query: 'page=2&page_size=3', body: {} });
  const data = page2.json.data as Record<string, unknown> & { items: TaskView[] };
  assert.deepEqual(
    [data.total, data.count, data.pages, data.page, data.page_size, data.has_prev, data.has_next],
    [7, 3, 3, 2, 3, true, true],
  );
  assert.deepEqual(
    data.items.map((t) => t.task_name),
    ['t3', 't4', 't5'],
    'every page of the engine was read, in its order',
  );
  const running = await call('POST /api/v1/agent/getTask/filter', {
    query: 'page_size=100000&order_key=create_time&order_value=-1',
    body: {
      filter: [{ key: 'task_status', rules: [{ operator: '$eq', value: 'running' }] }],
      condition: '$and',
    },
  });
  const rd = running.json.data as { page_size: number; total: number; items: TaskView[] };
  assert.equal(rd.page_size, MAX_TASK_PAGE_SIZE);
  assert.deepEqual(
    rd.items.map((t) => t.task_name),
    ['t5', 't3', 't1'],
  );
  assert.equal((await call('POST /api/v1/agent/getTask/filter', { body: { filter: 'x' } })).json.code, 5);

  const subs = await call('POST /api/v1/agent/getSubTask/filter', {
    query: 'page=1&page_size=2',
    body: {
      filter: [
        { key: 'task_id', rules: [{ operator: '$eq', value: view(0).task_id }] },
        { key: 'status', rules: [{ operator: '$eq', value: 'result_failed' }] },
      ],
      condition: '$and',
    },
  });
  const sd = subs.json.data as { total: number; pages: number; items: SubtaskView[] };
  assert.deepEqual([sd.total, sd.pages, sd.items.map((s) => s.agent_id)], [4, 2, ['agent-0', 'agent-1']]);
  const unpinned = await call('POST /api/v1/agent/getSubTask/filter', { body: { filter: [] } });
  assert.equal(unpinned.json.code, 5);
  assert.match(String(unpinned.json.data), /task_id/);
  const all = await call('GET /api/v1/agent/getSubTask/:id', { params: { id: view(0).task_id } });
  assert.equal((all.json.data as unknown[]).length, 12);
  const one = await call('GET /api/v1/agent/getTask/:id', { params: { id: view(2).task_id } });
  assert.equal((one.json.data as TaskView).task_name, 't2');
  assert.equal((await call('GET /api/v1/agent/getTask/:id', { params: { id: 'nope' } })).json.code, 6);
  assert.equal((await call('GET /api/fleet/tasks/:id', { params: { id: 'nope' } })).status, 404);
  const ours = await call('GET /api/fleet/tasks/:id/subtasks', { params: { id: 'x' }, query: 'limit=5000' });
  assert.equal((ours.json.items as unknown[]).length, 5);
  assert.equal(ours.json.cursor, '5');
});

test('updateSubTask: a JSON array of string maps to applyResults; anything else is code 5', async () => {
  const { fake, call } = setup();
  const r = await call('POST /api/v1/agent/updateSubTask', {
    body: [{ token: 'aaaaaaaaaaaaaaaaaaaa', status: 'succeed', msg: '', data_type: 5100, extra: true }],
  });
  assert.deepEqual(r.json, { code: 0, msg: 'success', data: { applied: 1, unknown: 0, ignored: 0 } });
  assert.deepEqual(fake.results[0], [
    { token: 'aaaaaaaaaaaaaaaaaaaa', status: 'succeed', msg: '', data_type: '5100', extra: 'true' },
  ]);
  assert.deepEqual(r.ctx.audit.detail, { items: 1, applied: 1, unknown: 0, ignored: 0 });
  for (const body of [{ token: 'x' }, [1], [{ token: { nested: 1 } }], 'x']) {
    assert.equal(
      (await call('POST /api/v1/agent/updateSubTask', { body })).json.code,
      5,
      JSON.stringify(body),
    );
  }
  const many = Array.from({ length: 5001 }, () => ({ token: 't' }));
  assert.equal((await call('POST /api/v1/agent/updateSubTask', { body: many })).json.code, 15);
});

test('POST /api/fleet/tasks: action required, 201 with the task', async () => {
  const { fake, call } = setup();
  const r = await call('POST /api/fleet/tasks', {
    body: { action: 'ctrl', id_list: ['a1'], data: { agent_ctrl: 1060 }, max_attempts: 3 },
  });
  assert.equal(r.status, 201);
  assert.deepEqual(r.json, { task_id: '1700000000000000099zzzzzz', count: 1 });
  assert.deepEqual([fake.created[0]!.type, fake.created[0]!.max_attempts], ['Agent_Ctrl', 3]);
  const noAction = await call('POST /api/fleet/tasks', {
    body: { id_list: ['a1'], data: { agent_ctrl: 1 } },
  });
  assert.deepEqual([noAction.status, noAction.json.error], [400, 'invalid_parameter']);
});
