/** FLEETGATE_SHED_RATE and FLEETGATE_SHED_ORDER: defaults, valid values, every error reported at once. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, ENV_DOC, loadConfig } from '../../gateway/config/env.js';

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
