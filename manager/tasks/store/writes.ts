/** Helpers of the repository's writes. */
export { conditional } from '../../../platform/store/errors.js';

/** An item as written: only its defined attributes. */
export function definedOnly(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
