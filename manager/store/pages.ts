/**
 * Paging of Query and Scan: DynamoDB answers at most 1 MB per request and a `LastEvaluatedKey`
 * to continue from; every list in the repository reads all pages through here.
 */

/** A primary key (or the position a page ended at). */
export type StoreKey = Record<string, unknown>;

/** What a Query or Scan page carries that the repository reads. */
export interface StorePage {
  Items?: Record<string, unknown>[] | undefined;
  Count?: number | undefined;
  LastEvaluatedKey?: StoreKey | undefined;
}

/** `ExclusiveStartKey` when there is one (DynamoDB refuses an undefined key). */
export function startAt(start: StoreKey | undefined): { ExclusiveStartKey?: StoreKey } {
  return start ? { ExclusiveStartKey: start } : {};
}

/**
 * Sends `read(start)` page after page until the last one; `visit` sees each page and stops the
 * reading when it returns `false`.
 */
export async function eachPage(
  read: (start: StoreKey | undefined) => Promise<StorePage>,
  visit: (page: StorePage) => unknown,
): Promise<void> {
  let start: StoreKey | undefined;
  do {
    const page = await read(start);
    if ((await visit(page)) === false) return;
    start = page.LastEvaluatedKey;
  } while (start);
}

/** Every item of every page. */
export async function allItems(
  read: (start: StoreKey | undefined) => Promise<StorePage>,
): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  await eachPage(read, (page) => {
    out.push(...(page.Items ?? []));
  });
  return out;
}

/** The string attribute `key` of an item, '' when it is not a string. */
export function stringAttr(item: Record<string, unknown>, key: string): string {
  const v = item[key];
  return typeof v === 'string' ? v : '';
}

/** The number attribute `key` of an item, undefined when it is not a number. */
export function numberAttr(item: Record<string, unknown>, key: string): number | undefined {
  const v = item[key];
  return typeof v === 'number' ? v : undefined;
}
