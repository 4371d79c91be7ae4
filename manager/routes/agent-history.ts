/**
 * An agent's history for the console's agent page: `GET /api/fleet/agents/:id/tasks` (the newest
 * tasks that targeted it, each with its state and result there) and
 * `GET /api/fleet/agents/:id/connections` (its connects and disconnects: gateway, address, time).
 * Both read bounded pages (`?limit=`, at most 100) through repository functions in manager/store/.
 */
import type { ManagerDeps } from '../deps.js';
import { apiOk } from '../envelope.js';
import { badRequest, type Ctx, HttpError, type ManagerRoute } from '../router.js';
import { recentTasksOf } from '../store/agent-tasks-store.js';
import { connectionHistoryOf } from '../store/connection-history-store.js';

const AGENT_ID = /^[\x21-\x7e]{1,128}$/;
export const MAX_HISTORY_PAGE = 100;

function agentIdOf(ctx: Ctx): string {
  const id = ctx.params.id ?? '';
  if (!AGENT_ID.test(id)) throw badRequest('agent id is not valid');
  return id;
}

function limitOf(ctx: Ctx): number {
  const raw = ctx.query.get('limit');
  if (raw === null) return 20;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_HISTORY_PAGE) {
    throw badRequest(`limit must be an integer from 1 to ${MAX_HISTORY_PAGE}`);
  }
  return n;
}

/** A store created before this index or table existed answers ValidationException / ResourceNotFound. */
function missingStorage(err: unknown, what: string): never {
  const name = (err as { name?: string } | null)?.name;
  if (name === 'ValidationException' || name === 'ResourceNotFoundException') {
    throw new HttpError(
      503,
      1,
      `${what} is not in this store (created by an older fleetgate): create the table or index the schema defines`,
      'unavailable',
    );
  }
  throw err;
}

export function agentHistoryRoutes(deps: ManagerDeps): ManagerRoute[] {
  return [
    {
      method: 'GET',
      path: '/api/fleet/agents/:id/tasks',
      access: 'read',
      api: 'fleet',
      summary: 'the newest tasks that targeted an agent, with its state and result in each: ?limit= (≤ 100)',
      async handler(ctx) {
        const id = agentIdOf(ctx);
        const items = await recentTasksOf(deps.store, id, limitOf(ctx)).catch((err: unknown) =>
          missingStorage(err, "the subtasks table's byAgent index"),
        );
        return apiOk({ agent_id: id, items });
      },
    },
    {
      method: 'GET',
      path: '/api/fleet/agents/:id/connections',
      access: 'read',
      api: 'fleet',
      summary: "an agent's connects and disconnects, newest first: ?limit= (≤ 100)",
      async handler(ctx) {
        const id = agentIdOf(ctx);
        const items = await connectionHistoryOf(deps.store, id, limitOf(ctx), deps.now()).catch(
          (err: unknown) => missingStorage(err, 'the connections table'),
        );
        return apiOk({ agent_id: id, items });
      },
    },
  ];
}
