/**
 * The `agents` table as the manager reads it (key `agentId`; written by the gateways' status
 * writer, agent-status.ts): one item by key, or every item by Scan for the operator lists.
 */
import { GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { ManagerStore } from './handle.js';
import { eachPage, startAt } from './pages.js';

/**
 * An agent's status item: its id, and the attributes the status writer puts (gateway, conn,
 * online, stale, state, hbAt, hostname, ipv4, hb…) read as `unknown` and checked where used
 * (agents.ts agentStatus and elkeidDoc).
 */
export type AgentItem = Record<string, unknown> & { agentId: string };

/** Whether a stored item is an agent's (a non-empty `agentId`); checked, not copied (scans are long). */
export function isAgentItem(raw: Record<string, unknown> | undefined): raw is AgentItem {
  return raw !== undefined && typeof raw.agentId === 'string' && raw.agentId !== '';
}

export async function getAgentItem(store: ManagerStore, agentId: string): Promise<AgentItem | undefined> {
  const r = await store.doc.send(new GetCommand({ TableName: store.t.agents, Key: { agentId } }));
  return isAgentItem(r.Item) ? r.Item : undefined;
}

/**
 * Every agent item, page by page (Scan); `visitPage` stops the scan when it returns `false`.
 * Items without an agentId are skipped.
 */
export async function scanAgentItems(
  store: ManagerStore,
  visitPage: (items: AgentItem[]) => Promise<boolean | undefined> | boolean | undefined,
): Promise<void> {
  await eachPage(
    (start) => store.doc.send(new ScanCommand({ TableName: store.t.agents, ...startAt(start) })),
    (page) => {
      const items: AgentItem[] = [];
      for (const raw of page.Items ?? []) {
        if (isAgentItem(raw)) items.push(raw);
      }
      return visitPage(items);
    },
  );
}
