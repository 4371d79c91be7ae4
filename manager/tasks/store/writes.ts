/** Helpers of the repository's writes. */
import { isConditionFailed } from '../../store.js';

/** Runs a conditional write: true when written, false when its condition refused it. */
export async function conditional(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (err) {
    if (isConditionFailed(err)) return false;
    throw err;
  }
}

/** An item as written: only its defined attributes. */
export function definedOnly(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
