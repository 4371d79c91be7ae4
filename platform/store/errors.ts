/**
 * What a DynamoDB error means to the caller. A conditional write that found the item in another
 * state (`ConditionExpression` false) is an outcome, not a failure: the repository functions
 * turn it into a result (`false`, "superseded", "not found").
 */

/** True when `err` is DynamoDB's answer to a condition that did not hold. */
export function isConditionFailed(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  return (err as { name?: unknown }).name === 'ConditionalCheckFailedException';
}

/**
 * Runs a conditional write: true when written, false when its condition refused it (any other
 * error is thrown). The one place a repository turns a refused condition into a result.
 */
export async function conditional(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (err) {
    if (isConditionFailed(err)) return false;
    throw err;
  }
}
