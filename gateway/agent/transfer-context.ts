/**
 * What every Transfer stream of one gateway shares (transfer.ts builds it once): the
 * dependencies, the component logger, and the per-gateway bookkeeping the parts use.
 */

import type { Logger } from '../../platform/obs/logger.js';
import type { Metrics } from '../../platform/obs/metrics.js';
import type { SessionInfo } from '../grpc/http2-server.js';
import type { ServerCall } from '../grpc/server-call.js';
import type { IngestSink } from '../ingest/sink.js';
import type { ConfigSource } from './config-source.js';
import type { AgentIdConflicts } from './id-conflicts.js';
import type { AgentSession, SessionRegistry } from './sessions.js';
import type { createRecordInspector, TaskResultSink } from './special-records.js';
import type { ConfigPusher } from './transfer-config.js';
import type { EmptyIdLog } from './transfer-identify.js';

export const TRANSFER_METHOD = '/grpc.Transfer/Transfer';

export interface TransferDeps {
  sessions: SessionRegistry;
  sink: IngestSink;
  configSource: ConfigSource;
  taskResults?: TaskResultSink;
  identity: 'fleet' | 'per-agent';
  logger: Logger;
  metrics: Metrics;
}

/** Shared by all streams of one handler. */
export interface TransferContext {
  deps: TransferDeps;
  sessions: SessionRegistry;
  sink: IngestSink;
  metrics: Metrics;
  log: Logger;
  conflicts: AgentIdConflicts;
  emptyIdLog: EmptyIdLog;
  inspect: ReturnType<typeof createRecordInspector>;
  configPusher: ConfigPusher;
  /** A stream has more behind a pending write: the sink stops holding writes for a batch. */
  hurrySink: () => void;
}

/** One agent stream: its call, and what is known once its first message is read. */
export interface TransferStream {
  call: ServerCall;
  info: SessionInfo;
  session: AgentSession | undefined;
  /** The header bytes of the last message: an agent repeats them on every batch. */
  lastHeader: Buffer | undefined;
}
