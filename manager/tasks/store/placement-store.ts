/** Where agents are now (agents table, written by the gateways' heartbeat writers), for delivery. */
import type { TaskRepo } from '../context.js';
import { batchGet } from './batch-get.js';
import { type AgentPlacement, parseAgentPlacement } from './parse.js';

export type { AgentPlacement };

/** The placements of `agentIds` that have an item, by agent id. */
export async function readPlacements(
  repo: TaskRepo,
  agentIds: readonly string[],
): Promise<Map<string, AgentPlacement>> {
  if (agentIds.length === 0) return new Map();
  const items = await batchGet(
    repo.store,
    repo.tables.agents,
    agentIds.map((agentId) => ({ agentId })),
    { projection: ['agentId', 'online', 'gateway', 'controlAddr'] },
  );
  return new Map(items.map(parseAgentPlacement).map((a) => [a.agentId, a]));
}
