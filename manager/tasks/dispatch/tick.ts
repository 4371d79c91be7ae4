/**
 * One tick: the running tasks → per task, its chunk heads (counts snapshot, finish) and the due
 * chunks it can claim → a pass over every claimed chunk, `parallel` at once → a page of the
 * ended tasks' items stamped with their expiry (retention.ts).
 */
import { mapLimit } from '../../store.js';
import { queryHeads } from '../store/chunk-store.js';
import { activeTasks, claimDueChunks } from './claim.js';
import type { ClaimedChunk, DispatchEngine } from './engine.js';
import { processItems } from './items-pass.js';
import { recordProgress } from './progress.js';
import { stampEndedTasks } from './retention.js';
import { processSummary } from './summary-pass.js';

export interface TickResult {
  didWork: boolean;
  activeTasks: number;
  chunks: number;
}

/** One pass over a claimed chunk; false when the lease was lost (nothing more written). */
function processChunk(engine: DispatchEngine, c: ClaimedChunk): Promise<boolean> {
  return typeof c.head.st === 'string' ? processSummary(engine, c) : processItems(engine, c);
}

export async function tick(engine: DispatchEngine): Promise<TickResult> {
  if (engine.lifecycle.killed) return { didWork: false, activeTasks: 0, chunks: 0 };
  const tasks = await activeTasks(engine);
  const claimed: ClaimedChunk[] = [];
  await Promise.all(
    tasks.map(async (task) => {
      const heads = await queryHeads(engine.ctx, task.taskId, { consistent: true });
      await recordProgress(engine, task, heads);
      claimed.push(...(await claimDueChunks(engine, task, heads)));
    }),
  );
  await mapLimit(claimed, engine.settings.parallel, async (c) => {
    try {
      await processChunk(engine, c);
    } catch (err) {
      engine.log.error(
        { err, taskId: c.task.taskId, chunk: c.head.chunkId },
        'chunk pass failed; its lease will expire',
      );
    }
  });
  const stamped = await stampEndedTasks(engine);
  return { didWork: claimed.length > 0 || stamped > 0, activeTasks: tasks.length, chunks: claimed.length };
}
