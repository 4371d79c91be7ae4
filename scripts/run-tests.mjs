// Runs every node:test file under test/ (Node 20's --test does not expand globs).
// Usage: node scripts/run-tests.mjs [unit|integration|<path fragment>...]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.ts') ? [p] : [];
  });
}
const filters = process.argv.slice(2);
if (filters.includes('--help')) {
  console.log(
    'usage: node scripts/run-tests.mjs [filter...]   (filters match test file paths, e.g. unit, integration, grpc)',
  );
  process.exit(0);
}
const files = walk(join(root, 'test'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
console.log(`running ${files.length} test files`);
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, FLEETGATE_LOG_LEVEL: process.env.FLEETGATE_LOG_LEVEL ?? 'silent' },
  },
);
process.exit(r.status ?? 1);
