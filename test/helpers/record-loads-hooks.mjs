// Module loader hooks of record-loads.mjs (they run on the loader thread). Registered after tsx,
// they run before it in the chain, and `load` sees the URL the resolve chain settled on.
import { appendFileSync } from 'node:fs';

export async function load(url, context, nextLoad) {
  const file = process.env.FLEETGATE_RECORD_LOADS;
  if (file) appendFileSync(file, `${url}\n`);
  return nextLoad(url, context);
}
