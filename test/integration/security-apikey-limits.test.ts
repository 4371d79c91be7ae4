/**
 * Issue 14, item 9: a user cannot multiply its rate limit by minting API keys. Keys per user are
 * capped, and calls with any of a user's keys (or its session) draw from one bucket, the user's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_KEYS_PER_USER } from '../../manager/apikeys.js';
import { startTestManager } from '../helpers/manager-harness.js';

test('API keys per user are capped; requests over several keys share the user’s rate limit', async (t) => {
  const m = await startTestManager(t, { api: { rateLimit: { ratePerSecond: 0.01, burst: 30 } } });
  const viewer = await m.user('viewer1', 'viewer');
  const keys: string[] = [];
  for (let i = 0; i < MAX_KEYS_PER_USER; i++) {
    const r = await m.call('POST', '/api/fleet/apikeys', { token: viewer, body: { name: `k${i}` } });
    assert.equal(r.status, 201, r.text);
    keys.push(r.json.key);
  }
  const over = await m.call('POST', '/api/fleet/apikeys', { token: viewer, body: { name: 'one-too-many' } });
  assert.equal(over.status, 409, over.text);
  assert.match(over.json.message, /at most 10 API keys per user/);

  // The bucket is 30 (the key creations above took 11 of it): every key, the same bucket.
  const statuses: number[] = [];
  for (let i = 0; i < 60; i++) {
    const key = keys[i % 3]!;
    statuses.push((await m.call('GET', '/api/v1/user/info', { token: key })).status);
  }
  const passed = statuses.filter((s) => s === 200).length;
  assert.ok(
    passed <= 30 - 11 + 1,
    `calls over three keys passed ${passed} of 60; the user's bucket holds 30`,
  );
  assert.ok(statuses.includes(429));
  // The user's session is in the same bucket.
  assert.equal((await m.call('GET', '/api/v1/user/info', { token: viewer })).status, 429);
});
