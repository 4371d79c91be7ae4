/**
 * Grouping by gateway: where each agent of a pass is now (its gateway's control address) and
 * what it gets; agents with the same (address, command) share one signed batch.
 */

import type { GatewayInfo } from '../../agents.js';
import type { ConfigMsg } from '../../configs.js';
import type { SubtaskItem, TaskItem } from '../model.js';
import type { AgentPlacement } from '../store/parse.js';
import type { CommandBody } from '../types.js';
import type { Outcome } from './engine.js';

/** One signed POST /command/batch: a gateway, a command, its agents. */
export interface DeliveryGroup {
  addr: string;
  command: CommandBody;
  agents: SubtaskItem[];
}

export interface DeliveryPlan {
  groups: DeliveryGroup[];
  /** Agents with no live gateway: failed (`offline`) without a call. */
  offline: Map<string, Outcome>;
  /** The control address each grouped agent is sent through. */
  gatewayOf: Map<string, string>;
}

/** What an agent of `task` is sent: its merged config, the task, or the control code. */
export function commandFor(task: TaskItem, base: CommandBody, config: ConfigMsg[] | undefined): CommandBody {
  if (task.taskType === 'Agent_Config') return { config: config ?? [] };
  if (task.taskType === 'Agent_Task') return { task: { ...base.task! } };
  return { agent_ctrl: base.agent_ctrl ?? 0 };
}

/**
 * The control address to reach an agent through, or undefined when it is offline. A gateway that
 * stopped publishing its aggregate is gone (its agents will reconnect elsewhere): retry later
 * rather than wait for a connect timeout to a dead address.
 */
function addressOf(
  agent: AgentPlacement | undefined,
  gateways: ReadonlyMap<string, GatewayInfo>,
): string | undefined {
  const info = agent?.gateway ? gateways.get(agent.gateway) : undefined;
  if (agent?.online !== true || info?.alive === false) return undefined;
  return agent.controlAddr ?? info?.controlAddr;
}

export function groupByGateway(
  task: TaskItem,
  todo: readonly SubtaskItem[],
  where: { agents: ReadonlyMap<string, AgentPlacement>; gateways: ReadonlyMap<string, GatewayInfo> },
  what: { base: CommandBody; configs: Map<string, ConfigMsg[]> | undefined },
): DeliveryPlan {
  const offline = new Map<string, Outcome>();
  const gatewayOf = new Map<string, string>();
  const groups = new Map<string, DeliveryGroup>();
  for (const s of todo) {
    const addr = addressOf(where.agents.get(s.agentId), where.gateways);
    if (!addr) {
      offline.set(s.agentId, { kind: 'failed', reason: 'offline' });
      continue;
    }
    gatewayOf.set(s.agentId, addr);
    const command = commandFor(task, what.base, what.configs?.get(s.agentId));
    const key = `${addr}\u0000${JSON.stringify(command)}`;
    const group = groups.get(key);
    if (group) group.agents.push(s);
    else groups.set(key, { addr, command, agents: [s] });
  }
  return { groups: [...groups.values()], offline, gatewayOf };
}
