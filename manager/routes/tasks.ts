/**
 * Task routes over the engine's TaskService (tasks/types.ts): Elkeid's v1 endpoints
 * (tasks-v1.ts) and our own `/api/fleet/tasks…` (tasks-fleet.ts). Their input checking is
 * task-input.ts; the engine calls and the error mapping task-engine-calls.ts.
 *
 * Engine errors map to codes: validation → 5 param invalid (the fan-out guard says how to confirm),
 * not found → 6, wrong state → 3 (v1; HTTP 200 with the envelope) or 400/404/409 (fleet).
 * Pages are capped at 500 items; filtered listings examine at most MAX_FILTER_SCAN items.
 */
import type { ManagerDeps } from '../deps.js';
import type { ManagerRoute } from '../router.js';
import { fleetTaskRoutes } from './tasks-fleet.js';
import { elkeidTaskRoutes } from './tasks-v1.js';

export {
  type CreateAction,
  createInput,
  MAX_FILTER_SCAN,
  MAX_ID_LIST_BYTES,
  MAX_RESULT_ITEMS,
  MAX_TASK_PAGE_SIZE,
  resultItems,
  taskIdOfFilter,
} from './task-input.js';

export function taskRoutes(deps: ManagerDeps): ManagerRoute[] {
  return [...elkeidTaskRoutes(deps), ...fleetTaskRoutes(deps)];
}
