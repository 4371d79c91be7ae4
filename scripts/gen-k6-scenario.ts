// Writes loadtest/k6/scenario.json from loadtest/sim/scenario.ts (one source for k6 and the simulator).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scenarioJson } from '../loadtest/sim/scenario.js';

writeFileSync(join(import.meta.dirname, '..', 'loadtest', 'k6', 'scenario.json'), scenarioJson());
console.log('wrote loadtest/k6/scenario.json');
