/**
 * The Elkeid-compatible v1 agent endpoints (docs/elkeid-protocol.md §4.4) that do not need task
 * dispatch, with Elkeid's envelope, codes, paging and filter JSON, so existing scripts keep
 * working. Differences, all toward safety: every route needs credentials (Elkeid leaves
 * getConfig/:id and queryInfo open; here a gateway signs them with AK/SK), tags are refused when
 * they contain a comma, and a plugin name must match `^[a-z0-9_-]+$`.
 *
 * Task routes (createTask/*, controlTask, quickTask, getTask, getSubTask, getJob,
 * updateSubTask) are in routes/tasks.ts.
 *
 * Parts: elkeid-users.ts (sign-in), elkeid-agents.ts (getStatus), elkeid-configs.ts (configs
 * and the AgentCenter callbacks), elkeid-tags.ts (tags); shared checks in elkeid-http.ts.
 */
import type { ManagerDeps } from '../deps.js';
import type { ManagerRoute } from '../router.js';
import { elkeidAgentRoutes } from './elkeid-agents.js';
import { elkeidConfigRoutes } from './elkeid-configs.js';
import { elkeidTagRoutes } from './elkeid-tags.js';
import { elkeidUserRoutes } from './elkeid-users.js';

export { actor, MAX_ID_LIST } from './elkeid-http.js';

export function elkeidRoutes(deps: ManagerDeps): ManagerRoute[] {
  return [
    ...elkeidUserRoutes(deps),
    ...elkeidAgentRoutes(deps),
    ...elkeidConfigRoutes(deps),
    ...elkeidTagRoutes(deps),
  ];
}
