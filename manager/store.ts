/**
 * What the manager's modules import to reach the store: the handle (store/handle.ts), which they
 * pass to the repository functions under `store/` (the only code that builds DynamoDB commands,
 * with the task engine's own), and a bounded-concurrency map for fan-outs.
 */
export { isConditionFailed } from '../platform/store/errors.js';
export { createManagerStore, type ManagerStore } from './store/handle.js';

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
