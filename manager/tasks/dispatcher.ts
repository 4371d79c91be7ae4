/**
 * The dispatcher: every manager process (and the scheduled Lambda) runs one; they cooperate
 * through conditional writes on chunk heads only (lease.ts). One tick:
 *
 *   Query tasks byActive → BatchGet the task items → per running task, Query its chunk heads
 *   (`h#…`, ~200 bytes each) → claim due chunks (≤ `concurrence` live leases per task) → per
 *   claimed chunk: members (cached), BatchGet subtasks + agent items → a config task writes its
 *   items into the agents' agent#<id> scopes first (write-ahead, config-plan.ts) → group the
 *   agents that need a delivery by (gateway control address, command) → one signed POST
 *   /command/batch per group
 *   with the chunk's fence and the agents' tokens → write the outcomes → release the lease with
 *   the chunk's recomputed counters, its next due time and the result mark it has seen.
 *
 * Outcomes: sent (or `duplicate`: the gateway already sent or saw answered that token) →
 * Agent_Config / Agent_Ctrl `result_succeed` at once (Elkeid counts a delivered config as done),
 * Agent_Task `succeed` = waiting for the agent's result record; not_connected / queue_full /
 * timed_out / closed / transport error / agent offline → `failed` with a retry time (exponential
 * backoff, full jitter) until `max_attempts`, then `result_failed` with the last reason. `fenced`
 * → this dispatcher lost the chunk: it writes nothing. An Agent_Task subtask still `succeed` past
 * its deadline → `result_failed` "Timeout waiting for agent response" (the chunk stays due at the
 * earliest deadline, so this sweep is part of the same loop).
 *
 * Writes: config/ctrl outcomes with BatchWriteItem (no result callback ever targets those
 * subtasks, so the lease holder is their only writer; the lease is renewed — a conditional write —
 * right before, so a holder that lost its lease stops there); Agent_Task outcomes with a
 * conditional UpdateItem `state NOT IN (result_succeed, result_failed)`, since the agent's result
 * may land first. Counters are recomputed from the chunk's subtasks on every pass (not ADDed), so
 * a crash between a subtask write and the release cannot skew them; result callbacks only bump the
 * head's `dirty`, which makes the chunk due for a recount.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { Registry } from 'prom-client';
import { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from '../../platform/backoff.js';
import type { Logger } from '../../platform/obs/logger.js';
import { createAgentReader } from '../agents.js';
import type { ConfigMsg } from '../configs.js';
import { createManagerStore, isConditionFailed, mapLimit } from '../store.js';
import { createTagStore } from '../tags.js';
import { batchGet } from './batch-get.js';
import { createConfigPlanner } from './config-plan.js';
import { batchPut, type TaskContext, taskTables } from './context.js';
import { type CommandBatchFn, createGatewayClient, GATEWAY_CALL_TIMEOUT_MS } from './gateway-client.js';
import { createDynamoLeaseStore, type LeaseStore } from './lease.js';
import { createTaskMetrics } from './metrics.js';
import {
  type ChunkHead,
  COUNTER_ATTR,
  countsOfHead,
  FINAL,
  membersId,
  queryHeads,
  ST_STATE,
  SUBTASK_STATES,
  type SubtaskItem,
  sumHeads,
  type TaskItem,
} from './model.js';
import type { CommandBody, SubtaskState, TaskCounts } from './types.js';

export const NEVER = 8_640_000_000_000_000;
const TIMEOUT_MSG = 'Timeout waiting for agent response';

export interface DispatcherOptions {
  /** Either a built context (the manager role) or a client and prefix (the Lambda entry). */
  ctx?: TaskContext;
  client?: DynamoDBClient;
  tablePrefix?: string;
  aksk: ReadonlyArray<readonly [string, string]>;
  logger: Logger;
  registry?: Registry;
  /** Unique per dispatcher; default host:pid:random. */
  owner?: string;
  /** Default 10 000 ms. */
  leaseMs?: number;
  /** Timer period while some task is active. Default 250 ms. */
  busyMs?: number;
  /** Timer period with no active task. Default 1000 ms. */
  idleMs?: number;
  backoff?: BackoffOptions;
  /**
   * A chunk due only because results arrived (its `dirty` mark) waits this long after its last
   * pass, so a burst of 100 results is one recount, not 100. Default 1000 ms.
   */
  recountMs?: number;
  /** Chunks this dispatcher processes at once. Default 16. */
  parallelChunks?: number;
  /** The gateway call (tests substitute it); default signed fetch with a 15 s timeout. */
  send?: CommandBatchFn;
  /** Test hooks: `afterSend` runs after a gateway answered, before anything is written. */
  hooks?: {
    afterSend?: (info: { taskId: string; chunkId: string; controlAddr: string }) => void | Promise<void>;
  };
  now?: () => number;
  random?: () => number;
}

export interface Dispatcher {
  readonly owner: string;
  tick(): Promise<{ didWork: boolean; activeTasks: number; chunks: number }>;
  start(): void;
  /** Runs the next tick now instead of after the idle period (a task was just run). */
  wake(): void;
  /** Stops the timer and waits for the tick in progress (leases are released by it). */
  stop(): Promise<void>;
  /** Simulates a crash: stops at once, writes nothing more, releases no lease. */
  kill(): void;
}

interface ClaimedChunk {
  task: TaskItem;
  head: ChunkHead;
  version: number;
  until: number;
  seenDirty: number;
}

type Outcome = { kind: 'delivered' } | { kind: 'failed'; reason: string; final?: boolean };

const RETRYABLE_MSG: Record<string, string> = {
  not_connected: 'agentID not found',
  queue_full: 'the sendPool of the agent is full',
  timed_out: 'the command has been sent but get results timed out',
  closed: 'the connection closed before the command was sent',
  offline: 'agent offline (no gateway holds it)',
};

/** How many of the chunk's agents the task has released so far (from the chunk's start). */
function releasedIn(task: TaskItem, head: ChunkHead): number {
  return Math.max(0, Math.min(task.released, head.start + head.len) - head.start);
}

export function createDispatcher(o: DispatcherOptions): Dispatcher {
  const ctx = o.ctx ?? contextFrom(o);
  const log = ctx.logger.child({ component: 'dispatcher' });
  const owner = o.owner ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const leaseMs = o.leaseMs ?? 10_000;
  const backoff = o.backoff ?? DEFAULT_BACKOFF;
  const parallel = o.parallelChunks ?? 16;
  const recountMs = o.recountMs ?? 1000;
  const now = o.now ?? ctx.now;
  const random = o.random ?? Math.random;
  // A gateway call must end well inside the lease, or the holder loses the chunk while waiting.
  const send =
    o.send ??
    createGatewayClient({
      aksk: o.aksk,
      timeoutMs: Math.min(GATEWAY_CALL_TIMEOUT_MS, Math.max(1000, leaseMs - 3000)),
    });
  const leases: LeaseStore = createDynamoLeaseStore(ctx.store, ctx.tables.chunks);
  const planner = createConfigPlanner(ctx);
  const m = ctx.metrics;
  const members = new Map<string, { ids: string[]; tokens: string[] }>();
  const countsWritten = new Map<string, string>();
  let killed = false;
  let stopped = true;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let ticking = false;
  let wakeRequested = false;

  async function activeTasks(): Promise<TaskItem[]> {
    const ids: string[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await ctx.store.doc.send(
        new QueryCommand({
          TableName: ctx.tables.tasks,
          IndexName: 'byActive',
          KeyConditionExpression: '#a = :one',
          ExpressionAttributeNames: { '#a': 'active' },
          ExpressionAttributeValues: { ':one': '1' },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const i of page.Items ?? []) ids.push(String(i.taskId));
      start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
    } while (start);
    if (ids.length === 0) return [];
    // The index is eventually consistent: the task item itself decides (state running).
    const items = await batchGet(
      ctx.store,
      ctx.tables.tasks,
      ids.map((taskId) => ({ taskId })),
      { consistent: true },
    );
    return (items as unknown as TaskItem[]).filter((t) => t.state === 'running' && t.active === '1');
  }

  function heads(taskId: string): Promise<ChunkHead[]> {
    return queryHeads(ctx.store, ctx.tables.chunks, taskId, { consistent: true });
  }

  function due(task: TaskItem, h: ChunkHead, t: number): boolean {
    if (h.state === 'done' || h.start >= task.released) return false;
    if (h.leaseOwner !== undefined && (h.leaseUntil ?? 0) >= t) return false;
    const releasedHere = Math.min(task.released, h.start + h.len);
    if ((h.handled ?? 0) < releasedHere) return true;
    if ((h.nextAt ?? NEVER) <= t) return true;
    return (h.dirty ?? 0) > (h.clean ?? 0) && t - (h.passAt ?? 0) >= recountMs;
  }

  async function finishOrSnapshot(task: TaskItem, hs: ChunkHead[]): Promise<void> {
    const counts = sumHeads(hs, task.total, task.released);
    const allDone = task.released >= task.total && hs.every((h) => h.state === 'done');
    const key = JSON.stringify(counts);
    if (!allDone && countsWritten.get(task.taskId) === key) return;
    const t = now();
    try {
      await ctx.store.doc.send(
        new UpdateCommand({
          TableName: ctx.tables.tasks,
          Key: { taskId: task.taskId },
          UpdateExpression: allDone
            ? 'SET #c = :c, #u = :now, #s = :fin REMOVE #a'
            : 'SET #c = :c, #u = :now',
          ConditionExpression: '#s = :running',
          ExpressionAttributeNames: {
            '#c': 'counts',
            '#u': 'updatedAt',
            '#s': 'state',
            ...(allDone ? { '#a': 'active' } : {}),
          },
          ExpressionAttributeValues: {
            ':c': counts,
            ':now': t,
            ':running': 'running',
            ...(allDone ? { ':fin': 'finished' } : {}),
          },
        }),
      );
      countsWritten.set(task.taskId, key);
      if (allDone) {
        countsWritten.delete(task.taskId);
        log.info({ taskId: task.taskId, counts }, 'task finished');
      }
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }

  async function claim(task: TaskItem, h: ChunkHead): Promise<ClaimedChunk | undefined> {
    const t = now();
    const r = await leases.claim(
      { taskId: task.taskId, chunkId: h.chunkId },
      owner,
      h.leaseVersion ?? 0,
      t,
      leaseMs,
    );
    if (!r.ok) {
      m.leases.inc({ outcome: 'conflict' });
      return undefined;
    }
    m.leases.inc({ outcome: 'claimed' });
    const item = r.item as unknown as ChunkHead;
    return { task, head: item, version: r.version, until: r.until, seenDirty: Number(item.dirty ?? 0) };
  }

  async function memberIds(taskId: string, h: ChunkHead): Promise<{ ids: string[]; tokens: string[] }> {
    const k = `${taskId}/${h.chunkId}`;
    const hit = members.get(k);
    if (hit) return hit;
    const chunk = Number(h.chunkId.slice(2));
    const r = await ctx.store.doc.send(
      new GetCommand({ TableName: ctx.tables.chunks, Key: { taskId, chunkId: membersId(chunk) } }),
    );
    const value = {
      ids: (r.Item?.agentIds ?? []) as string[],
      tokens: (r.Item?.tokens ?? []) as string[],
    };
    members.set(k, value);
    if (members.size > 20_000) members.delete(members.keys().next().value!);
    return value;
  }

  function commandFor(task: TaskItem, base: CommandBody, config: ConfigMsg[] | undefined): CommandBody {
    if (task.taskType === 'Agent_Config') return { config: config ?? [] };
    if (task.taskType === 'Agent_Task') return { task: { ...base.task! } };
    return { agent_ctrl: base.agent_ctrl ?? 0 };
  }

  /**
   * Sends `todo` (grouped by gateway and command, one signed batch per group with the chunk's
   * fence), then renews the lease. Undefined when this holder must write nothing: killed,
   * fenced by a gateway, or the lease lost.
   */
  async function deliverAll(
    c: ClaimedChunk,
    todo: SubtaskItem[],
    agents: Map<string, Record<string, unknown>>,
  ): Promise<{ outcomes: Map<string, Outcome>; gatewayOf: Map<string, string> } | undefined> {
    const { task, head } = c;
    const gateways = await ctx.agents.gateways();
    const base = JSON.parse(task.data) as CommandBody;
    if (killed) return undefined;
    // Where each agent is now, and what it gets.
    const outcomes = new Map<string, Outcome>();
    const gatewayOf = new Map<string, string>();
    const configs =
      task.taskType === 'Agent_Config' && todo.length > 0
        ? await planner.forAgents(
            todo.map((s) => s.agentId),
            (base.config ?? []) as ConfigMsg[],
            // Write-ahead, as Elkeid writes the merged config back at distribution: every agent
            // to send (online or not) keeps the task's items in its agent#<id> scope.
            { persist: { by: `task:${task.taskId}` } },
          )
        : undefined;
    const groups = new Map<string, { addr: string; command: CommandBody; agents: SubtaskItem[] }>();
    for (const s of todo) {
      const a = agents.get(s.agentId);
      const gw = typeof a?.gateway === 'string' ? a.gateway : undefined;
      const info = gw ? gateways.get(gw) : undefined;
      // A gateway that stopped publishing its aggregate is gone (its agents will reconnect
      // elsewhere): retry later rather than wait for a connect timeout to a dead address.
      const addr =
        a?.online === true && info?.alive !== false
          ? typeof a.controlAddr === 'string'
            ? a.controlAddr
            : info?.controlAddr
          : undefined;
      if (!addr) {
        outcomes.set(s.agentId, { kind: 'failed', reason: 'offline' });
        continue;
      }
      gatewayOf.set(s.agentId, addr);
      const command = commandFor(task, base, configs?.get(s.agentId));
      const key = `${addr}\u0000${JSON.stringify(command)}`;
      const g = groups.get(key);
      if (g) g.agents.push(s);
      else groups.set(key, { addr, command, agents: [s] });
    }
    if (groups.size > 0 && (killed || now() >= c.until - 1000)) return undefined;
    const fence = { key: `${task.taskId}/${head.chunkId}`, version: c.version };
    let fenced = false;
    await Promise.all(
      [...groups.values()].map(async (g) => {
        let results: Map<string, string>;
        try {
          results = await send(g.addr, {
            agentIds: g.agents.map((s) => s.agentId),
            command: g.command,
            tokens: Object.fromEntries(g.agents.map((s) => [s.agentId, s.token])),
            fence,
          });
          m.batches.inc({ outcome: 'ok' });
        } catch (err) {
          m.batches.inc({ outcome: 'error' });
          log.warn(
            { err, gateway: g.addr, taskId: task.taskId, chunk: head.chunkId },
            'command batch failed',
          );
          for (const s of g.agents)
            outcomes.set(s.agentId, { kind: 'failed', reason: `transport error: ${(err as Error).message}` });
          return;
        }
        await o.hooks?.afterSend?.({ taskId: task.taskId, chunkId: head.chunkId, controlAddr: g.addr });
        for (const s of g.agents) {
          const r = results.get(s.agentId) ?? 'not_connected';
          m.deliveries.inc({ result: r });
          if (r === 'sent' || r === 'duplicate') outcomes.set(s.agentId, { kind: 'delivered' });
          else if (r === 'fenced') fenced = true;
          else if (r === 'too_large')
            outcomes.set(s.agentId, {
              kind: 'failed',
              reason: 'the command is larger than the agent accepts',
              final: true,
            });
          else outcomes.set(s.agentId, { kind: 'failed', reason: r });
        }
      }),
    );
    if (killed) return undefined;
    if (fenced) {
      m.leases.inc({ outcome: 'lost' });
      log.warn(
        { taskId: task.taskId, chunk: head.chunkId, fence: c.version },
        'fenced by a gateway: chunk taken over',
      );
      return undefined;
    }
    // Still the holder? (A conditional write; a holder that paused past its lease stops here.)
    if (
      !(await leases.renew({ taskId: task.taskId, chunkId: head.chunkId }, owner, c.version, now(), leaseMs))
    ) {
      m.leases.inc({ outcome: 'lost' });
      return undefined;
    }
    return { outcomes, gatewayOf };
  }

  /**
   * A failed delivery attempt (`item.attempts` already counts it): final (`result_failed`) when it
   * cannot be retried or the attempts are used up, else `failed` with the time of the next try.
   */
  function failAttempt(
    item: SubtaskItem,
    out: { reason: string; final?: boolean },
    maxAttempts: number,
    t: number,
  ): void {
    item.msg = RETRYABLE_MSG[out.reason] ?? out.reason;
    if (out.final || item.attempts >= maxAttempts) {
      item.state = 'result_failed';
      m.exhausted.inc({ reason: 'attempts' });
    } else {
      item.state = 'failed';
      item.retryAt = t + backoffDelay(item.attempts, backoff, random);
      m.retries.inc();
    }
  }

  /**
   * Ends a pass: the head's counters from the agents' `states` (plus `created` more not listed),
   * `done` when every agent is final, written with `set` in the conditional release of the lease.
   * False when the lease was lost (or the dispatcher killed).
   */
  async function releaseCounted(
    c: ClaimedChunk,
    states: readonly SubtaskState[],
    created: number,
    set: Record<string, unknown>,
  ): Promise<boolean> {
    const counts = countsOfHead({});
    counts.created = created;
    let final = 0;
    for (const state of states) {
      counts[state]++;
      if (FINAL.has(state)) final++;
    }
    for (const state of SUBTASK_STATES) set[COUNTER_ATTR[state]] = counts[state];
    if (final === c.head.len) set.state = 'done';
    if (killed) return false;
    const ok = await leases.release(
      { taskId: c.task.taskId, chunkId: c.head.chunkId },
      owner,
      c.version,
      set,
    );
    if (!ok) m.leases.inc({ outcome: 'lost' });
    return ok;
  }

  /** One pass over a claimed chunk; false when the lease was lost (nothing more written). */
  async function processChunk(c: ClaimedChunk): Promise<boolean> {
    return typeof c.head.st === 'string' ? processSummary(c) : processItems(c);
  }

  /** The agents' items (where each is now), for the ids that need a delivery. */
  async function agentItems(ids: string[]): Promise<Map<string, Record<string, unknown>>> {
    if (ids.length === 0) return new Map();
    const items = await batchGet(
      ctx.store,
      ctx.tables.agents,
      ids.map((agentId) => ({ agentId })),
      { projection: ['agentId', 'online', 'gateway', 'controlAddr'] },
    );
    return new Map(items.map((a) => [String(a.agentId), a]));
  }

  /**
   * Config/ctrl chunks (state letters in the head, model.ts): only agents that failed before have
   * a subtask item to read; a delivery is a letter in the conditional release; items are written
   * only for failures (and for an agent delivered after failing, to record its attempts).
   */
  async function processSummary(c: ClaimedChunk): Promise<boolean> {
    const { task, head } = c;
    const { ids, tokens } = await memberIds(task.taskId, head);
    const releasedHere = releasedIn(task, head);
    const st = (head.st ?? '').split('');
    const gw = head.gw ? [...head.gw] : ids.map(() => '');
    const failedIds = ids.slice(0, releasedHere).filter((_, i) => st[i] === 'f');
    const failedItems =
      failedIds.length > 0
        ? ((await batchGet(
            ctx.store,
            ctx.tables.subtasks,
            failedIds.map((agentId) => ({ taskId: task.taskId, agentId })),
            { consistent: true },
          )) as unknown as SubtaskItem[])
        : [];
    const known = new Map(failedItems.map((s) => [s.agentId, s]));
    const t = now();
    let nextAt = NEVER;
    const todo: SubtaskItem[] = [];
    const indexOf = new Map<string, number>();
    for (let i = 0; i < releasedHere; i++) {
      const id = ids[i]!;
      if (st[i] !== 'c' && st[i] !== 'f') continue;
      const s: SubtaskItem = known.get(id) ?? {
        taskId: task.taskId,
        agentId: id,
        idx: head.start + i,
        chunk: Number(head.chunkId.slice(2)),
        token: tokens[i] ?? '',
        taskType: task.taskType,
        state: 'created',
        attempts: 0,
        insertAt: task.createdAt,
        updatedAt: task.createdAt,
      };
      if ((s.retryAt ?? 0) > t) {
        nextAt = Math.min(nextAt, s.retryAt!);
        continue;
      }
      indexOf.set(id, i);
      todo.push(s);
    }
    const delivery = await deliverAll(c, todo, await agentItems(todo.map((s) => s.agentId)));
    if (!delivery) return false;
    const { outcomes, gatewayOf } = delivery;
    const t2 = now();
    const puts: SubtaskItem[] = [];
    for (const s of todo) {
      const out = outcomes.get(s.agentId);
      const i = indexOf.get(s.agentId)!;
      if (!out) continue;
      const attempts = s.attempts + 1;
      const addr = gatewayOf.get(s.agentId) ?? '';
      gw[i] = addr;
      const item: SubtaskItem = { ...s, attempts, updatedAt: t2, fence: c.version, gateway: addr };
      delete item.retryAt;
      if (out.kind === 'delivered') {
        st[i] = 'S';
        // First-try deliveries live in the head only; a retried one records its attempts.
        if (s.state !== 'created') puts.push({ ...item, state: 'result_succeed', msg: '' });
        continue;
      }
      failAttempt(item, out, task.maxAttempts, t2);
      st[i] = item.state === 'failed' ? 'f' : 'F';
      if (item.retryAt !== undefined) nextAt = Math.min(nextAt, item.retryAt);
      puts.push(item);
    }
    if (puts.length > 0) {
      await batchPut(ctx.store, ctx.tables.subtasks, puts as unknown as Record<string, unknown>[], 4);
    }
    return releaseCounted(
      c,
      st.map((letter) => ST_STATE[letter] ?? 'created'),
      0,
      { st: st.join(''), gw, nextAt, passAt: now(), handled: head.start + releasedHere, clean: c.seenDirty },
    );
  }

  /** Agent_Task chunks and quick tasks: state in the subtask items (results update them too). */
  async function processItems(c: ClaimedChunk): Promise<boolean> {
    const { task, head } = c;
    const { ids } = await memberIds(task.taskId, head);
    const releasedHere = releasedIn(task, head);
    const released = ids.slice(0, releasedHere);
    const subItems = await batchGet(
      ctx.store,
      ctx.tables.subtasks,
      released.map((agentId) => ({ taskId: task.taskId, agentId })),
      { consistent: true },
    );
    const subs = new Map((subItems as unknown as SubtaskItem[]).map((s) => [s.agentId, s]));
    const t = now();
    const todo: SubtaskItem[] = [];
    const timeouts: SubtaskItem[] = [];
    let nextAt = NEVER;
    for (const id of released) {
      const s = subs.get(id);
      if (!s || FINAL.has(s.state)) continue;
      if (s.state === 'succeed') {
        const deadline = (s.deliveredAt ?? t) + task.timeoutS * 1000;
        if (deadline <= t) timeouts.push(s);
        else nextAt = Math.min(nextAt, deadline);
        continue;
      }
      if ((s.retryAt ?? 0) > t) {
        nextAt = Math.min(nextAt, s.retryAt!);
        continue;
      }
      todo.push(s);
    }
    const delivery = await deliverAll(c, todo, await agentItems(todo.map((s) => s.agentId)));
    if (!delivery) return false;
    const { outcomes, gatewayOf } = delivery;
    const t2 = now();
    const updated: SubtaskItem[] = [];
    for (const s of todo) {
      const out = outcomes.get(s.agentId);
      if (!out) continue;
      const attempts = s.attempts + 1;
      const next: SubtaskItem = { ...s, attempts, updatedAt: t2, fence: c.version };
      const gw = gatewayOf.get(s.agentId);
      if (gw) next.gateway = gw;
      delete next.retryAt;
      if (out.kind === 'delivered') {
        next.msg = '';
        if (task.taskType === 'Agent_Task') {
          next.state = 'succeed';
          next.deliveredAt = t2;
          nextAt = Math.min(nextAt, t2 + task.timeoutS * 1000);
        } else next.state = 'result_succeed';
      } else {
        failAttempt(next, out, task.maxAttempts, t2);
        if (next.retryAt !== undefined) nextAt = Math.min(nextAt, next.retryAt);
      }
      updated.push(next);
    }
    for (const s of timeouts) {
      updated.push({ ...s, state: 'result_failed', msg: TIMEOUT_MSG, updatedAt: t2, fence: c.version });
      m.exhausted.inc({ reason: 'timeout' });
    }
    let uncertain = false;
    if (task.taskType === 'Agent_Task') {
      await mapLimit(updated, 16, async (s) => {
        try {
          await ctx.store.doc.send(
            new UpdateCommand({
              TableName: ctx.tables.subtasks,
              Key: { taskId: s.taskId, agentId: s.agentId },
              UpdateExpression: 'SET #s = :s, #a = :a, #m = :m, #u = :u, #f = :f, #g = :g, #d = :d, #r = :r',
              ConditionExpression: 'NOT (#s IN (:rs, :rf))',
              ExpressionAttributeNames: {
                '#s': 'state',
                '#a': 'attempts',
                '#m': 'msg',
                '#u': 'updatedAt',
                '#f': 'fence',
                '#g': 'gateway',
                '#d': 'deliveredAt',
                '#r': 'retryAt',
              },
              ExpressionAttributeValues: {
                ':s': s.state,
                ':a': s.attempts,
                ':m': s.msg ?? '',
                ':u': s.updatedAt,
                ':f': s.fence ?? 0,
                ':g': s.gateway ?? '',
                ':d': s.deliveredAt ?? 0,
                ':r': s.retryAt ?? 0,
                ':rs': 'result_succeed',
                ':rf': 'result_failed',
              },
            }),
          );
          subs.set(s.agentId, s);
        } catch (err) {
          if (!isConditionFailed(err)) throw err;
          // A result landed first: the subtask is final; recount on the next pass.
          uncertain = true;
        }
      });
    } else if (updated.length > 0) {
      await batchPut(ctx.store, ctx.tables.subtasks, updated as unknown as Record<string, unknown>[], 4);
      for (const s of updated) subs.set(s.agentId, s);
    }
    // Counters from the chunk's subtasks as now written; unreleased agents are `created`.
    return releaseCounted(
      c,
      released.map((id) => subs.get(id)?.state ?? 'created'),
      head.len - released.length,
      { nextAt, passAt: now(), handled: head.start + releasedHere, clean: uncertain ? -1 : c.seenDirty },
    );
  }

  async function tick(): Promise<{ didWork: boolean; activeTasks: number; chunks: number }> {
    if (killed) return { didWork: false, activeTasks: 0, chunks: 0 };
    const tasks = await activeTasks();
    const claimed: ClaimedChunk[] = [];
    await Promise.all(
      tasks.map(async (task) => {
        const hs = await heads(task.taskId);
        await finishOrSnapshot(task, hs);
        const t = now();
        const live = hs.filter((h) => h.leaseOwner !== undefined && (h.leaseUntil ?? 0) >= t).length;
        const slots = Math.max(0, (task.concurrence ?? 100) - live);
        const candidates = hs.filter((h) => due(task, h, t));
        // Shuffled, so dispatchers starting together do not all race for the same first chunks.
        for (let i = candidates.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [candidates[i], candidates[j]] = [candidates[j]!, candidates[i]!];
        }
        const pick = candidates.slice(0, Math.min(slots, parallel * 2));
        const got = await mapLimit(pick, 8, (h) => claim(task, h));
        for (const c of got) if (c) claimed.push(c);
      }),
    );
    await mapLimit(claimed, parallel, async (c) => {
      try {
        await processChunk(c);
      } catch (err) {
        log.error(
          { err, taskId: c.task.taskId, chunk: c.head.chunkId },
          'chunk pass failed; its lease will expire',
        );
      }
    });
    return { didWork: claimed.length > 0, activeTasks: tasks.length, chunks: claimed.length };
  }

  function schedule(ms: number): void {
    if (stopped || killed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      ticking = true;
      wakeRequested = false;
      running = tick().then(
        (r) => {
          ticking = false;
          schedule(
            wakeRequested ? 0 : r.didWork || r.activeTasks > 0 ? (o.busyMs ?? 250) : (o.idleMs ?? 1000),
          );
        },
        (err: unknown) => {
          ticking = false;
          log.error({ err }, 'dispatcher tick failed');
          schedule(o.idleMs ?? 1000);
        },
      );
    }, ms);
  }

  return {
    owner,
    tick,
    start() {
      if (!stopped) return;
      stopped = false;
      schedule(0);
    },
    wake() {
      if (stopped || killed) return;
      if (ticking) wakeRequested = true;
      else schedule(0);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running?.catch(() => {});
    },
    kill() {
      killed = true;
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/** A context from a bare client (the Lambda entry and tools). */
export function contextFrom(
  o: Pick<DispatcherOptions, 'client' | 'tablePrefix' | 'logger' | 'registry' | 'now'>,
): TaskContext {
  if (!o.client || o.tablePrefix === undefined)
    throw new Error('createDispatcher needs ctx, or client and tablePrefix');
  const store = createManagerStore(o.client, o.tablePrefix);
  const now = o.now ?? Date.now;
  return {
    store,
    tables: taskTables(store),
    agents: createAgentReader(store, { now, gatewayCacheMs: 1000 }),
    tags: createTagStore(store, { now }),
    logger: o.logger,
    metrics: createTaskMetrics(o.registry ?? new Registry()),
    now,
  };
}

export type { TaskCounts };
