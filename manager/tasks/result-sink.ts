/**
 * The gateway's TaskResultSink (gateway/agent/special-records.ts calls `report` for every result
 * record): results are buffered and handed over in batches of ≤ 100 or every second, whichever
 * comes first — Elkeid's AgentCenter does the same with 100 items / 10 s and no retry (§2.9).
 * Ours retries a failed hand-over with exponential backoff, keeps order, and bounds the buffer:
 * past `maxBuffer` new results are dropped and counted (metric and a rate-limited log line), so a
 * manager outage cannot grow a gateway's memory without bound. A lost result only means that
 * subtask times out to result_failed.
 *
 * It lives with the manager's code (like the HeartbeatWriter) because it speaks the manager's
 * protocol; the gateway only sees the TaskResultSink interface. Two ways to hand over:
 * `deliverDirect` (the manager is in this process: `fleetgate all`) and `deliverHttp` (signed
 * POST /api/v1/agent/updateSubTask, Elkeid's body: a JSON array of string maps).
 */
import type { TaskResult, TaskResultSink } from '../../gateway/agent/special-records.js';
import { backoffCeiling } from '../../platform/backoff.js';
import { signRequest } from '../../platform/http/aksk.js';
import type { Logger } from '../../platform/obs/logger.js';
import type { TaskMetrics } from './metrics.js';
import type { ResultItem, TaskService } from './types.js';

export type DeliverFn = (items: ResultItem[]) => Promise<void>;

export interface ResultSinkOptions {
  deliver: DeliverFn;
  logger: Logger;
  metrics?: Pick<TaskMetrics, 'sinkDrops' | 'sinkPosts'>;
  /** Default 100. */
  batchSize?: number;
  /** Default 1000 ms. */
  flushMs?: number;
  /** Default 100 000 results. */
  maxBuffer?: number;
  /** Retry backoff base. Default 500 ms, capped at 30 s. */
  retryBaseMs?: number;
}

export interface ResultSink extends TaskResultSink {
  /** Hands over everything buffered now (tests, shutdown); retries until `deadlineMs`. */
  flush(deadlineMs?: number): Promise<void>;
  start(): void;
  close(): Promise<void>;
  readonly buffered: number;
  readonly dropped: number;
}

export function createResultSink(o: ResultSinkOptions): ResultSink {
  const log = o.logger.child({ component: 'task-result-sink' });
  const batchSize = o.batchSize ?? 100;
  const flushMs = o.flushMs ?? 1000;
  const maxBuffer = o.maxBuffer ?? 100_000;
  const retryBase = o.retryBaseMs ?? 500;
  let buffer: ResultItem[] = [];
  let dropped = 0;
  let lastDropLog = 0;
  let failures = 0;
  let retryAt = 0;
  let inFlight: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  async function sendSome(): Promise<void> {
    while (buffer.length > 0) {
      if (Date.now() < retryAt) return;
      const batch = buffer.slice(0, batchSize);
      try {
        await o.deliver(batch);
        o.metrics?.sinkPosts.inc({ outcome: 'ok' });
        buffer = buffer.slice(batch.length);
        failures = 0;
      } catch (err) {
        o.metrics?.sinkPosts.inc({ outcome: 'error' });
        failures++;
        retryAt = Date.now() + backoffCeiling(failures, { baseMs: retryBase, capMs: 30_000 });
        log.warn({ err, buffered: buffer.length, failures }, 'task results not handed over; will retry');
        return;
      }
    }
  }

  function kick(): Promise<void> {
    inFlight ??= sendSome().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  return {
    report(r: TaskResult) {
      if (buffer.length >= maxBuffer) {
        dropped++;
        o.metrics?.sinkDrops.inc();
        if (Date.now() - lastDropLog > 10_000) {
          lastDropLog = Date.now();
          log.error({ dropped, maxBuffer }, 'task result buffer full: dropping results');
        }
        return;
      }
      buffer.push({ ...r.fields, data_type: String(r.dataType), agent_id: r.agentId });
      if (buffer.length >= batchSize) void kick();
    },
    async flush(deadlineMs = 10_000) {
      const end = Date.now() + deadlineMs;
      while (buffer.length > 0 && Date.now() < end) {
        if (Date.now() < retryAt)
          await new Promise((r) => setTimeout(r, Math.min(200, retryAt - Date.now())));
        await kick();
      }
    },
    start() {
      if (timer) return;
      timer = setInterval(() => void kick(), flushMs);
      timer.unref();
    },
    async close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await this.flush(5000);
    },
    get buffered() {
      return buffer.length;
    },
    get dropped() {
      return dropped;
    },
  };
}

/** Hand-over to a TaskService in this process. */
export function deliverDirect(service: Pick<TaskService, 'applyResults'>): DeliverFn {
  return async (items) => {
    await service.applyResults(items);
  };
}

/** Hand-over to a manager over HTTP: Elkeid's updateSubTask, AK/SK-signed (Elkeid leaves it open). */
export function deliverHttp(o: {
  /** Manager base URLs (`http://host:port`); one is picked per post, the next on failure. */
  managers: () => string[];
  aksk: ReadonlyArray<readonly [string, string]>;
  timeoutMs?: number;
}): DeliverFn {
  let next = 0;
  return async (items) => {
    const list = o.managers();
    if (list.length === 0) throw new Error('no manager address known');
    const pair = o.aksk[0];
    if (!pair) throw new Error('no AK/SK configured');
    const base = list[next++ % list.length]!;
    const path = '/api/v1/agent/updateSubTask';
    const body = JSON.stringify(items);
    const res = await fetch(base + path, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...signRequest({ method: 'POST', path, query: '', body, ak: pair[0], sk: pair[1] }),
      },
      body,
      signal: AbortSignal.timeout(o.timeoutMs ?? 5000),
    });
    const json = (await res.json().catch(() => ({}))) as { code?: number; msg?: string };
    if (res.status !== 200 || json.code !== 0) {
      throw new Error(`updateSubTask at ${base}: HTTP ${res.status} code ${json.code} ${json.msg ?? ''}`);
    }
  };
}
