/**
 * The manager while its store is down: requests answer 503 with the cause in
 * the envelope (retryable), not an opaque 500 "internal error"; they succeed again when the store
 * (a real dynalite, restarted on the same port and data) is back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEmbeddedDynamo } from '../../platform/store/embedded.js';
import { startTestManager } from '../helpers/manager-harness.js';

test('store down: the manager answers 503 with the cause, then recovers', async (t) => {
  const m = await startTestManager(t);
  await m.user('op', 'operator');
  const op = m.token('op');
  assert.equal((await m.call('GET', '/api/v1/getTags', { token: op })).status, 200);

  const port = m.db.dynamo.port;
  await m.db.dynamo.close();
  const down = await m.call('GET', '/api/v1/getTags', { token: op });
  assert.equal(down.status, 503, down.text);
  assert.match(down.text, /store unavailable: /);
  const fleet = await m.call('GET', '/api/fleet/stats', { token: op });
  assert.equal(fleet.status, 503, fleet.text);
  assert.match(fleet.json.message ?? fleet.json.msg ?? fleet.text, /store unavailable/);

  const back = await startEmbeddedDynamo({ dir: m.db.dir, port });
  t.after(() => back.close());
  assert.equal((await m.call('GET', '/api/v1/getTags', { token: op })).status, 200);
});
