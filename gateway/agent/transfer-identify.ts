/**
 * Identification of the agent from the first RawData of a Transfer stream: the AgentID is
 * checked (present, well-formed, not held by another live agent, matching the certificate in
 * per-agent mode), then the session is attached, taking over an older one of the same AgentID.
 */

import type { Logger } from '../../platform/obs/logger.js';
import type { grpc } from '../../proto/gen/elkeid.js';
import { GrpcError, Status } from '../grpc/status.js';
import type { AgentHeader } from './heartbeat.js';
import { ALIVE_WITHIN_MS } from './id-conflicts.js';
import { AgentSession } from './sessions.js';
import { headerDetail } from './transfer-config.js';
import type { TransferContext, TransferStream } from './transfer-context.js';

/** AgentIDs are UUIDs in practice; bound them so a hostile one cannot bloat logs or keys. */
const AGENT_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;

/** Refusals of an empty AgentID are logged at most this often (one host retries every 5 s). */
const EMPTY_ID_LOG_EVERY_MS = 60_000;

export function headerOf(raw: grpc.RawData): AgentHeader {
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

/**
 * Elkeid accepts an empty AgentID (every such host then shares it); we refuse it, and say so
 * in the log with what to do, at most once a minute with the count since the last line.
 */
export class EmptyIdLog {
  private last = 0;
  private since = 0;

  constructor(private readonly log: Logger) {}

  refused(peer: string, hostname: string): void {
    this.since++;
    const now = Date.now();
    if (now - this.last < EMPTY_ID_LOG_EVERY_MS) return;
    this.log.warn(
      { peer, hostname, refusedSinceLastLine: this.since },
      'agent refused: empty AgentID (the host has no DMI product UUID or machine-id the agent can use, ' +
        'e.g. a container or some VMs); set SPECIFIED_AGENT_ID in the agent environment to a unique ID per host',
    );
    this.last = now;
    this.since = 0;
  }
}

/**
 * A reconnect normally finds the old stream dead. A live one taken over is either an agent whose
 * old connection is not yet noticed as gone, or someone else holding a certificate valid for
 * this AgentID (in fleet mode: anyone with the shared client certificate).
 */
function warnTakeover(ctx: TransferContext, agentId: string, peer: string, previousPeer: string): void {
  ctx.log.warn(
    { agentId, peer, previousPeer, identity: ctx.deps.identity },
    ctx.deps.identity === 'fleet'
      ? 'agent stream taken over by a newer connection (fleet certificate: anyone holding it can do this; FLEETGATE_IDENTITY=per-agent prevents it)'
      : 'agent stream taken over by a newer connection presenting the same agent certificate',
  );
}

/** Throws the gRPC error that ends the stream when the AgentID of `raw` is refused. */
function checkAgentId(ctx: TransferContext, stream: TransferStream, raw: grpc.RawData, now: number): void {
  const { metrics, sessions } = ctx;
  const agentId = raw.AgentID;
  if (agentId === '') {
    metrics.agentRefusals.inc({ reason: 'empty_agent_id' });
    ctx.emptyIdLog.refused(stream.call.peer, raw.Hostname);
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
    ctx.conflicts.flapping(agentId, now)
  ) {
    // Two live agents share this ID (id-conflicts.ts): keep the connected one, as Elkeid does.
    metrics.agentRefusals.inc({ reason: 'agent_id_conflict' });
    throw new GrpcError(
      Status.ALREADY_EXISTS,
      'agentID conflict: another live agent uses this AgentID; set SPECIFIED_AGENT_ID to a unique ID per host',
    );
  }
  if (ctx.deps.identity === 'per-agent' && agentId !== stream.info.cert().identity) {
    metrics.agentRefusals.inc({ reason: 'identity_mismatch' });
    ctx.log.warn(
      { agentId, certIdentity: stream.info.cert().identity, peer: stream.call.peer },
      'AgentID does not match certificate',
    );
    throw new GrpcError(Status.PERMISSION_DENIED, 'AgentID does not match the client certificate identity');
  }
}

/** The session of the agent that sent `raw` as its first message; throws when refused. */
export function identifyAgent(
  ctx: TransferContext,
  stream: TransferStream,
  raw: grpc.RawData,
  now: number,
): AgentSession {
  checkAgentId(ctx, stream, raw, now);
  const { sessions, deps } = ctx;
  const agentId = raw.AgentID;
  const created = new AgentSession({
    agentId,
    peer: stream.call.peer,
    header: headerOf(raw),
    certIdentity: deps.identity === 'per-agent' ? stream.info.cert().identity : '',
    call: stream.call,
  });
  const previousLive = sessions.get(agentId)?.live === true;
  const replaced = sessions.attach(created);
  if (replaced) ctx.conflicts.replaced(agentId, replaced.peer, created.peer, now);
  ctx.metrics.agentConnects.inc();
  ctx.log.info({ agentId, peer: created.peer, replacedPeer: replaced?.peer }, 'agent connected');
  if (replaced && previousLive) warnTakeover(ctx, agentId, created.peer, replaced.peer);
  if (deps.configSource.needsHeartbeat === false)
    ctx.configPusher.push(created, headerDetail(created), 'on connect');
  return created;
}
