/** loadtest/sim/fd-limit.ts: a simulator process that cannot open a socket per agent says so at start. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FD_MARGIN, fdLimitProblem, openFileLimits } from '../../loadtest/sim/fd-limit.js';

test('agents that fit the soft limit pass; more are refused with how to raise it or spread them', () => {
  assert.equal(fdLimitProblem(1000, { soft: 1000 + FD_MARGIN, hard: 4096 }), undefined);
  const raisable = fdLimitProblem(5000, { soft: 1024, hard: 65536 });
  assert.match(
    raisable ?? '',
    /5000 agents per process need ~5256 open files, this process may open 1024 \(room for 768 agents\)/,
  );
  assert.match(raisable ?? '', /ulimit -n 5256/);
  const capped = fdLimitProblem(30_000, { soft: 20_000, hard: 20_000 });
  assert.match(capped ?? '', /the hard limit is 20000 and cannot be raised here without CAP_SYS_RESOURCE/);
  assert.match(capped ?? '', /more --processes/);
  assert.equal(fdLimitProblem(10, undefined), undefined, 'no /proc: nothing to check');
});

test('this process reads its own limits on Linux', () => {
  const l = openFileLimits();
  if (process.platform === 'linux') {
    assert.ok(l && l.soft > 0 && l.hard >= l.soft, JSON.stringify(l));
  }
});
