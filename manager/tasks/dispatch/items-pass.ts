/**
 * A pass over an Agent_Task chunk (or a quick task's): state lives in the subtask items, which
 * result callbacks update too. Deliveries are conditional updates that never leave a final state
 * (the agent's result may land first); a delivered subtask still `succeed` past its deadline
 * becomes result_failed "Timeout waiting for agent response".
 */
import { mapLimit } from '../../store.js';
import { FINAL, type SubtaskItem } from '../model.js';
import { getSubtaskItems, putSubtaskItems, writeDeliveryOutcome } from '../store/subtask-store.js';
import { type ClaimedChunk, type DispatchEngine, NEVER, releasedIn } from './engine.js';
import { releaseCounted } from './release.js';
import { failAttempt } from './retry.js';
import { type Delivery, deliverAll } from './send.js';

const TIMEOUT_MSG = 'Timeout waiting for agent response';

/** What an items pass works on. */
interface ItemsPass {
  /** The released agents of the chunk, in index order. */
  released: string[];
  /** Their subtasks as last read or written by this pass. */
  subs: Map<string, SubtaskItem>;
  todo: SubtaskItem[];
  /** Delivered subtasks whose result is overdue. */
  timeouts: SubtaskItem[];
  nextAt: number;
}

async function planItems(engine: DispatchEngine, c: ClaimedChunk): Promise<ItemsPass> {
  const { task, head } = c;
  const { agentIds } = await engine.members.of(task.taskId, head);
  const released = agentIds.slice(0, releasedIn(task, head));
  const subs = new Map((await getSubtaskItems(engine.ctx, task.taskId, released)).map((s) => [s.agentId, s]));
  const pass: ItemsPass = { released, subs, todo: [], timeouts: [], nextAt: NEVER };
  const at = engine.now();
  for (const id of released) {
    const s = subs.get(id);
    if (!s || FINAL.has(s.state)) continue;
    if (s.state === 'succeed') {
      const deadline = (s.deliveredAt ?? at) + task.timeoutS * 1000;
      if (deadline <= at) pass.timeouts.push(s);
      else pass.nextAt = Math.min(pass.nextAt, deadline);
      continue;
    }
    if ((s.retryAt ?? 0) > at) {
      pass.nextAt = Math.min(pass.nextAt, s.retryAt!);
      continue;
    }
    pass.todo.push(s);
  }
  return pass;
}

/** The subtasks as the outcomes and timeouts leave them. */
function applyItems(
  engine: DispatchEngine,
  c: ClaimedChunk,
  pass: ItemsPass,
  delivery: Delivery,
): SubtaskItem[] {
  const { task } = c;
  const at = engine.now();
  const updated: SubtaskItem[] = [];
  for (const s of pass.todo) {
    const out = delivery.outcomes.get(s.agentId);
    if (!out) continue;
    const next: SubtaskItem = { ...s, attempts: s.attempts + 1, updatedAt: at, fence: c.version };
    const gw = delivery.gatewayOf.get(s.agentId);
    if (gw) next.gateway = gw;
    delete next.retryAt;
    if (out.kind === 'delivered') {
      next.msg = '';
      if (task.taskType === 'Agent_Task') {
        next.state = 'succeed';
        next.deliveredAt = at;
        pass.nextAt = Math.min(pass.nextAt, at + task.timeoutS * 1000);
      } else next.state = 'result_succeed';
    } else {
      failAttempt(engine, next, out, task.maxAttempts, at);
      if (next.retryAt !== undefined) pass.nextAt = Math.min(pass.nextAt, next.retryAt);
    }
    updated.push(next);
  }
  for (const s of pass.timeouts) {
    updated.push({ ...s, state: 'result_failed', msg: TIMEOUT_MSG, updatedAt: at, fence: c.version });
    engine.metrics.exhausted.inc({ reason: 'timeout' });
  }
  return updated;
}

/**
 * Writes the pass's subtasks: Agent_Task ones conditionally (a result may have landed first);
 * others (quick config/ctrl) whole. True when every write took ("uncertain" otherwise: recount).
 */
async function writeItems(engine: DispatchEngine, c: ClaimedChunk, pass: ItemsPass, updated: SubtaskItem[]) {
  if (c.task.taskType !== 'Agent_Task') {
    if (updated.length > 0) await putSubtaskItems(engine.ctx, updated, 4);
    for (const s of updated) pass.subs.set(s.agentId, s);
    return true;
  }
  let certain = true;
  await mapLimit(updated, 16, async (s) => {
    if (await writeDeliveryOutcome(engine.ctx, s)) pass.subs.set(s.agentId, s);
    // A result landed first: the subtask is final; recount on the next pass.
    else certain = false;
  });
  return certain;
}

/** One pass over an Agent_Task chunk; false when the lease was lost (nothing more written). */
export async function processItems(engine: DispatchEngine, c: ClaimedChunk): Promise<boolean> {
  const pass = await planItems(engine, c);
  const delivery = await deliverAll(engine, c, pass.todo);
  if (!delivery) return false;
  const certain = await writeItems(engine, c, pass, applyItems(engine, c, pass, delivery));
  // Counters from the chunk's subtasks as now written; unreleased agents are `created`.
  return releaseCounted(
    engine,
    c,
    pass.released.map((id) => pass.subs.get(id)?.state ?? 'created'),
    c.head.len - pass.released.length,
    {
      nextAt: pass.nextAt,
      passAt: engine.now(),
      handled: c.head.start + releasedIn(c.task, c.head),
      clean: certain ? c.seenDirty : -1,
    },
  );
}
