/** Gateway admission variables: FLEETGATE_SHED_RATE, FLEETGATE_SHED_ORDER, FLEETGATE_MAX_PENDING_HANDSHAKES, FLEETGATE_AGGREGATE_MS: defaults, values, errors reported at once. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, ENV_DOC, loadConfig } from '../../platform/config/env.js';

test('load-control variables: defaults, values, validation, documented', () => {
  const base = { FLEETGATE_ADVERTISE_HOST: '127.0.0.1' };
  const d = loadConfig(base);
  assert.deepEqual([d.shedRate, d.shedOrder], [50, 'oldest']);
  const set = loadConfig({ ...base, FLEETGATE_SHED_RATE: '5', FLEETGATE_SHED_ORDER: 'random' });
  assert.deepEqual([set.shedRate, set.shedOrder], [5, 'random']);
  assert.throws(
    () => loadConfig({ ...base, FLEETGATE_SHED_RATE: '0', FLEETGATE_SHED_ORDER: 'newest' }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.problems.some((p) => p.startsWith('FLEETGATE_SHED_RATE=0')) &&
      err.problems.some((p) => p.startsWith('FLEETGATE_SHED_ORDER=newest')),
  );
  assert.throws(() => loadConfig({ ...base, FLEETGATE_SHED_RATE: 'fast' }), ConfigError);
  const documented = new Set(ENV_DOC.map(([name]) => name));
  assert.ok(documented.has('FLEETGATE_SHED_RATE') && documented.has('FLEETGATE_SHED_ORDER'));
});

test('FLEETGATE_MAX_PENDING_HANDSHAKES: default 512, a positive integer, documented', () => {
  const base = { FLEETGATE_ADVERTISE_HOST: '127.0.0.1' };
  assert.equal(loadConfig(base).maxPendingHandshakes, 512);
  assert.equal(loadConfig({ ...base, FLEETGATE_MAX_PENDING_HANDSHAKES: '64' }).maxPendingHandshakes, 64);
  assert.throws(
    () => loadConfig({ ...base, FLEETGATE_MAX_PENDING_HANDSHAKES: '0' }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.problems.some((p) => p.startsWith('FLEETGATE_MAX_PENDING_HANDSHAKES=0')),
  );
  assert.ok(ENV_DOC.some(([name]) => name === 'FLEETGATE_MAX_PENDING_HANDSHAKES'));
});

test('FLEETGATE_AGGREGATE_MS: default 30 s, 100 ms to 30 s, documented', () => {
  const base = { FLEETGATE_ADVERTISE_HOST: '127.0.0.1' };
  assert.equal(loadConfig(base).aggregateMs, 30_000);
  assert.equal(loadConfig({ ...base, FLEETGATE_AGGREGATE_MS: '500' }).aggregateMs, 500);
  assert.equal(loadConfig({ ...base, FLEETGATE_AGGREGATE_MS: '30000' }).aggregateMs, 30_000);
  for (const bad of ['99', '30001', '60000', '1s']) {
    assert.throws(
      () => loadConfig({ ...base, FLEETGATE_AGGREGATE_MS: bad }),
      (err: unknown) =>
        err instanceof ConfigError && err.problems.some((p) => p.startsWith(`FLEETGATE_AGGREGATE_MS=${bad}`)),
      bad,
    );
  }
  assert.ok(ENV_DOC.some(([name]) => name === 'FLEETGATE_AGGREGATE_MS'));
});
