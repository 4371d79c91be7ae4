/**
 * Quick tasks (Elkeid's quickTask): one command to one agent, sent at once and answered
 * synchronously. With a token, the command is also recorded as a one-agent task (`task-<xid>`)
 * so the agent's result reconciles it and the dispatcher times it out and finishes it.
 */
import type { ConfigPlanner } from './config-plan.js';
import type { TaskContext } from './context.js';
import { validateCommand } from './create.js';
import { TaskNotFoundError } from './errors.js';
import { type CommandBatchFn, createGatewayClient } from './gateway-client.js';
import { newQuickTaskId, newToken } from './ids.js';
import { ACTIVE_RUNNING, type ChunkHead, headId, LIST_PK, type SubtaskItem, type TaskItem } from './model.js';
import { markChunkDirty, putChunk } from './store/chunk-store.js';
import { putSubtaskItem, writeQuickOutcome } from './store/subtask-store.js';
import { putTaskItem } from './store/task-store.js';
import type { CommandBody, QuickTaskInput, TaskType } from './types.js';

/** Seconds a quick Agent_Task waits for its result. */
const QUICK_TIMEOUT_S = 300;

export interface QuickDeps {
  ctx: TaskContext;
  planner: ConfigPlanner;
  aksk: ReadonlyArray<readonly [string, string]>;
  /** The default gateway call. */
  send: CommandBatchFn;
  /** A call substituted by tests (then used whatever the timeout). */
  sendOverride?: CommandBatchFn | undefined;
}

function typeOf(input: QuickTaskInput): TaskType {
  return input.command?.task ? 'Agent_Task' : input.command?.config ? 'Agent_Config' : 'Agent_Ctrl';
}

/** The agent's control address when it is online, else undefined. */
async function addressOf(ctx: TaskContext, agentId: string): Promise<string | undefined> {
  const agent = await ctx.agents.get(agentId);
  if (!agent) throw new TaskNotFoundError(`agent ${agentId} not found`);
  if (agent.online !== true) return undefined;
  if (typeof agent.controlAddr === 'string') return agent.controlAddr;
  if (typeof agent.gateway !== 'string') return undefined;
  return (await ctx.agents.gateways()).get(agent.gateway)?.controlAddr;
}

/** Writes the one-agent task (subtask, chunk, then the task item) for a tokened quick task. */
async function recordQuickTask(
  ctx: TaskContext,
  o: { taskId: string; input: QuickTaskInput; type: TaskType; command: CommandBody; token: string },
): Promise<void> {
  const now = ctx.now();
  const { taskId, input, type } = o;
  const sub: SubtaskItem = {
    taskId,
    agentId: input.agent_id,
    idx: 0,
    chunk: 0,
    token: o.token,
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
    nextAt: now + QUICK_TIMEOUT_S * 1000,
    dirty: 0,
    clean: 0,
    nCreated: 1,
  };
  await putSubtaskItem(ctx, sub);
  await putChunk(ctx, head, { agentIds: [input.agent_id], tokens: [] });
  const task: TaskItem = {
    taskId,
    taskType: type,
    action: 'quick',
    taskName: 'quick task',
    user: input.user,
    tag: '',
    idList: [input.agent_id],
    data: JSON.stringify(o.command),
    state: 'running',
    active: ACTIVE_RUNNING,
    listPk: LIST_PK,
    total: 1,
    released: 1,
    chunks: 1,
    concurrence: 1,
    maxAttempts: 1,
    timeoutS: QUICK_TIMEOUT_S,
    jobs: [],
    quick: true,
    createdAt: now,
    updatedAt: now,
  };
  await putTaskItem(ctx, task);
  ctx.onRun?.();
}

/** Sends the command; the gateway's result for the agent, or the transport error. */
async function sendNow(
  deps: QuickDeps,
  input: QuickTaskInput,
  addr: string,
  body: CommandBody,
  token: string,
) {
  // The caller's delivery timeout (Elkeid's quickTask `timeout`), when the default call is used.
  const call =
    deps.sendOverride ??
    (input.timeoutSeconds !== undefined && input.timeoutSeconds > 0
      ? createGatewayClient({ aksk: deps.aksk, timeoutMs: Math.min(60_000, input.timeoutSeconds * 1000) })
      : deps.send);
  try {
    const results = await call(addr, {
      agentIds: [input.agent_id],
      command: body,
      ...(token ? { tokens: { [input.agent_id]: token } } : {}),
    });
    return results.get(input.agent_id) ?? 'not_connected';
  } catch (err) {
    return `transport error: ${(err as Error).message}`;
  }
}

export async function quickTask(
  deps: QuickDeps,
  input: QuickTaskInput,
): Promise<{ token: string; result: string }> {
  const { ctx } = deps;
  const type = typeOf(input);
  const command = validateCommand(type, undefined, input.command);
  const addr = await addressOf(ctx, input.agent_id);
  let body: CommandBody = command;
  if (type === 'Agent_Config') {
    const merged = await deps.planner.forAgents([input.agent_id], command.config as never);
    body = { config: merged.get(input.agent_id) ?? [] };
  }
  const token = input.token ? newToken() : '';
  const taskId = input.token ? newQuickTaskId() : '';
  if (taskId) await recordQuickTask(ctx, { taskId, input, type, command, token });
  const result = addr ? await sendNow(deps, input, addr, body, token) : 'not_connected';
  if (taskId) {
    const delivered = result === 'sent' || result === 'duplicate';
    const state = delivered ? (type === 'Agent_Task' ? 'succeed' : 'result_succeed') : 'result_failed';
    await writeQuickOutcome(ctx, {
      taskId,
      agentId: input.agent_id,
      state,
      msg: delivered ? '' : result,
      gateway: addr ?? '',
      at: ctx.now(),
    });
    // The dispatcher recounts the chunk, times the result out and finishes the task.
    await markChunkDirty(ctx, taskId, 0, { mustExist: false });
  }
  return { token, result };
}
