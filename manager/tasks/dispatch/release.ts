/**
 * Ending a pass: the chunk head's counters recomputed from its agents' states (never ADDed, so a
 * crash between a subtask write and this release cannot skew them), `done` when every agent is
 * final, written with the pass's results in the conditional release of the lease.
 */
import { COUNTER_ATTR, countsOfHead, FINAL, SUBTASK_STATES } from '../model.js';
import type { SubtaskState } from '../types.js';
import type { ClaimedChunk, DispatchEngine } from './engine.js';

/** Releases `c` with counters from `states` (plus `created` agents not listed) and `set`; false when the lease was lost. */
export async function releaseCounted(
  engine: DispatchEngine,
  c: ClaimedChunk,
  states: readonly SubtaskState[],
  created: number,
  set: Record<string, unknown>,
): Promise<boolean> {
  const counts = countsOfHead({});
  counts.created = created;
  let final = 0;
  for (const state of states) {
    counts[state]++;
    if (FINAL.has(state)) final++;
  }
  for (const state of SUBTASK_STATES) set[COUNTER_ATTR[state]] = counts[state];
  if (final === c.head.len) set.state = 'done';
  if (engine.lifecycle.killed) return false;
  const key = { taskId: c.task.taskId, chunkId: c.head.chunkId };
  const ok = await engine.leases.release(key, engine.owner, c.version, set);
  if (!ok) engine.metrics.leases.inc({ outcome: 'lost' });
  return ok;
}
