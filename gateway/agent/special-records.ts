/**
 * The records the gateway itself reads (Elkeid §2.3), besides forwarding them like all others:
 * heartbeats update the session, task results go to the task-result sink (the manager
 * reconciles them by token), agent and plugin error logs go to the gateway log, rate-limited.
 */

import type { Logger } from '../../platform/obs/logger.js';
import type { Metrics } from '../../platform/obs/metrics.js';
import type { grpc } from '../../proto/gen/elkeid.js';
import { agentDetail, DT_AGENT_HEARTBEAT, DT_PLUGIN_HEARTBEAT, pluginDetail } from './heartbeat.js';
import { decodeItem, type Fields } from './item.js';
import type { AgentSession } from './sessions.js';

export const TASK_RESULT_TYPES: ReadonlySet<number> = new Set([2001, 2003, 5100, 5101, 6000, 8010]);
export const LOG_TYPES: ReadonlySet<number> = new Set([1010, 1011]);

export interface TaskResult {
  agentId: string;
  dataType: number;
  /** The record's fields (`token`, `status`, `msg`, plugin fields) plus `data_type`, as Elkeid posts them. */
  fields: Fields;
}

/** Where task results go; the manager's result sink reconciles subtasks. */
export interface TaskResultSink {
  report(result: TaskResult): void;
}

/** Whether the gateway reads records of this data type (see createRecordInspector). */
export function isSpecialRecord(dt: number): boolean {
  return (
    dt === DT_AGENT_HEARTBEAT || dt === DT_PLUGIN_HEARTBEAT || TASK_RESULT_TYPES.has(dt) || LOG_TYPES.has(dt)
  );
}

/** Agent log lines per second written to the gateway log; the rest are counted, not logged. */
const AGENT_LOG_LINES_PER_SECOND = 50;

export function createRecordInspector(deps: {
  logger: Logger;
  metrics: Metrics;
  taskResults?: TaskResultSink;
  onFirstHeartbeat: (s: AgentSession) => void;
}) {
  const agentLog = deps.logger.child({ component: 'agent-log' });
  let logWindow = 0;
  let logCount = 0;

  function decode(record: grpc.Record.$Properties, dt: number): Fields | undefined {
    try {
      return decodeItem(record.Body ?? new Uint8Array());
    } catch {
      // Still forwarded to Kafka with the rest of the batch (docs/durability.md).
      deps.metrics.badRecords.inc({ data_type: String(dt) });
      return undefined;
    }
  }

  /** Reads the special records of one RawData for session `s`. */
  return function inspect(
    s: AgentSession,
    records: ReadonlyArray<grpc.Record.$Properties>,
    nowMs: number,
  ): void {
    const nowSeconds = Math.floor(nowMs / 1000);
    for (const record of records) {
      const dt = record.DataType ?? 0;
      if (dt === DT_AGENT_HEARTBEAT) {
        const fields = decode(record, dt);
        if (!fields) continue;
        const first = s.detail === undefined;
        s.detail = agentDetail(fields, {
          agentId: s.agentId,
          peer: s.peer,
          connectedAt: s.connectedAt,
          header: s.header,
          nowSeconds,
        });
        if (first) deps.onFirstHeartbeat(s);
      } else if (dt === DT_PLUGIN_HEARTBEAT) {
        const fields = decode(record, dt);
        if (!fields) continue;
        const d = pluginDetail(fields, nowSeconds);
        if (d) s.plugins.set(String(d.name), d);
        else deps.metrics.badRecords.inc({ data_type: String(dt) });
      } else if (TASK_RESULT_TYPES.has(dt)) {
        const fields = decode(record, dt);
        if (!fields) continue;
        fields.data_type = String(dt);
        deps.metrics.taskResults.inc({ data_type: String(dt) });
        deps.taskResults?.report({ agentId: s.agentId, dataType: dt, fields });
      } else if (LOG_TYPES.has(dt)) {
        const second = Math.floor(nowMs / 1000);
        if (second !== logWindow) {
          logWindow = second;
          logCount = 0;
        }
        if (++logCount > AGENT_LOG_LINES_PER_SECOND) {
          deps.metrics.agentLogsSuppressed.inc();
          continue;
        }
        const fields = decode(record, dt);
        if (!fields) continue;
        agentLog.warn({ agentId: s.agentId, dataType: dt, fields: { ...fields } }, 'agent log');
      }
    }
  };
}
