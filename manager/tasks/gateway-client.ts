/**
 * The manager's call to a gateway's control API: one signed `POST /command/batch` per (gateway,
 * command) group. Elkeid's manager posts `/command` once per agent (§4.5 step 4); a batch costs
 * one request and one signature for up to a chunk of agents.
 *
 * Every body carries a random `request_id`: the gateway's AK/SK verifier refuses a signature it
 * has already accepted (replay protection), and a retry of the same batch in the same second
 * would otherwise sign to the same bytes.
 */
import { randomUUID } from 'node:crypto';
import {
  type BatchResult,
  COMMAND_BATCH_PATH,
  type CommandBatchRequest,
  isBatchResult,
} from '../../gateway/control/command-batch-contract.js';
import { signRequest } from '../../platform/http/aksk.js';
import type { CommandBody } from './types.js';

export type { BatchResult };

export interface BatchRequest {
  agentIds: string[];
  command: CommandBody;
  tokens?: Record<string, string>;
  fence?: { key: string; version: number };
}

export type CommandBatchFn = (controlAddr: string, req: BatchRequest) => Promise<Map<string, BatchResult>>;

export class GatewayCallError extends Error {
  override readonly name = 'GatewayCallError';
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The per-agent results of a `/command/batch` answer (the parsed JSON body, the control API's
 * envelope), checked against the contract: anything else — a failure envelope, no results, a
 * result the contract does not know — is a GatewayCallError that says what was wrong.
 */
export function parseBatchAnswer(
  controlAddr: string,
  status: number,
  json: unknown,
): Map<string, BatchResult> {
  const where = `gateway ${controlAddr}`;
  const envelope = isRecord(json) ? json : {};
  if (status !== 200 || envelope.code !== 0) {
    const msg = typeof envelope.msg === 'string' ? envelope.msg : '';
    throw new GatewayCallError(`${where}: HTTP ${status} code ${String(envelope.code)} ${msg}`.trim());
  }
  const results = isRecord(envelope.data) ? envelope.data.results : undefined;
  if (!isRecord(results)) throw new GatewayCallError(`${where}: malformed batch answer: no results object`);
  const out = new Map<string, BatchResult>();
  for (const [agentId, result] of Object.entries(results)) {
    if (!isBatchResult(result)) {
      throw new GatewayCallError(
        `${where}: malformed batch answer: result of ${JSON.stringify(agentId.slice(0, 64))} is ${JSON.stringify(result)?.slice(0, 64)}, not one of the contract's results`,
      );
    }
    out.set(agentId, result);
  }
  return out;
}

/**
 * The longest one gateway call waits by default (Elkeid's 15 s). The engine's dispatcher never
 * exceeds it, and the dispatcher Lambda stops starting ticks this long (plus a margin) before its
 * invocation ends (dispatcher-lambda.ts DEFAULT_RESERVE_MS).
 */
export const GATEWAY_CALL_TIMEOUT_MS = 15_000;

export function createGatewayClient(o: {
  aksk: ReadonlyArray<readonly [string, string]>;
  /** Default GATEWAY_CALL_TIMEOUT_MS. */
  timeoutMs?: number;
}): CommandBatchFn {
  const pair = o.aksk[0];
  const timeoutMs = o.timeoutMs ?? GATEWAY_CALL_TIMEOUT_MS;
  return async (controlAddr, req) => {
    if (!pair) throw new GatewayCallError('no AK/SK configured for gateway calls');
    const [ak, sk] = pair;
    const path = COMMAND_BATCH_PATH;
    const wire: CommandBatchRequest = {
      agent_ids: req.agentIds,
      command: req.command,
      ...(req.tokens ? { tokens: req.tokens } : {}),
      ...(req.fence ? { fence: req.fence } : {}),
      request_id: randomUUID(),
    };
    const body = JSON.stringify(wire);
    let res: Response;
    try {
      res = await fetch(`http://${controlAddr}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...signRequest({ method: 'POST', path, query: '', body, ak, sk }),
        },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new GatewayCallError(`gateway ${controlAddr}: ${(err as Error).message}`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new GatewayCallError(`gateway ${controlAddr}: HTTP ${res.status}, not JSON`);
    }
    return parseBatchAnswer(controlAddr, res.status, json);
  };
}
