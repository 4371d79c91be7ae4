/**
 * Claim/lease: which tasks are running, which of their chunks are due, and taking the leases of
 * a shuffled few of them (at most the task's `concurrence` live leases across all dispatchers).
 */
import { mapLimit } from '../../store.js';
import { ACTIVE_RUNNING, type ChunkHead, type TaskItem } from '../model.js';
import { parseChunkHead } from '../store/parse.js';
import { getTaskItems, queryTaskIdsByMarker } from '../store/task-store.js';
import { type ClaimedChunk, type DispatchEngine, NEVER } from './engine.js';

/** Running tasks (byActive, then the task items themselves, read consistently). */
export async function activeTasks(engine: DispatchEngine): Promise<TaskItem[]> {
  const ids = await queryTaskIdsByMarker(engine.ctx, ACTIVE_RUNNING);
  if (ids.length === 0) return [];
  // The index is eventually consistent: the task item itself decides (state running).
  const items = await getTaskItems(engine.ctx, ids, {
    consistent: true,
    onMalformed: (err) => engine.log.error({ err }, 'task item refused: not dispatched'),
  });
  return items.filter((t) => t.state === 'running' && t.active === ACTIVE_RUNNING);
}

/** Whether a head has work at `at`: newly released agents, a retry or deadline due, or a recount. */
export function isDue(engine: DispatchEngine, task: TaskItem, head: ChunkHead, at: number): boolean {
  if (head.state === 'done' || head.start >= task.released) return false;
  if (head.leaseOwner !== undefined && (head.leaseUntil ?? 0) >= at) return false;
  const releasedHere = Math.min(task.released, head.start + head.len);
  if ((head.handled ?? 0) < releasedHere) return true;
  if ((head.nextAt ?? NEVER) <= at) return true;
  return (head.dirty ?? 0) > (head.clean ?? 0) && at - (head.passAt ?? 0) >= engine.settings.recountMs;
}

/** Fisher–Yates, so dispatchers starting together do not all race for the same first chunks. */
function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Claims due chunks of `task` within its free lease slots; the ones this dispatcher got. */
export async function claimDueChunks(
  engine: DispatchEngine,
  task: TaskItem,
  heads: readonly ChunkHead[],
): Promise<ClaimedChunk[]> {
  const at = engine.now();
  const live = heads.filter((h) => h.leaseOwner !== undefined && (h.leaseUntil ?? 0) >= at).length;
  const slots = Math.max(0, (task.concurrence ?? 100) - live);
  const candidates = shuffle(
    heads.filter((h) => isDue(engine, task, h, at)),
    engine.random,
  );
  const pick = candidates.slice(0, Math.min(slots, engine.settings.parallel * 2));
  const got = await mapLimit(pick, 8, (head) => claimChunk(engine, task, head));
  return got.filter((c): c is ClaimedChunk => c !== undefined);
}

async function claimChunk(
  engine: DispatchEngine,
  task: TaskItem,
  head: ChunkHead,
): Promise<ClaimedChunk | undefined> {
  const r = await engine.leases.claim(
    { taskId: task.taskId, chunkId: head.chunkId },
    engine.owner,
    head.leaseVersion ?? 0,
    engine.now(),
    engine.settings.leaseMs,
  );
  if (!r.ok) {
    engine.metrics.leases.inc({ outcome: 'conflict' });
    return undefined;
  }
  engine.metrics.leases.inc({ outcome: 'claimed' });
  const claimed = parseChunkHead(r.item);
  return { task, head: claimed, version: r.version, until: r.until, seenDirty: claimed.dirty ?? 0 };
}
