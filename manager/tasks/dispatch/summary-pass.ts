/**
 * A pass over a config/ctrl chunk (state letters in the head, model.ts): only agents that failed
 * before have a subtask item to read; a delivery is a letter in the conditional release; items
 * are written only for failures (and for an agent delivered after failing, to record its attempts).
 */
import { ST_STATE, type SubtaskItem } from '../model.js';
import { getSubtaskItems, putSubtaskItems } from '../store/subtask-store.js';
import { type ClaimedChunk, type DispatchEngine, NEVER, releasedIn } from './engine.js';
import { releaseCounted } from './release.js';
import { failAttempt } from './retry.js';
import { type Delivery, deliverAll } from './send.js';

/** What a summary pass works on: the head's letters and gateways, and the agents due now. */
interface SummaryPass {
  releasedHere: number;
  /** One state letter per agent of the chunk (updated by the pass). */
  letters: string[];
  /** The gateway of each agent's last attempt (updated by the pass). */
  gateways: string[];
  todo: SubtaskItem[];
  /** Index in the chunk of each agent in `todo`. */
  indexOf: Map<string, number>;
  nextAt: number;
}

async function planSummary(engine: DispatchEngine, c: ClaimedChunk): Promise<SummaryPass> {
  const { task, head } = c;
  const { agentIds, tokens } = await engine.members.of(task.taskId, head);
  const releasedHere = releasedIn(task, head);
  const letters = (head.st ?? '').split('');
  const pass: SummaryPass = {
    releasedHere,
    letters,
    gateways: head.gw ? [...head.gw] : agentIds.map(() => ''),
    todo: [],
    indexOf: new Map(),
    nextAt: NEVER,
  };
  const failedIds = agentIds.slice(0, releasedHere).filter((_, i) => letters[i] === 'f');
  const known = new Map(
    (await getSubtaskItems(engine.ctx, task.taskId, failedIds)).map((s) => [s.agentId, s]),
  );
  const at = engine.now();
  for (let i = 0; i < releasedHere; i++) {
    const id = agentIds[i]!;
    if (letters[i] !== 'c' && letters[i] !== 'f') continue;
    const s: SubtaskItem = known.get(id) ?? {
      taskId: task.taskId,
      agentId: id,
      idx: head.start + i,
      chunk: Number(head.chunkId.slice(2)),
      token: tokens[i] ?? '',
      taskType: task.taskType,
      state: 'created',
      attempts: 0,
      insertAt: task.createdAt,
      updatedAt: task.createdAt,
    };
    if ((s.retryAt ?? 0) > at) {
      pass.nextAt = Math.min(pass.nextAt, s.retryAt!);
      continue;
    }
    pass.indexOf.set(id, i);
    pass.todo.push(s);
  }
  return pass;
}

/** Letters and gateways from the outcomes; the subtask items to write. */
function applySummary(
  engine: DispatchEngine,
  c: ClaimedChunk,
  pass: SummaryPass,
  delivery: Delivery,
): SubtaskItem[] {
  const at = engine.now();
  const puts: SubtaskItem[] = [];
  for (const s of pass.todo) {
    const out = delivery.outcomes.get(s.agentId);
    if (!out) continue;
    const i = pass.indexOf.get(s.agentId)!;
    const addr = delivery.gatewayOf.get(s.agentId) ?? '';
    pass.gateways[i] = addr;
    const item: SubtaskItem = {
      ...s,
      attempts: s.attempts + 1,
      updatedAt: at,
      fence: c.version,
      gateway: addr,
    };
    delete item.retryAt;
    if (out.kind === 'delivered') {
      pass.letters[i] = 'S';
      // First-try deliveries live in the head only; a retried one records its attempts.
      if (s.state !== 'created') puts.push({ ...item, state: 'result_succeed', msg: '' });
      continue;
    }
    failAttempt(engine, item, out, c.task.maxAttempts, at);
    pass.letters[i] = item.state === 'failed' ? 'f' : 'F';
    if (item.retryAt !== undefined) pass.nextAt = Math.min(pass.nextAt, item.retryAt);
    puts.push(item);
  }
  return puts;
}

/** One pass over a config/ctrl chunk; false when the lease was lost (nothing more written). */
export async function processSummary(engine: DispatchEngine, c: ClaimedChunk): Promise<boolean> {
  const pass = await planSummary(engine, c);
  const delivery = await deliverAll(engine, c, pass.todo);
  if (!delivery) return false;
  const puts = applySummary(engine, c, pass, delivery);
  if (puts.length > 0) await putSubtaskItems(engine.ctx, puts, 4);
  return releaseCounted(
    engine,
    c,
    pass.letters.map((letter) => ST_STATE[letter] ?? 'created'),
    0,
    {
      st: pass.letters.join(''),
      gw: pass.gateways,
      nextAt: pass.nextAt,
      passAt: engine.now(),
      handled: c.head.start + pass.releasedHere,
      clean: c.seenDirty,
    },
  );
}
