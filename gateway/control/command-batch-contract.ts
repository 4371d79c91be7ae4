/**
 * The contract of `POST /command/batch` between the manager (the sender, manager/tasks/
 * gateway-client.ts) and the gateway's control API (routes.ts): the request body, the answer,
 * and the per-agent results. Both sides import these types, so a result added on one side is a
 * compile error on the other until it is handled; what arrives over the wire is still checked
 * (`isBatchResult`), since the two sides may run different versions.
 */
import type { DeliveryResult } from '../agent/sessions.js';

export const COMMAND_BATCH_PATH = '/command/batch';

/** One agent's outcome in a batch: a delivery result, or refused by the delivery guard. */
export type BatchResult = DeliveryResult | 'fenced' | 'duplicate';

/** Every BatchResult, for checking what comes over the wire. */
export const BATCH_RESULTS = [
  'sent',
  'not_connected',
  'queue_full',
  'timed_out',
  'closed',
  'too_large',
  'empty_command',
  'fenced',
  'duplicate',
] as const satisfies readonly BatchResult[];

// A BatchResult missing from BATCH_RESULTS fails to compile here.
type Unlisted = Exclude<BatchResult, (typeof BATCH_RESULTS)[number]>;
const everyResultListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyResultListed;

const RESULT_SET: ReadonlySet<string> = new Set(BATCH_RESULTS);

export function isBatchResult(v: unknown): v is BatchResult {
  return typeof v === 'string' && RESULT_SET.has(v);
}

/** The request body (JSON). `command` is the gateway control API's command JSON (command-json.ts). */
export interface CommandBatchRequest {
  agent_ids: string[];
  command: unknown;
  /** Agent id → task token: the gateway sends each agent its own and de-duplicates by it. */
  tokens?: Record<string, string>;
  /** The sender's lease on the work: a gateway refuses a fence lower than one it has seen for `key`. */
  fence?: { key: string; version: number };
  /** Random per request, so that two identical batches never sign to the same bytes. */
  request_id?: string;
}

/** The answer's `data` (in the control API's envelope `{code: 0, msg, data}`). */
export interface CommandBatchAnswer {
  results: Record<string, BatchResult>;
  /** How many agents got each result. */
  counts: Partial<Record<BatchResult, number>>;
}
