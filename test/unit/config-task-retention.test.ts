/** FLEETGATE_TASK_RETENTION_DAYS: default 30, an integer ≥ 1, documented (ENV_DOC and docs/environment.md). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ConfigError, ENV_DOC, loadConfig } from '../../platform/config/env.js';

test('FLEETGATE_TASK_RETENTION_DAYS: default 30, a positive integer, documented', () => {
  const base = { FLEETGATE_ADVERTISE_HOST: '127.0.0.1' };
  assert.equal(loadConfig(base).taskRetentionDays, 30);
  assert.equal(loadConfig({ ...base, FLEETGATE_TASK_RETENTION_DAYS: '7' }).taskRetentionDays, 7);
  for (const bad of ['0', '-1', '2.5', 'week']) {
    assert.throws(
      () => loadConfig({ ...base, FLEETGATE_TASK_RETENTION_DAYS: bad }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.some((p) => p.startsWith(`FLEETGATE_TASK_RETENTION_DAYS=${bad}`)),
    );
  }
  assert.ok(ENV_DOC.some(([name]) => name === 'FLEETGATE_TASK_RETENTION_DAYS'));
  const doc = readFileSync(new URL('../../docs/environment.md', import.meta.url), 'utf8');
  assert.match(doc, /`FLEETGATE_TASK_RETENTION_DAYS` \| `30` \|/);
});
