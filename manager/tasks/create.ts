/**
 * Task creation: validate, resolve the targets, then write every subtask and chunk before the
 * task item itself, so a task that is visible is complete (there are no transactions; a crash
 * half-way leaves orphan subtasks that no task names, which nothing reads).
 *
 * Targets = id_list ∪ members of tag ∪ agents matching filter (Elkeid's `$or`), sorted, so
 * chunk k always holds agents [100k, 100k+100) of that order and rolling runs release a prefix.
 * Idempotency: with `request_id`, a conditional Put of `req#<id>` decides which call creates the
 * task; any other call within 24 h gets the first one's id back.
 */
import { AgentCtrlError, agentCtrlTask } from '../../gateway/control/agent-ctrl.js';
import { agentStatus, elkeidDoc } from '../agents.js';
import { ConfigError, PLUGIN_NAME_PATTERN, parseConfigList } from '../configs.js';
import { matches } from '../filter.js';
import type { TaskContext } from './context.js';
import { FanoutConfirmError, TaskValidationError } from './errors.js';
import { newTaskId, newToken } from './ids.js';
import {
  CHUNK_SIZE,
  type ChunkHead,
  type ChunkMembers,
  headId,
  LIST_PK,
  type SubtaskItem,
  type TaskItem,
} from './model.js';
import { putChunkItems } from './store/chunk-store.js';
import { putSubtaskItems } from './store/subtask-store.js';
import { claimRequestId, putTaskItem, readRequestRecord } from './store/task-store.js';
import type { CommandBody, CreateTaskInput, TaskType } from './types.js';

export const IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000;
export const MAX_TASK_AGENTS = 1_000_000;
const TASK_TYPES: ReadonlySet<string> = new Set(['Agent_Config', 'Agent_Task', 'Agent_Ctrl']);
const MAX_TASK_DATA = 64 * 1024;

export interface CreateOptions {
  /** Targets above this need `confirm_fanout` equal to the count. Default 50. */
  fanoutConfirmAbove: number;
  /** Agents a filter may examine. Default 2,000,000. */
  scanLimit: number;
}

/** The command as it is stored and sent (config items validated and normalised). */
export function validateCommand(type: TaskType, action: string | undefined, data: CommandBody): CommandBody {
  if (!TASK_TYPES.has(type))
    throw new TaskValidationError(`task_type must be one of ${[...TASK_TYPES].join(', ')}`);
  if (typeof data !== 'object' || data === null) throw new TaskValidationError('data must be an object');
  if (type === 'Agent_Config') {
    let items: ReturnType<typeof parseConfigList>;
    try {
      items = parseConfigList(data.config ?? [], { full: false });
    } catch (err) {
      if (err instanceof ConfigError) throw new TaskValidationError(err.message);
      throw err;
    }
    if (items.length === 0) throw new TaskValidationError('data.config must name at least one plugin');
    if (action === 'delConfig') {
      // delConfig: only names; every other field empty = remove (Elkeid's updateConfig rule).
      return { config: items.map((c) => ({ name: c.name })) };
    }
    return { config: items };
  }
  if (type === 'Agent_Task') {
    const t = data.task;
    if (!t || typeof t !== 'object') throw new TaskValidationError('data.task is required');
    if (typeof t.name !== 'string' || !PLUGIN_NAME_PATTERN.test(t.name)) {
      throw new TaskValidationError(`data.task.name must match ${PLUGIN_NAME_PATTERN}`);
    }
    if (!Number.isInteger(t.data_type) || t.data_type < 0 || t.data_type >= 2 ** 31) {
      throw new TaskValidationError('data.task.data_type must be an integer');
    }
    const body = t.data ?? '';
    if (typeof body !== 'string' || body.length > MAX_TASK_DATA) {
      throw new TaskValidationError(`data.task.data must be a string of at most ${MAX_TASK_DATA} characters`);
    }
    return { task: { name: t.name, data: body, data_type: t.data_type } };
  }
  const ctrl = data.agent_ctrl;
  if (!Number.isInteger(ctrl) || (ctrl as number) <= 0 || (ctrl as number) >= 2 ** 31) {
    throw new TaskValidationError('data.agent_ctrl must be a positive integer');
  }
  // Refused here, at creation, rather than by every gateway at delivery (agent-ctrl.ts).
  try {
    agentCtrlTask(ctrl as number);
  } catch (err) {
    if (err instanceof AgentCtrlError) throw new TaskValidationError(err.message);
    throw err;
  }
  return { agent_ctrl: ctrl as number };
}

function validName(v: unknown, what: string, max: number): string {
  if (v === undefined || v === null) return '';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (typeof v !== 'string' || v.length > max || /[\u0000-\u001f\u007f]/.test(v)) {
    throw new TaskValidationError(
      `${what} must be a string of at most ${max} characters without control characters`,
    );
  }
  return v;
}

/** id_list ∪ tag members ∪ filter matches, sorted and de-duplicated. */
export async function resolveTargets(
  ctx: TaskContext,
  input: CreateTaskInput,
  o: CreateOptions,
): Promise<string[]> {
  const { target } = input;
  if (!target || typeof target !== 'object')
    throw new TaskValidationError('a target (id_list, tag or filter) is required');
  const ids = new Set<string>();
  if (target.id_list !== undefined) {
    if (
      !Array.isArray(target.id_list) ||
      target.id_list.some((x) => typeof x !== 'string' || x === '' || x.length > 128)
    ) {
      throw new TaskValidationError('id_list must be an array of agent ids');
    }
    for (const id of target.id_list) ids.add(id);
  }
  if (target.tag !== undefined && target.tag !== '') {
    for (const id of await ctx.tags.members(target.tag)) ids.add(id);
  }
  if (target.filter !== undefined && target.filter.elements.length > 0) {
    const filter = target.filter;
    const gateways = await ctx.agents.gateways();
    const now = ctx.now();
    const tagMap = filter.keys.has('tags') ? await ctx.tags.all() : undefined;
    await ctx.agents.scan(
      (item) => {
        const doc = elkeidDoc(
          item,
          agentStatus(item, gateways, now),
          tagMap ? (tagMap.get(item.agentId) ?? []) : undefined,
        );
        if (matches(filter, doc)) ids.add(item.agentId);
      },
      { maxItems: o.scanLimit },
    );
  }
  if (ids.size > MAX_TASK_AGENTS) throw new TaskValidationError(`at most ${MAX_TASK_AGENTS} agents per task`);
  return [...ids].sort();
}

interface CreateSettings {
  taskName: string;
  user: string;
  timeoutS: number;
  maxAttempts: number;
  requestId: string | undefined;
}

/** The checked settings of a create request (the command is validated separately). */
function checkSettings(input: CreateTaskInput): CreateSettings {
  const taskName = validName(input.task_name, 'task_name', 128);
  const user = validName(input.user, 'user', 128);
  const timeoutS = input.subtask_running_timeout ?? 300;
  if (!Number.isInteger(timeoutS) || timeoutS <= 0 || timeoutS > 7 * 86400) {
    throw new TaskValidationError('subtask_running_timeout must be 1..604800 seconds');
  }
  const maxAttempts = input.max_attempts ?? 5;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100) {
    throw new TaskValidationError('max_attempts must be 1..100');
  }
  return {
    taskName,
    user,
    timeoutS,
    maxAttempts,
    requestId: input.request_id === undefined ? undefined : validName(input.request_id, 'request_id', 128),
  };
}

/** The subtasks (one per target, with a fresh token) and chunks (≤ CHUNK_SIZE agents) of a new task. */
function buildItems(taskId: string, type: TaskType, targets: readonly string[], now: number) {
  const subtasks: SubtaskItem[] = targets.map((agentId, idx) => ({
    taskId,
    agentId,
    idx,
    chunk: Math.floor(idx / CHUNK_SIZE),
    token: newToken(),
    taskType: type,
    state: 'created',
    attempts: 0,
    insertAt: now,
    updatedAt: now,
  }));
  const chunks: Array<{ head: ChunkHead; members: ChunkMembers }> = [];
  for (let c = 0; c * CHUNK_SIZE < targets.length; c++) {
    const agentIds = targets.slice(c * CHUNK_SIZE, (c + 1) * CHUNK_SIZE);
    const head: ChunkHead = {
      taskId,
      chunkId: headId(c),
      start: c * CHUNK_SIZE,
      len: agentIds.length,
      leaseVersion: 0,
      nCreated: agentIds.length,
      dirty: 0,
      clean: 0,
    };
    // Config and ctrl tasks keep per-agent state in the head (model.ts).
    if (type !== 'Agent_Task') {
      head.st = 'c'.repeat(agentIds.length);
      head.gw = agentIds.map(() => '');
    }
    const tokens = subtasks.slice(c * CHUNK_SIZE, (c + 1) * CHUNK_SIZE).map((s) => s.token);
    chunks.push({ head, members: { agentIds, tokens } });
  }
  return { subtasks, chunks };
}

export async function createTask(
  ctx: TaskContext,
  input: CreateTaskInput,
  o: CreateOptions,
): Promise<{ task_id: string; count: number }> {
  const data = validateCommand(input.type, input.action, input.data);
  const settings = checkSettings(input);
  const targets = await resolveTargets(ctx, input, o);
  if (targets.length === 0) throw new TaskValidationError('the target matches no agent');
  if (targets.length > o.fanoutConfirmAbove && input.confirm_fanout !== targets.length) {
    throw new FanoutConfirmError(targets.length);
  }
  const now = ctx.now();
  const taskId = newTaskId(now);
  const { requestId } = settings;
  if (requestId) {
    const claim = { requestId, taskId, count: targets.length, now, windowMs: IDEMPOTENCY_WINDOW_MS };
    if (!(await claimRequestId(ctx, claim))) {
      const first = await readRequestRecord(ctx, requestId);
      return { task_id: first.taskId, count: first.count };
    }
  }
  const { subtasks, chunks } = buildItems(taskId, input.type, targets, now);
  await putSubtaskItems(ctx, subtasks);
  await putChunkItems(ctx, chunks);
  const task: TaskItem = {
    taskId,
    taskType: input.type,
    action: input.action ?? defaultAction(input.type),
    taskName: settings.taskName,
    user: settings.user,
    tag: input.target.tag ?? '',
    idList: input.target.id_list ?? [],
    data: JSON.stringify(data),
    state: 'created',
    listPk: LIST_PK,
    total: targets.length,
    released: 0,
    chunks: chunks.length,
    concurrence: 100,
    maxAttempts: settings.maxAttempts,
    timeoutS: settings.timeoutS,
    jobs: [],
    ...(requestId ? { requestId } : {}),
    createdAt: now,
    updatedAt: now,
  };
  await putTaskItem(ctx, task);
  ctx.logger.info({ taskId, type: input.type, agents: targets.length, user: settings.user }, 'task created');
  return { task_id: taskId, count: targets.length };
}

function defaultAction(type: TaskType): string {
  return type === 'Agent_Config' ? 'config' : type === 'Agent_Task' ? 'task' : 'ctrl';
}
