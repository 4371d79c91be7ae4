/** Task ids, tokens and quick-task ids in Elkeid's formats; backoff bounds. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  isTaskId,
  newQuickTaskId,
  newTaskId,
  newToken,
  QUICK_TASK_ID_PATTERN,
  TASK_ID_PATTERN,
  TOKEN_PATTERN,
} from '../../manager/tasks/ids.js';
import { backoffCeiling, backoffDelay } from '../../platform/backoff.js';

test('task ids are <unixnano><6 letters>, increasing, and sort by time as strings', () => {
  const now = Date.UTC(2026, 0, 1);
  const ids = Array.from({ length: 1000 }, () => newTaskId(now));
  for (const id of ids) assert.match(id, TASK_ID_PATTERN);
  assert.equal(ids[0]!.slice(0, 13), String(now), 'the first 13 digits are the milliseconds');
  const prefixes = ids.map((id) => id.slice(0, 19));
  assert.deepEqual([...prefixes].sort(), prefixes, 'nanosecond prefixes strictly increase');
  assert.equal(new Set(prefixes).size, ids.length);
  const later = newTaskId(now + 1);
  assert.ok(later > ids[ids.length - 1]!);
  assert.ok(isTaskId(ids[0]));
  assert.ok(!isTaskId('1234'));
});

test('tokens are 20 xid characters, unique; quick ids are task-<xid>', () => {
  const tokens = new Set(Array.from({ length: 10_000 }, newToken));
  assert.equal(tokens.size, 10_000);
  for (const t of tokens) assert.match(t, TOKEN_PATTERN);
  const q = newQuickTaskId();
  assert.match(q, QUICK_TASK_ID_PATTERN);
  assert.ok(isTaskId(q));
  // All 32 symbols occur (the random bits are not biased to part of the alphabet).
  assert.equal(new Set([...tokens].join('')).size, 32);
});

test('backoff: exponential ceiling capped, full jitter within [0, ceiling]', () => {
  const o = { baseMs: 1000, capMs: 30_000 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 40].map((a) => backoffCeiling(a, o)),
    [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000],
  );
  assert.equal(
    backoffDelay(3, o, () => 0),
    0,
  );
  assert.equal(
    backoffDelay(3, o, () => 0.999_999),
    3999,
  );
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(4, o);
    assert.ok(d >= 0 && d <= 8000);
  }
});
