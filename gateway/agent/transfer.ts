/**
 * `/grpc.Transfer/Transfer`: the agent's long-lived bidirectional stream (Elkeid §1.3, §2.3).
 * Identifies the agent from its first RawData (transfer-identify.ts), keeps its session, hands
 * every message to the ingest sink with backpressure (transfer-message.ts), pushes its config
 * (transfer-config.ts), and carries commands back.
 */

import type { SessionInfo } from '../grpc/http2-server.js';
import type { CallEnd, ServerCall } from '../grpc/server-call.js';
import { Status } from '../grpc/status.js';
import { AgentIdConflicts } from './id-conflicts.js';
import { createRecordInspector } from './special-records.js';
import { ConfigPusher } from './transfer-config.js';
import {
  TRANSFER_METHOD,
  type TransferContext,
  type TransferDeps,
  type TransferStream,
} from './transfer-context.js';
import { EmptyIdLog } from './transfer-identify.js';
import { handleTransferMessage } from './transfer-message.js';

export { TRANSFER_METHOD, type TransferDeps } from './transfer-context.js';

function createTransferContext(deps: TransferDeps): TransferContext {
  const { metrics } = deps;
  const log = deps.logger.child({ component: 'transfer' });
  const configPusher = new ConfigPusher(deps.configSource, deps.sessions, log);
  return {
    deps,
    sessions: deps.sessions,
    sink: deps.sink,
    metrics,
    log,
    conflicts: new AgentIdConflicts(log, () => metrics.agentIdFlapping.inc()),
    emptyIdLog: new EmptyIdLog(log),
    inspect: createRecordInspector({
      logger: deps.logger,
      metrics,
      ...(deps.taskResults ? { taskResults: deps.taskResults } : {}),
      onFirstHeartbeat: (session) => configPusher.push(session, session.detail!, 'on first heartbeat'),
    }),
    configPusher,
    hurrySink: () => deps.sink.hurry?.(),
  };
}

/** Elkeid §1.3: the slot is taken before anything is read; false when the stream was refused. */
function admit(ctx: TransferContext, call: ServerCall): boolean {
  if (ctx.sessions.reserve()) return true;
  ctx.metrics.agentRefusals.inc({ reason: 'connection_limit' });
  call.end(Status.RESOURCE_EXHAUSTED, 'out of max connection limit');
  return false;
}

/** The stream is over: the slot is given back, the session detached, losses reported. */
function onStreamEnd(ctx: TransferContext, stream: TransferStream, end: CallEnd): void {
  ctx.sessions.release();
  const { session } = stream;
  if (!session) return;
  ctx.sessions.detach(session);
  ctx.log.info(
    { agentId: session.agentId, peer: session.peer, code: end.code, records: session.records },
    end.cancelled ? 'agent disconnected' : 'agent stream ended',
  );
  if (end.discarded > 0) {
    // Read but not stored: the sink failed, sent after an error status or past the grace
    // after a graceful one, cut off mid-frame, or given up at the end of a drain.
    ctx.metrics.messagesDiscarded.inc({ method: TRANSFER_METHOD }, end.discarded);
    ctx.log.warn(
      {
        agentId: session.agentId,
        peer: session.peer,
        code: end.code,
        reason: end.message,
        messages: end.discarded,
      },
      'messages read from the agent were not stored',
    );
  }
}

export function createTransferHandler(deps: TransferDeps) {
  const ctx = createTransferContext(deps);
  return function transfer(call: ServerCall, info: SessionInfo): void {
    if (!admit(ctx, call)) return;
    const stream: TransferStream = { call, info, session: undefined, lastHeader: undefined };
    call.onClose((end) => onStreamEnd(ctx, stream, end));
    call.onBacklog(ctx.hurrySink);
    call.read(
      (message) => handleTransferMessage(ctx, stream, message),
      () => call.end(Status.OK),
    );
  };
}
