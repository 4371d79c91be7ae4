// `node --import ./test/helpers/record-loads.mjs …`: appends the URL of every ES module the
// process loads to the file named by FLEETGATE_RECORD_LOADS (test/unit/architecture.test.ts).
import { register } from 'node:module';

register('./record-loads-hooks.mjs', import.meta.url);
