/**
 * Sending: one signed batch per group (with the chunk's fence and the agents' tokens), the
 * gateways' answers turned into outcomes, then the lease renewed — a conditional write, so a
 * holder that paused past its lease, or was fenced by a gateway, writes nothing.
 */
import type { ConfigMsg } from '../../configs.js';
import type { BatchResult } from '../gateway-client.js';
import type { SubtaskItem } from '../model.js';
import { readPlacements } from '../store/placement-store.js';
import type { CommandBody } from '../types.js';
import type { ClaimedChunk, DispatchEngine, Outcome } from './engine.js';
import { type DeliveryGroup, groupByGateway } from './grouping.js';

export interface Delivery {
  outcomes: Map<string, Outcome>;
  /** The control address each sent agent went through. */
  gatewayOf: Map<string, string>;
}

/** A gateway's answer for one agent as an outcome; `fenced` = another holder owns the chunk. */
function outcomeOf(result: BatchResult): Outcome | 'fenced' {
  if (result === 'sent' || result === 'duplicate') return { kind: 'delivered' };
  if (result === 'fenced') return 'fenced';
  if (result === 'too_large')
    return { kind: 'failed', reason: 'the command is larger than the agent accepts', final: true };
  return { kind: 'failed', reason: result };
}

/** The configs a config task sends `todo` (written ahead into the agents' scopes), else undefined. */
async function configsFor(
  engine: DispatchEngine,
  c: ClaimedChunk,
  todo: readonly SubtaskItem[],
  base: CommandBody,
): Promise<Map<string, ConfigMsg[]> | undefined> {
  if (c.task.taskType !== 'Agent_Config' || todo.length === 0) return undefined;
  // Write-ahead, as Elkeid writes the merged config back at distribution: every agent to send
  // (online or not) keeps the task's items in its agent#<id> scope.
  return engine.planner.forAgents(
    todo.map((s) => s.agentId),
    (base.config ?? []) as ConfigMsg[],
    { persist: { by: `task:${c.task.taskId}` } },
  );
}

/** Sends one group; its agents' outcomes go into `outcomes`. True when the gateway fenced the chunk. */
async function sendGroup(
  engine: DispatchEngine,
  c: ClaimedChunk,
  g: DeliveryGroup,
  outcomes: Map<string, Outcome>,
): Promise<boolean> {
  const { task, head } = c;
  let results: Map<string, BatchResult>;
  try {
    results = await engine.send(g.addr, {
      agentIds: g.agents.map((s) => s.agentId),
      command: g.command,
      tokens: Object.fromEntries(g.agents.map((s) => [s.agentId, s.token])),
      fence: { key: `${task.taskId}/${head.chunkId}`, version: c.version },
    });
    engine.metrics.batches.inc({ outcome: 'ok' });
  } catch (err) {
    engine.metrics.batches.inc({ outcome: 'error' });
    engine.log.warn(
      { err, gateway: g.addr, taskId: task.taskId, chunk: head.chunkId },
      'command batch failed',
    );
    const reason = `transport error: ${(err as Error).message}`;
    for (const s of g.agents) outcomes.set(s.agentId, { kind: 'failed', reason });
    return false;
  }
  await engine.hooks.afterSend?.({ taskId: task.taskId, chunkId: head.chunkId, controlAddr: g.addr });
  let fenced = false;
  for (const s of g.agents) {
    const r = results.get(s.agentId) ?? 'not_connected';
    engine.metrics.deliveries.inc({ result: r });
    const out = outcomeOf(r);
    if (out === 'fenced') fenced = true;
    else outcomes.set(s.agentId, out);
  }
  return fenced;
}

/**
 * Sends `todo` (grouped by gateway and command), then renews the lease. Undefined when this
 * holder must write nothing: killed, fenced by a gateway, or the lease lost.
 */
export async function deliverAll(
  engine: DispatchEngine,
  c: ClaimedChunk,
  todo: readonly SubtaskItem[],
): Promise<Delivery | undefined> {
  const { task, head } = c;
  const agents = await readPlacements(
    engine.ctx,
    todo.map((s) => s.agentId),
  );
  const gateways = await engine.ctx.agents.gateways();
  const base = JSON.parse(task.data) as CommandBody;
  if (engine.lifecycle.killed) return undefined;
  const configs = await configsFor(engine, c, todo, base);
  const plan = groupByGateway(task, todo, { agents, gateways }, { base, configs });
  if (plan.groups.length > 0 && (engine.lifecycle.killed || engine.now() >= c.until - 1000)) return undefined;
  const outcomes = plan.offline;
  const fenced = await Promise.all(plan.groups.map((g) => sendGroup(engine, c, g, outcomes)));
  if (engine.lifecycle.killed) return undefined;
  if (fenced.some(Boolean)) {
    engine.metrics.leases.inc({ outcome: 'lost' });
    engine.log.warn(
      { taskId: task.taskId, chunk: head.chunkId, fence: c.version },
      'fenced by a gateway: chunk taken over',
    );
    return undefined;
  }
  const key = { taskId: task.taskId, chunkId: head.chunkId };
  if (!(await engine.leases.renew(key, engine.owner, c.version, engine.now(), engine.settings.leaseMs))) {
    engine.metrics.leases.inc({ outcome: 'lost' });
    return undefined;
  }
  return { outcomes, gatewayOf: plan.gatewayOf };
}
