/**
 * BatchWriteItem for one table, the one way every module writes in bulk: requests of 25 (the
 * API's limit), `parallel` of them in flight, and the items DynamoDB hands back as unprocessed
 * (throttling, a partition at its limit) sent again after an exponential backoff. Callers differ
 * in how hard to try and what to do with what is left: the manager's writes throw (the caller's
 * request fails and is retried whole), the agent-status writer reschedules the agents left.
 */
import { BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** One PutRequest or DeleteRequest of BatchWriteItem. */
export type WriteRequest =
  | { PutRequest: { Item: Record<string, unknown> } }
  | { DeleteRequest: { Key: Record<string, unknown> } };

export interface BatchWriteOptions {
  /** Requests of 25 in flight at once (default 1: in order). */
  parallel?: number;
  /** Sends of one request of 25, the first included (default 9). */
  maxAttempts?: number;
  /** Backoff before attempt n (n ≥ 1): min(maxDelayMs, baseDelayMs × 2^n) (defaults 25, 1,000 ms). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** After each send: how many requests it carried and how many came back unprocessed. */
  onSend?: (sent: number, unprocessed: number) => void;
}

/** The size of one BatchWriteItem request. */
export const BATCH_WRITE_MAX = 25;

/**
 * Writes `requests` to `table`; resolves with the requests still unprocessed after `maxAttempts`
 * sends of their group (empty when all were written). Errors of a send reject.
 */
export async function batchWrite(
  doc: Pick<DynamoDBDocumentClient, 'send'>,
  table: string,
  requests: readonly WriteRequest[],
  o: BatchWriteOptions = {},
): Promise<WriteRequest[]> {
  const maxAttempts = o.maxAttempts ?? 9;
  const base = o.baseDelayMs ?? 25;
  const maxDelay = o.maxDelayMs ?? 1000;
  const groups: WriteRequest[][] = [];
  for (let i = 0; i < requests.length; i += BATCH_WRITE_MAX)
    groups.push(requests.slice(i, i + BATCH_WRITE_MAX));
  const left: WriteRequest[] = [];
  let next = 0;
  const worker = async () => {
    while (next < groups.length) {
      let pending = groups[next++]!;
      for (let attempt = 0; pending.length > 0 && attempt < maxAttempts; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(maxDelay, base * 2 ** attempt)));
        const r = await doc.send(new BatchWriteCommand({ RequestItems: { [table]: pending } }));
        const unprocessed = (r.UnprocessedItems?.[table] ?? []) as WriteRequest[];
        o.onSend?.(pending.length, unprocessed.length);
        pending = unprocessed;
      }
      left.push(...pending);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.parallel ?? 1, groups.length)) }, worker));
  return left;
}

/** batchWrite that fails when anything is left unprocessed, with `what` in the message. */
export async function batchWriteAll(
  doc: Pick<DynamoDBDocumentClient, 'send'>,
  table: string,
  requests: readonly WriteRequest[],
  what: string,
  o: BatchWriteOptions = {},
): Promise<void> {
  const left = await batchWrite(doc, table, requests, o);
  if (left.length > 0)
    throw new Error(
      `${what}: ${left.length} of ${requests.length} writes left unprocessed by BatchWriteItem`,
    );
}
