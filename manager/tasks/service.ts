/**
 * The TaskService (types.ts) over DynamoDB: what routes/tasks.ts and the Lambda entries call.
 * Creation is create.ts, delivery the dispatcher (dispatcher.ts), results results.ts; this file
 * holds the task state machine (run / cancel), the views and quick tasks.
 *
 *   run     UpdateItem IF state IN (created, running) AND released = :seen
 *           SET released += n, state running, active "1" (byActive), concurrence, jobs += job
 *   cancel  UpdateItem IF state IN (created, running)  SET state cancelled REMOVE active
 *           (no new claims; a chunk pass in flight finishes its batch)
 *
 * Counting as Elkeid shows it (§4.5 step 6): a subtask waiting for a retry (`failed`) is still in
 * flight, so it counts as running; for Agent_Task `succeed` (delivered, waiting for the agent's
 * result) counts as running and only result_* are final; for config and ctrl tasks a delivery
 * is the success.
 */
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { isConditionFailed } from '../store.js';
import { batchGet } from './batch-get.js';
import { createConfigPlanner } from './config-plan.js';
import type { TaskContext } from './context.js';
import { type CreateOptions, createTask, validateCommand } from './create.js';
import { TaskNotFoundError, TaskStateError, TaskValidationError } from './errors.js';
import { type CommandBatchFn, createGatewayClient } from './gateway-client.js';
import { isTaskId, newQuickTaskId, newToken } from './ids.js';
import {
  type ChunkHead,
  emptyCounts,
  headId,
  LIST_PK,
  membersId,
  queryHeads,
  type SubtaskItem,
  sumHeads,
  type TaskItem,
} from './model.js';
import { applyResults, ELKEID_STATUS_TYPES } from './results.js';
import type {
  CommandBody,
  QuickTaskInput,
  SubtaskView,
  TaskCounts,
  TaskService,
  TaskType,
  TaskView,
} from './types.js';

export interface TaskServiceOptions extends Partial<CreateOptions> {
  aksk: ReadonlyArray<readonly [string, string]>;
  /** Result data types whose status decides the subtask. Default Elkeid's 5100, 8010, 6000. */
  statusDataTypes?: readonly string[];
  /** The gateway call (tests); default signed fetch. */
  send?: CommandBatchFn;
}

const MAX_PAGE = 500;

function encodeCursor(key: Record<string, unknown> | undefined): string | undefined {
  return key ? Buffer.from(JSON.stringify(key)).toString('base64url') : undefined;
}

function decodeCursor(cursor: string | undefined): Record<string, unknown> | undefined {
  if (!cursor) return undefined;
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new TaskValidationError('invalid cursor');
}

/** Elkeid's four numbers from our six states. */
export function elkeidNumbers(type: TaskType, c: TaskCounts) {
  const waiting = type === 'Agent_Task' ? c.succeed : 0;
  return {
    sub_task_created: c.created,
    sub_task_running: c.running + c.failed + waiting,
    sub_task_succeed: c.result_succeed + (type === 'Agent_Task' ? 0 : c.succeed),
    sub_task_failed: c.result_failed,
  };
}

export function taskView(t: TaskItem, counts: TaskCounts): TaskView {
  let data: CommandBody = {};
  try {
    data = JSON.parse(t.data) as CommandBody;
  } catch {
    // stored by us; never invalid
  }
  return {
    task_id: t.taskId,
    task_type: t.taskType,
    action: t.action,
    task_name: t.taskName,
    task_user: t.user,
    tag: t.tag,
    id_list: t.idList ?? [],
    data,
    task_status: t.state,
    subtask_running_timeout: t.timeoutS,
    id_count: t.total,
    distributed_count: t.released,
    ...elkeidNumbers(t.taskType, counts),
    counts,
    create_time: Math.floor(t.createdAt / 1000),
    update_time: Math.floor(t.updatedAt / 1000),
  };
}

export function subtaskView(s: SubtaskItem): SubtaskView {
  return {
    task_id: s.taskId,
    agent_id: s.agentId,
    token: s.token,
    status: s.state,
    status_msg: s.msg ?? '',
    task_type: s.taskType,
    attempts: s.attempts,
    gateway: s.gateway ?? '',
    task_result: s.result ?? null,
    insert_time: Math.floor(s.insertAt / 1000),
    update_time: Math.floor(s.updatedAt / 1000),
  };
}

/** A config/ctrl subtask with its chunk head's state letter applied (model.ts). */
export function overlay(
  s: SubtaskItem,
  head: Pick<ChunkHead, 'start' | 'st' | 'gw'> | undefined,
): SubtaskItem {
  if (s.taskType === 'Agent_Task' || typeof head?.st !== 'string') return s;
  const i = s.idx - head.start;
  const letter = head.st[i];
  const gateway = head.gw?.[i] || s.gateway;
  if (letter === 'S' && s.state !== 'result_succeed') {
    // Delivered at the first attempt (no item written) or after failures (the item shows them).
    return {
      ...s,
      state: 'result_succeed',
      msg: '',
      attempts: s.state === 'created' ? 1 : s.attempts + 1,
      ...(gateway ? { gateway } : {}),
    };
  }
  return gateway ? { ...s, gateway } : s;
}

export function createTaskService(ctx: TaskContext, o: TaskServiceOptions): TaskService {
  const createOpts: CreateOptions = {
    fanoutConfirmAbove: o.fanoutConfirmAbove ?? 50,
    scanLimit: o.scanLimit ?? 2_000_000,
  };
  const statusTypes = new Set(o.statusDataTypes ?? ELKEID_STATUS_TYPES);
  const send = o.send ?? createGatewayClient({ aksk: o.aksk });
  const planner = createConfigPlanner(ctx);
  const { doc } = ctx.store;

  async function getTask(taskId: string): Promise<TaskItem | undefined> {
    if (!isTaskId(taskId)) return undefined;
    const r = await doc.send(
      new GetCommand({ TableName: ctx.tables.tasks, Key: { taskId }, ConsistentRead: true }),
    );
    return r.Item as TaskItem | undefined;
  }

  function headsOf(taskId: string): Promise<ChunkHead[]> {
    return queryHeads(ctx.store, ctx.tables.chunks, taskId);
  }

  async function quick(input: QuickTaskInput): Promise<{ token: string; result: string }> {
    const type: TaskType = input.command?.task
      ? 'Agent_Task'
      : input.command?.config
        ? 'Agent_Config'
        : 'Agent_Ctrl';
    const command = validateCommand(type, undefined, input.command);
    const agent = await ctx.agents.get(input.agent_id);
    if (!agent) throw new TaskNotFoundError(`agent ${input.agent_id} not found`);
    const gateways = await ctx.agents.gateways();
    const addr =
      agent.online === true
        ? typeof agent.controlAddr === 'string'
          ? agent.controlAddr
          : typeof agent.gateway === 'string'
            ? gateways.get(agent.gateway)?.controlAddr
            : undefined
        : undefined;
    let body: CommandBody = command;
    if (type === 'Agent_Config') {
      const merged = await planner.forAgents([input.agent_id], command.config as never);
      body = { config: merged.get(input.agent_id) ?? [] };
    }
    const token = input.token ? newToken() : '';
    const now = ctx.now();
    const timeoutS = 300;
    let taskId = '';
    if (input.token) {
      taskId = newQuickTaskId();
      const sub: SubtaskItem = {
        taskId,
        agentId: input.agent_id,
        idx: 0,
        chunk: 0,
        token,
        taskType: type,
        state: 'created',
        attempts: 0,
        insertAt: now,
        updatedAt: now,
      };
      const head: ChunkHead = {
        taskId,
        chunkId: headId(0),
        start: 0,
        len: 1,
        leaseVersion: 0,
        handled: 1,
        nextAt: now + timeoutS * 1000,
        dirty: 0,
        clean: 0,
        nCreated: 1,
      };
      await doc.send(new PutCommand({ TableName: ctx.tables.subtasks, Item: sub }));
      await doc.send(new PutCommand({ TableName: ctx.tables.chunks, Item: head }));
      await doc.send(
        new PutCommand({
          TableName: ctx.tables.chunks,
          Item: { taskId, chunkId: membersId(0), agentIds: [input.agent_id] },
        }),
      );
      const task: TaskItem = {
        taskId,
        taskType: type,
        action: 'quick',
        taskName: 'quick task',
        user: input.user,
        tag: '',
        idList: [input.agent_id],
        data: JSON.stringify(command),
        state: 'running',
        active: '1',
        listPk: LIST_PK,
        total: 1,
        released: 1,
        chunks: 1,
        concurrence: 1,
        maxAttempts: 1,
        timeoutS,
        jobs: [],
        quick: true,
        createdAt: now,
        updatedAt: now,
      };
      await doc.send(new PutCommand({ TableName: ctx.tables.tasks, Item: task }));
      ctx.onRun?.();
    }
    let result: string;
    if (!addr) result = 'not_connected';
    else {
      try {
        // The caller's delivery timeout (Elkeid's quickTask `timeout`), when the default call is used.
        const call =
          o.send ??
          (input.timeoutSeconds !== undefined && input.timeoutSeconds > 0
            ? createGatewayClient({ aksk: o.aksk, timeoutMs: Math.min(60_000, input.timeoutSeconds * 1000) })
            : send);
        const results = await call(addr, {
          agentIds: [input.agent_id],
          command: body,
          ...(token ? { tokens: { [input.agent_id]: token } } : {}),
        });
        result = results.get(input.agent_id) ?? 'not_connected';
      } catch (err) {
        result = `transport error: ${(err as Error).message}`;
      }
    }
    if (taskId) {
      const delivered = result === 'sent' || result === 'duplicate';
      const state = delivered ? (type === 'Agent_Task' ? 'succeed' : 'result_succeed') : 'result_failed';
      try {
        await doc.send(
          new UpdateCommand({
            TableName: ctx.tables.subtasks,
            Key: { taskId, agentId: input.agent_id },
            UpdateExpression: 'SET #s = :s, #a = :one, #m = :m, #g = :g, #d = :d, #u = :d',
            ConditionExpression: 'NOT (#s IN (:rs, :rf))',
            ExpressionAttributeNames: {
              '#s': 'state',
              '#a': 'attempts',
              '#m': 'msg',
              '#g': 'gateway',
              '#d': 'deliveredAt',
              '#u': 'updatedAt',
            },
            ExpressionAttributeValues: {
              ':s': state,
              ':one': 1,
              ':m': delivered ? '' : result,
              ':g': addr ?? '',
              ':d': ctx.now(),
              ':rs': 'result_succeed',
              ':rf': 'result_failed',
            },
          }),
        );
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
      }
      // The dispatcher recounts the chunk, times the result out and finishes the task.
      await doc.send(
        new UpdateCommand({
          TableName: ctx.tables.chunks,
          Key: { taskId, chunkId: headId(0) },
          UpdateExpression: 'ADD #d :one',
          ExpressionAttributeNames: { '#d': 'dirty' },
          ExpressionAttributeValues: { ':one': 1 },
        }),
      );
    }
    return { token, result };
  }

  return {
    create: (input) => createTask(ctx, input, createOpts),

    async run(input) {
      const pct = input.rolling_percent;
      if (pct !== undefined && !(pct > 0 && pct <= 1))
        throw new TaskValidationError('rolling_percent must be in (0, 1]');
      if (input.run_number !== undefined && (!Number.isInteger(input.run_number) || input.run_number < 1)) {
        throw new TaskValidationError('run_number must be a positive integer');
      }
      const concurrence = input.concurrence ?? 100;
      if (!Number.isInteger(concurrence) || concurrence < 1 || concurrence > 999) {
        throw new TaskValidationError('concurrence must be 1..999');
      }
      for (let attempt = 0; ; attempt++) {
        const t = await getTask(input.task_id);
        if (!t) throw new TaskNotFoundError(`task ${input.task_id} not found`);
        if (t.state !== 'created' && t.state !== 'running') throw new TaskStateError(`task is ${t.state}`);
        const n = input.run_number ?? Math.max(1, Math.floor(t.total * (pct ?? 1)));
        const released = Math.min(t.total, t.released + n);
        const now = ctx.now();
        const jobId = `id-${t.taskType}-${BigInt(now) * 1_000_000n}`;
        try {
          await doc.send(
            new UpdateCommand({
              TableName: ctx.tables.tasks,
              Key: { taskId: t.taskId },
              UpdateExpression:
                'SET #r = :r, #s = :running, #a = :one, #c = :c, #j = list_append(if_not_exists(#j, :empty), :job), #u = :now',
              ConditionExpression: '#s IN (:created, :running) AND #r = :seen',
              ExpressionAttributeNames: {
                '#r': 'released',
                '#s': 'state',
                '#a': 'active',
                '#c': 'concurrence',
                '#j': 'jobs',
                '#u': 'updatedAt',
              },
              ExpressionAttributeValues: {
                ':r': released,
                ':running': 'running',
                ':created': 'created',
                ':one': '1',
                ':c': concurrence,
                ':empty': [],
                ':job': [jobId],
                ':now': now,
                ':seen': t.released,
              },
            }),
          );
          ctx.logger.info({ taskId: t.taskId, released, of: t.total, user: input.user }, 'task run');
          ctx.onRun?.();
          return { taskID: t.taskId, jobID: jobId, id_count: released - t.released };
        } catch (err) {
          if (!isConditionFailed(err) || attempt >= 4) throw err;
        }
      }
    },

    async cancel(taskId, user) {
      const t = await getTask(taskId);
      if (!t) throw new TaskNotFoundError(`task ${taskId} not found`);
      try {
        await doc.send(
          new UpdateCommand({
            TableName: ctx.tables.tasks,
            Key: { taskId },
            UpdateExpression: 'SET #s = :cancelled, #u = :now REMOVE #a',
            ConditionExpression: '#s IN (:created, :running)',
            ExpressionAttributeNames: { '#s': 'state', '#u': 'updatedAt', '#a': 'active' },
            ExpressionAttributeValues: {
              ':cancelled': 'cancelled',
              ':created': 'created',
              ':running': 'running',
              ':now': ctx.now(),
            },
          }),
        );
      } catch (err) {
        if (isConditionFailed(err))
          throw new TaskStateError(`task is ${(await getTask(taskId))?.state ?? 'gone'}`);
        throw err;
      }
      ctx.logger.info({ taskId, user }, 'task cancelled');
      return { taskID: taskId };
    },

    async get(taskId) {
      const t = await getTask(taskId);
      if (!t || t.listPk !== LIST_PK) return undefined;
      return taskView(t, sumHeads(await headsOf(taskId), t.total, t.released));
    },

    async list({ limit, cursor }) {
      const r = await doc.send(
        new QueryCommand({
          TableName: ctx.tables.tasks,
          IndexName: 'byTime',
          KeyConditionExpression: '#p = :p',
          ExpressionAttributeNames: { '#p': 'listPk' },
          ExpressionAttributeValues: { ':p': LIST_PK },
          ScanIndexForward: false,
          Limit: Math.max(1, Math.min(MAX_PAGE, limit)),
          ...(cursor ? { ExclusiveStartKey: decodeCursor(cursor) } : {}),
        }),
      );
      const ids = (r.Items ?? []).map((i) => String(i.taskId));
      const items = (await batchGet(
        ctx.store,
        ctx.tables.tasks,
        ids.map((taskId) => ({ taskId })),
      )) as unknown as TaskItem[];
      const byId = new Map(items.map((t) => [t.taskId, t]));
      const views = ids
        .map((id) => byId.get(id))
        .filter((t): t is TaskItem => t !== undefined)
        .map((t) => taskView(t, t.counts ?? { ...emptyCounts(t.total, t.released), created: t.total }));
      const next = encodeCursor(r.LastEvaluatedKey as Record<string, unknown> | undefined);
      return next ? { items: views, cursor: next } : { items: views };
    },

    async subtasks(taskId, { limit, cursor }) {
      if (!isTaskId(taskId)) return { items: [] };
      const r = await doc.send(
        new QueryCommand({
          TableName: ctx.tables.subtasks,
          KeyConditionExpression: '#t = :t',
          ExpressionAttributeNames: { '#t': 'taskId' },
          ExpressionAttributeValues: { ':t': taskId },
          Limit: Math.max(1, Math.min(MAX_PAGE, limit)),
          ...(cursor ? { ExclusiveStartKey: decodeCursor(cursor) } : {}),
        }),
      );
      const raw = (r.Items ?? []) as unknown as SubtaskItem[];
      // Config/ctrl subtasks: the state is in their chunk heads (model.ts); overlay it.
      const chunks = [...new Set(raw.filter((x) => x.taskType !== 'Agent_Task').map((x) => x.chunk))];
      const heads = new Map(
        (
          (await batchGet(
            ctx.store,
            ctx.tables.chunks,
            chunks.map((n) => ({ taskId, chunkId: headId(n) })),
            { projection: ['chunkId', 'start', 'st', 'gw'] },
          )) as unknown as ChunkHead[]
        ).map((h) => [h.chunkId, h]),
      );
      const items = raw.map((x) => subtaskView(overlay(x, heads.get(headId(x.chunk)))));
      const next = encodeCursor(r.LastEvaluatedKey as Record<string, unknown> | undefined);
      return next ? { items, cursor: next } : { items };
    },

    applyResults: (items) => applyResults(ctx, items, { statusTypes }),

    quick,
  };
}
