// Writes loadtest/k6/scenario.json from loadtest/sim/scenario.ts (one source for k6 and the simulator).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scenarioJson } from '../loadtest/sim/scenario.js';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(`usage: npm run gen:k6

Writes loadtest/k6/scenario.json (the agent timing, event mix and scenarios that loadtest/k6/agents.js
reads) from loadtest/sim/scenario.ts, the simulator's own definitions. test/unit/k6-scenario.test.ts
fails when the committed file is out of date.`);
} else {
  writeFileSync(join(import.meta.dirname, '..', 'loadtest', 'k6', 'scenario.json'), scenarioJson());
  console.log('wrote loadtest/k6/scenario.json');
}
