/**
 * Full agent items, batched: agents whose status changed (or whose refresh is due) are queued
 * and written at the next flush, 25 per BatchWriteItem. An agent with a single-item write
 * running waits for the next flush (its writes keep their order); agents left unprocessed or
 * whose batch failed are queued again. A written agent's next refresh is drawn here.
 */
import { putAgentItems } from '../store/agent-status.js';
import { signature, statusImage } from './tracked-agent.js';
import type { TrackedAgent, WriterContext } from './types.js';
import type { WriteSlots } from './write-queue.js';

export interface PutBatcher {
  /** Queues the agent's full item for the next flush (once). */
  schedule(agent: TrackedAgent): void;
  /** Writes the queued agents that are ready. */
  flush(): Promise<void>;
  /** Agents queued. */
  readonly size: number;
  /** Whether every queued agent waits for a single-item write of its own. */
  allBusy(): boolean;
}

export interface RefreshSchedule {
  /** When an agent written at `at` is rewritten if nothing changes. */
  next(at: number): number;
}

/** Unchanged agents are rewritten every `refreshMs` plus up to `jitterMs` (a fleet started together spreads out). */
export function createRefreshSchedule(
  refreshMs: number,
  jitterMs: number,
  random: () => number,
): RefreshSchedule {
  return { next: (at) => at + refreshMs + Math.floor(random() * jitterMs) };
}

export function createPutBatcher(
  ctx: WriterContext,
  slots: WriteSlots,
  refresh: RefreshSchedule,
): PutBatcher {
  const queue: TrackedAgent[] = [];

  function schedule(agent: TrackedAgent): void {
    if (agent.queuedPut) return;
    agent.queuedPut = true;
    queue.push(agent);
  }

  /** The queued agents that can be written now; the others stay queued or leave the queue. */
  function takeReady(): TrackedAgent[] {
    const ready: TrackedAgent[] = [];
    const keep: TrackedAgent[] = [];
    for (const agent of queue.splice(0)) {
      if (agent.phase !== 'connected') {
        agent.queuedPut = false;
        continue;
      }
      // A single-item write of this agent is running: keep order, take it next flush.
      if (agent.busy > 0) keep.push(agent);
      else ready.push(agent);
    }
    queue.push(...keep);
    return ready;
  }

  async function writeBatch(batch: TrackedAgent[]): Promise<void> {
    const at = ctx.now();
    const sigs = new Map<TrackedAgent, string>();
    const items = batch.map((agent) => {
      sigs.set(agent, signature(agent.session, agent.detail));
      return statusImage(agent, ctx.gatewayId, at);
    });
    let done: () => void = () => {};
    const inFlight = new Promise<void>((r) => {
      done = r;
    });
    for (const agent of batch) agent.putInFlight = inFlight;
    try {
      // Five sends at most; the agents still unprocessed are put again at the next flush.
      const failed = await putAgentItems(ctx.store, items, (sent, unprocessed) => {
        ctx.stats.batches++;
        ctx.count('put', sent - unprocessed);
      });
      for (const agent of batch) {
        agent.queuedPut = false;
        if (failed.has(agent.agentId)) {
          schedule(agent);
          continue;
        }
        agent.sig = sigs.get(agent)!;
        agent.stale = false;
        agent.nextRefreshAtMs = refresh.next(at);
      }
    } catch (err) {
      ctx.stats.errors++;
      ctx.log.warn({ err, agents: batch.length }, 'agent status batch write failed; retrying next flush');
      for (const agent of batch) {
        agent.queuedPut = false;
        schedule(agent);
      }
    } finally {
      for (const agent of batch) if (agent.putInFlight === inFlight) agent.putInFlight = undefined;
      done();
    }
  }

  return {
    schedule,
    async flush() {
      if (queue.length === 0) return;
      const ready = takeReady();
      const batches: TrackedAgent[][] = [];
      for (let i = 0; i < ready.length; i += 25) batches.push(ready.slice(i, i + 25));
      await Promise.all(batches.map((b) => slots.run(() => writeBatch(b))));
    },
    get size() {
      return queue.length;
    },
    allBusy: () => queue.every((agent) => agent.busy > 0),
  };
}
