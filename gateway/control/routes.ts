/**
 * The AgentCenter control API (Elkeid §2.12) as runtime-agnostic routes over the session
 * registry: `/conn/stat|list|count|reset`, `/command` (and `/command/`), plus a batch form of
 * `/command` for the manager's fan-out (with per-agent task tokens and the delivery guard's fence
 * and de-duplication checks). All of them AK/SK-signed.
 */

import { fail, ok } from '../../platform/http/envelope.js';
import type { HttpRequest, Route } from '../../platform/http/types.js';
import type { DeliveryResult, SessionRegistry } from '../agent/sessions.js';
import { type BatchResult, COMMAND_BATCH_PATH, type CommandBatchAnswer } from './command-batch-contract.js';
import { CommandJsonError, commandFromJson } from './command-json.js';
import type { DeliveryGuard } from './delivery-guard.js';

/** A bound on one batch request, so one call cannot hold the event loop for long. */
export const MAX_BATCH_AGENTS = 10_000;

const ELKEID_ERRORS: Record<Exclude<DeliveryResult, 'sent'>, string> = {
  not_connected: 'agentID not found',
  queue_full: 'the sendPool of the agent is full',
  timed_out: 'the command has been sent but get results timed out',
  closed: 'the connection closed before the command was sent',
  too_large: 'the command is larger than the agent accepts (4 MiB)',
  empty_command:
    'a command needs a task or a config (stock agents read an empty one as: uninstall every plugin)',
};

function parseBody(req: HttpRequest): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(req.body.toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const isIdList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

export type { BatchResult };

export function controlRoutes(sessions: SessionRegistry, guard?: DeliveryGuard): Route[] {
  return [
    {
      method: 'GET',
      path: '/conn/stat',
      auth: 'aksk',
      handler: () => ok([...sessions.all()].map((s) => s.stat())),
    },
    { method: 'GET', path: '/conn/list', auth: 'aksk', handler: () => ok(sessions.ids()) },
    { method: 'GET', path: '/conn/count', auth: 'aksk', handler: () => ok(sessions.size) },
    {
      method: 'POST',
      path: '/conn/reset',
      auth: 'aksk',
      handler: (req) => {
        const body = parseBody(req);
        if (!body || typeof body.type !== 'string') return fail(2, 'type is required');
        const detail: Record<string, string> = {};
        // Elkeid answers `count` = the number of IDs it was asked to reset (its id list), not
        // the number found.
        let asked = 0;
        if (body.type === 'random') {
          const count = body.count;
          if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) {
            return fail(2, 'count must be a non-negative integer');
          }
          const picked = sessions.ids().slice(0, count);
          asked = picked.length;
          for (const id of picked) detail[id] = sessions.close(id) ? 'ok' : 'agentID not found';
        } else if (body.type === 'strict') {
          if (!isIdList(body.id_list)) return fail(2, 'id_list must be an array of agent IDs');
          asked = body.id_list.length;
          for (const id of body.id_list) detail[id] = sessions.close(id) ? 'ok' : 'agentID not found';
        } else {
          return fail(2, `unknown type ${JSON.stringify(body.type).slice(0, 40)}`);
        }
        return ok({ count: asked, detail });
      },
    },
    {
      method: 'POST',
      path: '/command',
      auth: 'aksk',
      handler: async (req) => {
        const body = parseBody(req);
        if (!body || typeof body.agent_id !== 'string' || body.command === undefined) {
          return fail(2, 'agent_id and command are required');
        }
        let command: ReturnType<typeof commandFromJson>;
        try {
          command = commandFromJson(body.command);
        } catch (err) {
          if (err instanceof CommandJsonError) return fail(2, err.message);
          throw err;
        }
        const result = await sessions.send(body.agent_id, command);
        return result === 'sent' ? ok('') : fail(3, ELKEID_ERRORS[result]);
      },
    },
    {
      method: 'POST',
      path: COMMAND_BATCH_PATH,
      auth: 'aksk',
      handler: async (req) => {
        // {"agent_ids":[...],"command":{...},"tokens"?:{agent:token},"fence"?:{"key","version"}}:
        // one command to many agents. With `tokens`, each agent's command carries its own task
        // token (when the command has a task) and the delivery guard refuses re-sends; with
        // `fence`, a dispatcher whose chunk lease was taken over is refused (delivery-guard.ts).
        const body = parseBody(req);
        if (!body || !isIdList(body.agent_ids) || body.command === undefined) {
          return fail(2, 'agent_ids (array of strings) and command are required');
        }
        if (body.agent_ids.length > MAX_BATCH_AGENTS) {
          return fail(2, `at most ${MAX_BATCH_AGENTS} agent_ids per request`);
        }
        let command: ReturnType<typeof commandFromJson>;
        try {
          command = commandFromJson(body.command);
        } catch (err) {
          if (err instanceof CommandJsonError) return fail(2, err.message);
          throw err;
        }
        const tokens = body.tokens;
        if (
          tokens !== undefined &&
          (typeof tokens !== 'object' ||
            tokens === null ||
            Array.isArray(tokens) ||
            !Object.values(tokens).every((v) => typeof v === 'string'))
        ) {
          return fail(2, 'tokens must be an object of agent id to token');
        }
        const fence = body.fence as { key?: unknown; version?: unknown } | undefined;
        if (
          fence !== undefined &&
          (typeof fence !== 'object' ||
            fence === null ||
            typeof fence.key !== 'string' ||
            typeof fence.version !== 'number')
        ) {
          return fail(2, 'fence must be {"key": string, "version": number}');
        }
        const results = new Map<string, BatchResult>();
        const count = () => {
          const answer: CommandBatchAnswer = { results: Object.fromEntries(results), counts: {} };
          for (const r of results.values()) answer.counts[r] = (answer.counts[r] ?? 0) + 1;
          return ok(answer);
        };
        if (fence && guard && !guard.fences.admit(fence.key as string, fence.version as number)) {
          for (const id of body.agent_ids) results.set(id, 'fenced');
          return count();
        }
        const tokenOf = (id: string) => (tokens as Record<string, string> | undefined)?.[id];
        // Agents whose token this gateway already sent on their current stream, or already saw
        // answered, are not sent again.
        const reserved: string[] = [];
        const plain: string[] = [];
        for (const id of body.agent_ids) {
          const token = tokenOf(id);
          if (token === undefined || token === '' || !guard) {
            plain.push(id);
            continue;
          }
          const session = sessions.get(id);
          if (guard.answered(id, token)) results.set(id, 'duplicate');
          else if (!session) results.set(id, 'not_connected');
          else if (!guard.reserve(id, token, session)) results.set(id, 'duplicate');
          else reserved.push(id);
        }
        const perAgentToken = command.Task !== undefined && command.Task !== null && tokens !== undefined;
        const sendGroup = async (ids: string[], withToken: boolean) => {
          if (ids.length === 0) return;
          if (withToken) {
            await Promise.all(
              ids.map(async (id) => {
                const r = await sessions.send(id, {
                  ...command,
                  Task: { ...command.Task, Token: tokenOf(id) ?? command.Task?.Token ?? '' },
                });
                results.set(id, r);
              }),
            );
          } else {
            for (const [id, r] of await sessions.sendMany(ids, command)) results.set(id, r);
          }
        };
        await Promise.all([sendGroup(reserved, perAgentToken), sendGroup(plain, perAgentToken)]);
        for (const id of reserved) {
          if (results.get(id) !== 'sent') guard?.unreserve(id, tokenOf(id) ?? '');
        }
        return count();
      },
    },
  ];
}
