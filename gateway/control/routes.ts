/**
 * The AgentCenter control API (Elkeid §2.12) as runtime-agnostic routes over the session
 * registry: `/conn/stat|list|count|reset`, `/command` (and `/command/`), plus a batch form of
 * `/command` for the manager's fan-out (with per-agent task tokens and the delivery guard's fence
 * and de-duplication checks). All of them AK/SK-signed.
 */

import { fail, ok } from '../../platform/http/envelope.js';
import type { HttpRequest, HttpResponse, Route } from '../../platform/http/types.js';
import type { grpc } from '../../proto/gen/elkeid.js';
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
    { method: 'GET', path: '/conn/stat', auth: 'aksk', handler: () => connStat(sessions) },
    { method: 'GET', path: '/conn/list', auth: 'aksk', handler: () => ok(sessions.ids()) },
    { method: 'GET', path: '/conn/count', auth: 'aksk', handler: () => ok(sessions.size) },
    { method: 'POST', path: '/conn/reset', auth: 'aksk', handler: (req) => connReset(sessions, req) },
    { method: 'POST', path: '/command', auth: 'aksk', handler: (req) => sendCommand(sessions, req) },
    {
      method: 'POST',
      path: COMMAND_BATCH_PATH,
      auth: 'aksk',
      handler: (req) => sendCommandBatch(sessions, guard, req),
    },
  ];
}

/** GET /conn/stat: every connected agent's state. */
function connStat(sessions: SessionRegistry): HttpResponse {
  return ok([...sessions.all()].map((session) => session.stat()));
}

/** POST /conn/reset {"type":"random","count":n} | {"type":"strict","id_list":[...]}: closes agents' streams. */
function connReset(sessions: SessionRegistry, req: HttpRequest): HttpResponse {
  const body = parseBody(req);
  if (!body || typeof body.type !== 'string') return fail(2, 'type is required');
  let ids: string[];
  if (body.type === 'random') {
    const count = body.count;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) {
      return fail(2, 'count must be a non-negative integer');
    }
    ids = sessions.ids().slice(0, count);
  } else if (body.type === 'strict') {
    if (!isIdList(body.id_list)) return fail(2, 'id_list must be an array of agent IDs');
    ids = body.id_list;
  } else {
    return fail(2, `unknown type ${JSON.stringify(body.type).slice(0, 40)}`);
  }
  const detail: Record<string, string> = {};
  for (const id of ids) detail[id] = sessions.close(id) ? 'ok' : 'agentID not found';
  // Elkeid answers `count` = the number of IDs it was asked to reset (its id list), not the
  // number found.
  return ok({ count: ids.length, detail });
}

/** What a request parser gives: the parsed value, or the envelope error that refuses the request. */
type Parsed<T> = { value: T } | { refused: HttpResponse };

/** The `command` of a request body as a Command. */
function parseCommand(json: unknown): Parsed<grpc.Command.$Properties> {
  try {
    return { value: commandFromJson(json) };
  } catch (err) {
    if (err instanceof CommandJsonError) return { refused: fail(2, err.message) };
    throw err;
  }
}

/** POST /command {"agent_id","command"}: one command to one agent. */
async function sendCommand(sessions: SessionRegistry, req: HttpRequest): Promise<HttpResponse> {
  const body = parseBody(req);
  if (!body || typeof body.agent_id !== 'string' || body.command === undefined) {
    return fail(2, 'agent_id and command are required');
  }
  const command = parseCommand(body.command);
  if ('refused' in command) return command.refused;
  const result = await sessions.send(body.agent_id, command.value);
  return result === 'sent' ? ok('') : fail(3, ELKEID_ERRORS[result]);
}

/** A checked POST /command/batch body. */
interface CommandBatchRequest {
  agentIds: string[];
  command: grpc.Command.$Properties;
  tokens: Record<string, string> | undefined;
  fence: { key: string; version: number } | undefined;
}

/**
 * {"agent_ids":[...],"command":{...},"tokens"?:{agent:token},"fence"?:{"key","version"}}: one
 * command to many agents. With `tokens`, each agent's command carries its own task token (when
 * the command has a task) and the delivery guard refuses re-sends; with `fence`, a dispatcher
 * whose chunk lease was taken over is refused (delivery-guard.ts).
 */
function parseCommandBatch(req: HttpRequest): Parsed<CommandBatchRequest> {
  const body = parseBody(req);
  if (!body || !isIdList(body.agent_ids) || body.command === undefined) {
    return { refused: fail(2, 'agent_ids (array of strings) and command are required') };
  }
  if (body.agent_ids.length > MAX_BATCH_AGENTS) {
    return { refused: fail(2, `at most ${MAX_BATCH_AGENTS} agent_ids per request`) };
  }
  const command = parseCommand(body.command);
  if ('refused' in command) return command;
  const tokens = body.tokens;
  if (
    tokens !== undefined &&
    (typeof tokens !== 'object' ||
      tokens === null ||
      Array.isArray(tokens) ||
      !Object.values(tokens).every((v) => typeof v === 'string'))
  ) {
    return { refused: fail(2, 'tokens must be an object of agent id to token') };
  }
  const fence = body.fence as { key?: unknown; version?: unknown } | undefined;
  if (
    fence !== undefined &&
    (typeof fence !== 'object' ||
      fence === null ||
      typeof fence.key !== 'string' ||
      typeof fence.version !== 'number')
  ) {
    return { refused: fail(2, 'fence must be {"key": string, "version": number}') };
  }
  return {
    value: {
      agentIds: body.agent_ids,
      command: command.value,
      tokens: tokens as Record<string, string> | undefined,
      fence: fence as { key: string; version: number } | undefined,
    },
  };
}

/** POST /command/batch: one command to many agents, with the delivery guard's checks. */
async function sendCommandBatch(
  sessions: SessionRegistry,
  guard: DeliveryGuard | undefined,
  req: HttpRequest,
): Promise<HttpResponse> {
  const parsed = parseCommandBatch(req);
  if ('refused' in parsed) return parsed.refused;
  const request = parsed.value;
  const results = new Map<string, BatchResult>();
  if (request.fence && guard && !guard.fences.admit(request.fence.key, request.fence.version)) {
    for (const id of request.agentIds) results.set(id, 'fenced');
    return batchAnswer(results);
  }
  const { reserved, plain } = reserveTokens(sessions, guard, request, results);
  const perAgentToken =
    request.command.Task !== undefined && request.command.Task !== null && request.tokens !== undefined;
  await Promise.all([
    sendGroup(sessions, request, reserved, perAgentToken, results),
    sendGroup(sessions, request, plain, perAgentToken, results),
  ]);
  for (const id of reserved) {
    if (results.get(id) !== 'sent') guard?.unreserve(id, request.tokens?.[id] ?? '');
  }
  return batchAnswer(results);
}

/**
 * Splits the batch's agents into those whose token the guard reserved now and those sent without
 * the guard (no token, or no guard). Agents whose token this gateway already sent on their
 * current stream, or already saw answered, are not sent again: their result is set here.
 */
function reserveTokens(
  sessions: SessionRegistry,
  guard: DeliveryGuard | undefined,
  request: CommandBatchRequest,
  results: Map<string, BatchResult>,
): { reserved: string[]; plain: string[] } {
  const reserved: string[] = [];
  const plain: string[] = [];
  for (const id of request.agentIds) {
    const token = request.tokens?.[id];
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
  return { reserved, plain };
}

/** Sends the batch's command to `ids`, each with its own task token when `withToken`. */
async function sendGroup(
  sessions: SessionRegistry,
  request: CommandBatchRequest,
  ids: string[],
  withToken: boolean,
  results: Map<string, BatchResult>,
): Promise<void> {
  if (ids.length === 0) return;
  const { command } = request;
  if (!withToken) {
    for (const [id, result] of await sessions.sendMany(ids, command)) results.set(id, result);
    return;
  }
  await Promise.all(
    ids.map(async (id) => {
      const result = await sessions.send(id, {
        ...command,
        Task: { ...command.Task, Token: request.tokens?.[id] ?? command.Task?.Token ?? '' },
      });
      results.set(id, result);
    }),
  );
}

function batchAnswer(results: Map<string, BatchResult>): HttpResponse {
  const answer: CommandBatchAnswer = { results: Object.fromEntries(results), counts: {} };
  for (const result of results.values()) answer.counts[result] = (answer.counts[result] ?? 0) + 1;
  return ok(answer);
}
