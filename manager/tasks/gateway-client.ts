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
import { signRequest } from '../../platform/http/aksk.js';
import type { CommandBody } from './types.js';

export interface BatchRequest {
  agentIds: string[];
  command: CommandBody;
  tokens?: Record<string, string>;
  fence?: { key: string; version: number };
}

export type CommandBatchFn = (controlAddr: string, req: BatchRequest) => Promise<Map<string, string>>;

export class GatewayCallError extends Error {
  override readonly name = 'GatewayCallError';
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
    const path = '/command/batch';
    const body = JSON.stringify({
      agent_ids: req.agentIds,
      command: req.command,
      ...(req.tokens ? { tokens: req.tokens } : {}),
      ...(req.fence ? { fence: req.fence } : {}),
      request_id: randomUUID(),
    });
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
    let json: { code?: number; msg?: string; data?: { results?: Record<string, string> } };
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      throw new GatewayCallError(`gateway ${controlAddr}: HTTP ${res.status}, not JSON`);
    }
    if (res.status !== 200 || json.code !== 0 || !json.data?.results) {
      throw new GatewayCallError(
        `gateway ${controlAddr}: HTTP ${res.status} code ${json.code} ${json.msg ?? ''}`.trim(),
      );
    }
    return new Map(Object.entries(json.data.results));
  };
}
