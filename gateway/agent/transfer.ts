/**
 * `/grpc.Transfer/Transfer`: the agent's long-lived bidirectional stream (Elkeid §1.3, §2.3).
 * Identifies the agent from its first RawData, keeps its session, parses heartbeats, hands every
 * message to the ingest sink with backpressure, and carries commands back.
 */

import type { Logger } from '../../platform/obs/logger.js';
import type { Metrics } from '../../platform/obs/metrics.js';
import { grpc } from '../../proto/gen/elkeid.js';
import type { SessionInfo } from '../grpc/http2-server.js';
import type { ServerCall } from '../grpc/server-call.js';
import { GrpcError, Status } from '../grpc/status.js';
import type { IngestSink } from '../ingest/sink.js';
import type { ConfigSource } from './config-source.js';
import { type AgentHeader, agentDetail, type Detail } from './heartbeat.js';
import { AgentIdConflicts, ALIVE_WITHIN_MS } from './id-conflicts.js';
import { decodeHeader, type RawScan, scanRawData } from './raw-scan.js';
import { AgentSession, type SessionRegistry } from './sessions.js';
import { createRecordInspector, isSpecialRecord, type TaskResultSink } from './special-records.js';

export const TRANSFER_METHOD = '/grpc.Transfer/Transfer';

/** AgentIDs are UUIDs in practice; bound them so a hostile one cannot bloat logs or keys. */
const AGENT_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;

/** Refusals of an empty AgentID are logged at most this often (one host retries every 5 s). */
const EMPTY_ID_LOG_EVERY_MS = 60_000;

/** Data types with a label of their own in metrics; everything else is `other` (bounded labels). */
const KNOWN_DATA_TYPES = new Set([1000, 1001, 1010, 1011, 2001, 2003, 5100, 5101, 6000, 8010]);

export interface TransferDeps {
  sessions: SessionRegistry;
  sink: IngestSink;
  configSource: ConfigSource;
  taskResults?: TaskResultSink;
  identity: 'fleet' | 'per-agent';
  logger: Logger;
  metrics: Metrics;
}

function headerOf(raw: grpc.RawData): AgentHeader {
  return {
    intranetIPv4: raw.IntranetIPv4,
    extranetIPv4: raw.ExtranetIPv4,
    intranetIPv6: raw.IntranetIPv6,
    extranetIPv6: raw.ExtranetIPv6,
    hostname: raw.Hostname,
    version: raw.Version,
    product: raw.Product,
  };
}

export function createTransferHandler(deps: TransferDeps) {
  const { sessions, sink, metrics } = deps;
  const log = deps.logger.child({ component: 'transfer' });
  const conflicts = new AgentIdConflicts(log, () => metrics.agentIdFlapping.inc());
  const emptyIdLog = { last: 0, since: 0 };

  /**
   * Elkeid accepts an empty AgentID (every such host then shares it); we refuse it, and say so
   * in the log with what to do, at most once a minute with the count since the last line.
   */
  function logEmptyId(peer: string, hostname: string): void {
    emptyIdLog.since++;
    const now = Date.now();
    if (now - emptyIdLog.last < EMPTY_ID_LOG_EVERY_MS) return;
    log.warn(
      { peer, hostname, refusedSinceLastLine: emptyIdLog.since },
      'agent refused: empty AgentID (the host has no DMI product UUID or machine-id the agent can use, ' +
        'e.g. a container or some VMs); set SPECIFIED_AGENT_ID in the agent environment to a unique ID per host',
    );
    emptyIdLog.last = now;
    emptyIdLog.since = 0;
  }

  const inspect = createRecordInspector({
    logger: deps.logger,
    metrics,
    ...(deps.taskResults ? { taskResults: deps.taskResults } : {}),
    onFirstHeartbeat: (s) => pushConfig(s, s.detail!, 'on first heartbeat'),
  });

  /** Sessions whose config was pushed (once per connection). */
  const configPushed = new WeakSet<AgentSession>();

  /**
   * A reconnect normally finds the old stream dead. A live one taken over is either an agent whose
   * old connection is not yet noticed as gone, or someone else holding a certificate valid for
   * this AgentID (in fleet mode: anyone with the shared client certificate).
   */
  function warnTakeover(agentId: string, peer: string, previousPeer: string): void {
    log.warn(
      { agentId, peer, previousPeer, identity: deps.identity },
      deps.identity === 'fleet'
        ? 'agent stream taken over by a newer connection (fleet certificate: anyone holding it can do this; FLEETGATE_IDENTITY=per-agent prevents it)'
        : 'agent stream taken over by a newer connection presenting the same agent certificate',
    );
  }

  function pushConfig(s: AgentSession, detail: Detail, when: string): void {
    if (configPushed.has(s)) return;
    configPushed.add(s);
    deps.configSource.configFor(detail).then(
      async (items) => {
        if (items === undefined || !s.live) return;
        const result = await sessions.send(s.agentId, { Config: items });
        log.info({ agentId: s.agentId, items: items.length, result }, `config pushed ${when}`);
      },
      (err: unknown) => log.warn({ agentId: s.agentId, err }, 'config source failed; no config pushed'),
    );
  }

  /** What is known of an agent before its first heartbeat: the detail's header fields. */
  function headerDetail(s: AgentSession): Detail {
    return agentDetail(
      {},
      {
        agentId: s.agentId,
        peer: s.peer,
        connectedAt: s.connectedAt,
        header: s.header,
        nowSeconds: Math.floor(Date.now() / 1000),
      },
    );
  }

  /** One counter update per data type per message, not per record (prom-client labels cost). */
  function countRecords(dataTypes: readonly number[]): void {
    let other = 0;
    let known: Map<number, number> | undefined;
    for (const dt of dataTypes) {
      if (!KNOWN_DATA_TYPES.has(dt)) {
        other++;
        continue;
      }
      known ??= new Map();
      known.set(dt, (known.get(dt) ?? 0) + 1);
    }
    if (other > 0) metrics.recordsIn.inc({ data_type: 'other' }, other);
    if (known) for (const [dt, n] of known) metrics.recordsIn.inc({ data_type: String(dt) }, n);
  }

  return function transfer(call: ServerCall, info: SessionInfo): void {
    // Elkeid §1.3: the slot is taken before anything is read.
    if (!sessions.reserve()) {
      metrics.agentRefusals.inc({ reason: 'connection_limit' });
      call.end(Status.RESOURCE_EXHAUSTED, 'out of max connection limit');
      return;
    }
    let session: AgentSession | undefined;
    call.onClose((end) => {
      sessions.release();
      if (!session) return;
      sessions.detach(session);
      log.info(
        { agentId: session.agentId, peer: session.peer, code: end.code, records: session.records },
        end.cancelled ? 'agent disconnected' : 'agent stream ended',
      );
      if (end.discarded > 0) {
        // Read but not stored: the sink failed, sent after an error status or past the grace
        // after a graceful one, cut off mid-frame, or given up at the end of a drain.
        metrics.messagesDiscarded.inc({ method: TRANSFER_METHOD }, end.discarded);
        log.warn(
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
    });

    /** The header bytes of the last message: an agent repeats them on every batch. */
    let lastHeader: Buffer | undefined;
    const unmarshalError = (err: unknown) => {
      metrics.agentRefusals.inc({ reason: 'bad_protobuf' });
      return new GrpcError(Status.INTERNAL, 'grpc: failed to unmarshal the received message', { cause: err });
    };

    const onMessage = (message: Buffer): void | Promise<void> => {
      // Scanned, not decoded: the ingest workers decode the records (raw-scan.ts).
      let scan: RawScan;
      let header: grpc.RawData | undefined;
      try {
        scan = scanRawData(message, isSpecialRecord);
        if (lastHeader === undefined || !scan.header.equals(lastHeader)) {
          header = decodeHeader(scan.header);
          lastHeader = Buffer.from(scan.header);
        }
      } catch (err) {
        throw unmarshalError(err);
      }
      metrics.grpcMessagesIn.inc({ method: TRANSFER_METHOD });
      metrics.grpcBytesIn.inc({ method: TRANSFER_METHOD }, message.length);
      const now = Date.now();
      // The first message always has its header decoded (lastHeader was unset).
      if (!session) session = identify(header!, now);
      else if (header && (header.Hostname || header.Version)) session.header = headerOf(header);
      const s = session;
      s.lastMessageAt = now;
      countRecords(scan.dataTypes);
      inspect(s, scan.special, now);
      s.records += scan.count;
      const started = performance.now();
      let decoded: grpc.RawData | undefined;
      const accepted = sink.write({
        agentId: s.agentId,
        peer: s.peer,
        receivedAt: now,
        message,
        records: scan.count,
        get raw() {
          decoded ??= grpc.RawData.decode(message);
          return decoded;
        },
      });
      if (accepted instanceof Promise) {
        return accepted.then(
          () => metrics.sinkWriteSeconds.observe((performance.now() - started) / 1000),
          (err: unknown) => {
            // The stream ends with INTERNAL; this message is counted as discarded with the rest.
            log.error({ agentId: s.agentId, records: scan.count, err }, 'the sink failed to take records');
            throw err;
          },
        );
      }
      metrics.sinkWriteSeconds.observe((performance.now() - started) / 1000);
    };

    function identify(raw: grpc.RawData, now: number): AgentSession {
      const agentId = raw.AgentID;
      if (agentId === '') {
        metrics.agentRefusals.inc({ reason: 'empty_agent_id' });
        logEmptyId(call.peer, raw.Hostname);
        throw new GrpcError(
          Status.INVALID_ARGUMENT,
          'empty AgentID: set SPECIFIED_AGENT_ID in the agent environment to a unique ID for this host',
        );
      }
      if (!AGENT_ID_PATTERN.test(agentId)) {
        metrics.agentRefusals.inc({ reason: 'bad_agent_id' });
        throw new GrpcError(Status.INVALID_ARGUMENT, 'the first message must carry a valid AgentID');
      }
      const existing = sessions.get(agentId);
      if (
        existing?.live &&
        now - existing.lastMessageAt < ALIVE_WITHIN_MS &&
        conflicts.flapping(agentId, now)
      ) {
        // Two live agents share this ID (id-conflicts.ts): keep the connected one, as Elkeid does.
        metrics.agentRefusals.inc({ reason: 'agent_id_conflict' });
        throw new GrpcError(
          Status.ALREADY_EXISTS,
          'agentID conflict: another live agent uses this AgentID; set SPECIFIED_AGENT_ID to a unique ID per host',
        );
      }
      if (deps.identity === 'per-agent' && agentId !== info.cert().identity) {
        metrics.agentRefusals.inc({ reason: 'identity_mismatch' });
        log.warn(
          { agentId, certIdentity: info.cert().identity, peer: call.peer },
          'AgentID does not match certificate',
        );
        throw new GrpcError(
          Status.PERMISSION_DENIED,
          'AgentID does not match the client certificate identity',
        );
      }
      const created = new AgentSession({
        agentId,
        peer: call.peer,
        header: headerOf(raw),
        certIdentity: deps.identity === 'per-agent' ? info.cert().identity : '',
        call,
      });
      const previousLive = sessions.get(agentId)?.live === true;
      const replaced = sessions.attach(created);
      if (replaced) conflicts.replaced(agentId, replaced.peer, created.peer, now);
      metrics.agentConnects.inc();
      log.info({ agentId, peer: created.peer, replacedPeer: replaced?.peer }, 'agent connected');
      if (replaced && previousLive) warnTakeover(agentId, created.peer, replaced.peer);
      if (deps.configSource.needsHeartbeat === false)
        pushConfig(created, headerDetail(created), 'on connect');
      return created;
    }

    call.read(onMessage, () => call.end(Status.OK));
  };
}
