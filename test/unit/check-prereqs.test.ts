/** scripts/check-prereqs.mjs, the first step of npm test: one line naming what is missing. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/gateway.js';

/** The script with a PATH holding only node: no java, mvn, go or python3. */
function checkWithOnlyNode(env: Record<string, string> = {}) {
  const bin = mkdtempSync(path.join(os.tmpdir(), 'fg-prereq-'));
  try {
    symlinkSync(process.execPath, path.join(bin, 'node'));
    return spawnSync(path.join(bin, 'node'), ['scripts/check-prereqs.mjs'], {
      cwd: ROOT,
      env: { PATH: bin, ...env },
      encoding: 'utf8',
    });
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}

test('a missing tool is named on one line and fails the run', () => {
  const r = checkWithOnlyNode();
  assert.equal(r.status, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^npm test: missing prerequisites \(README\.md, Prerequisites\): /);
  assert.match(lines[0]!, /Java 17\+ .*: runs the test Kafka broker/);
});

test('Java is not required when the tests are given a broker', () => {
  const r = checkWithOnlyNode({ FLEETGATE_TEST_KAFKA: '127.0.0.1:29092' });
  assert.doesNotMatch(r.stderr, /Java/);
});
