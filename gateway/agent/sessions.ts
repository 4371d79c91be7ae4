/**
 * The registry of connected agents (Elkeid's connection pool, §2.2): one live Transfer stream
 * per AgentID, the latest heartbeats, and command delivery with a bounded queue per agent.
 */

import type { Metrics } from '../../platform/obs/metrics.js';
import { grpc } from '../../proto/gen/elkeid.js';
import type { ServerCall } from '../grpc/server-call.js';
import { Status, type StatusCode } from '../grpc/status.js';
import type { AgentHeader, Detail } from './heartbeat.js';

/** What happened to one pushed command. */
export type DeliveryResult =
  | 'sent'
  | 'not_connected'
  | 'queue_full'
  | 'timed_out'
  | 'closed'
  | 'too_large'
  | 'empty_command';

/**
 * A Command with neither a Task nor a Config (AgentCtrl alone included) is an empty message to a
 * stock agent, which reads it as "no plugins" and uninstalls them all; it is never sent. An
 * explicit empty Config (`Config: []`) is a config push and goes out.
 */
function isEmptyCommand(command: grpc.Command.$Properties): boolean {
  return (
    (command.Task === undefined || command.Task === null) &&
    (command.Config === undefined || command.Config === null)
  );
}

/** Elkeid agents receive with grpc-go's default 4 MiB limit (docs/elkeid-protocol.md §1.4). */
export const MAX_COMMAND_BYTES = 4 * 1024 * 1024 - 5;

export interface SessionLimits {
  /** Agent streams one gateway holds (FLEETGATE_MAX_CONNECTIONS). */
  maxAgents: number;
  /** Commands written but not yet flushed to one agent. */
  commandQueue: number;
  commandTimeoutMs: number;
}

export class AgentSession {
  readonly agentId: string;
  readonly peer: string;
  /** Unix seconds, as Elkeid's `create_at`. */
  readonly connectedAt: number;
  /** The client certificate's identity in per-agent mode; '' in fleet mode (all agents share one). */
  readonly certIdentity: string;
  header: AgentHeader;
  /** Latest parsed 1000 heartbeat; undefined before the first. */
  detail: Detail | undefined;
  readonly plugins = new Map<string, Detail>();
  records = 0;
  /** When the last RawData arrived (ms); a sign of life for duplicate-ID decisions. */
  lastMessageAt = Date.now();
  readonly #call: ServerCall;
  #outstanding = 0;

  constructor(init: {
    certIdentity: string;
    agentId: string;
    peer: string;
    header: AgentHeader;
    call: ServerCall;
  }) {
    this.agentId = init.agentId;
    this.certIdentity = init.certIdentity;
    this.peer = init.peer;
    this.header = init.header;
    this.#call = init.call;
    this.connectedAt = Math.floor(Date.now() / 1000);
  }

  get live(): boolean {
    return !this.#call.ended;
  }

  /** The HTTP/2 session (TLS connection) the agent's Transfer stream runs on. */
  get connection(): unknown {
    return this.#call.stream.session;
  }

  /** Writes one encoded Command and resolves with what happened to it. */
  deliver(encoded: Uint8Array, limits: SessionLimits): Promise<DeliveryResult> {
    if (!this.live) return Promise.resolve('not_connected');
    if (encoded.length > MAX_COMMAND_BYTES) return Promise.resolve('too_large');
    if (this.#outstanding >= limits.commandQueue) return Promise.resolve('queue_full');
    this.#outstanding++;
    return new Promise((resolve) => {
      let settled = false;
      const settle = (r: DeliveryResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      // The write callback fires once nghttp2 has the frame; an agent that stopped reading
      // (flow-control window exhausted) never gets there, which is `timed_out`.
      const timer = setTimeout(() => settle('timed_out'), limits.commandTimeoutMs);
      this.#call.write(encoded, (err) => {
        this.#outstanding--;
        settle(err ? 'closed' : 'sent');
      });
    });
  }

  /**
   * Ends the agent's stream with a status (OK = Elkeid's server-initiated close), after the
   * records already received from it have reached the sink; what the agent sent before it saw
   * the status is still read and stored for a short grace (ServerCall.endAfterPending).
   */
  close(code: StatusCode = Status.OK, message = '', o: { goaway?: boolean } = {}): void {
    // GOAWAY first: the agent opens no new stream on this connection and redials (discovery).
    if (o.goaway) this.#call.stream.session?.close();
    this.#call.endAfterPending(code, message);
  }

  /** Counts the messages received and not yet handed to the sink as discarded (ServerCall.abandon). */
  abandon(): void {
    this.#call.abandon();
  }

  /** Elkeid's `/conn/stat` element. */
  stat(): { agent_info: Detail; plugins_info: Detail[] } {
    return { agent_info: this.detail ?? {}, plugins_info: [...this.plugins.values()] };
  }
}

export class SessionRegistry {
  readonly limits: SessionLimits;
  readonly #byId = new Map<string, AgentSession>();
  readonly #metrics: Metrics;
  /** Streams holding a slot: attached agents plus streams waiting for their first message. */
  #reserved = 0;

  constructor(limits: SessionLimits, metrics: Metrics) {
    this.limits = limits;
    this.#metrics = metrics;
  }

  /** The manager's desired limit for this gateway (load control); undefined = none. */
  #desiredLimit: number | undefined;

  /** Sets the desired limit: new streams are refused at it, as at the hard limit (load-shedder.ts). */
  setDesiredLimit(limit: number | undefined): void {
    this.#desiredLimit = limit;
  }

  get desiredLimit(): number | undefined {
    return this.#desiredLimit;
  }

  /** The limit admission applies: the lower of maxAgents and the desired limit. */
  get effectiveLimit(): number {
    const d = this.#desiredLimit;
    return d === undefined ? this.limits.maxAgents : Math.min(d, this.limits.maxAgents);
  }

  /** Takes a connection slot before anything is read (Elkeid §1.3 step 1). */
  reserve(): boolean {
    if (this.#reserved >= this.effectiveLimit) return false;
    this.#reserved++;
    return true;
  }

  release(): void {
    this.#reserved--;
  }

  get reserved(): number {
    return this.#reserved;
  }

  /** Registers a session; a live one with the same ID is replaced (newest wins) and returned. */
  attach(session: AgentSession): AgentSession | undefined {
    const old = this.#byId.get(session.agentId);
    this.#byId.set(session.agentId, session);
    this.#metrics.agentsConnected.set(this.#byId.size);
    if (old) {
      this.#metrics.agentReplaced.inc();
      old.close(Status.ABORTED, 'replaced by a newer connection of the same agent');
    }
    return old;
  }

  detach(session: AgentSession): void {
    if (this.#byId.get(session.agentId) === session) {
      this.#byId.delete(session.agentId);
      this.#metrics.agentsConnected.set(this.#byId.size);
    }
  }

  get(agentId: string): AgentSession | undefined {
    return this.#byId.get(agentId);
  }

  get size(): number {
    return this.#byId.size;
  }

  ids(): string[] {
    return [...this.#byId.keys()];
  }

  all(): IterableIterator<AgentSession> {
    return this.#byId.values();
  }

  /** Pushes a command to one agent. */
  async send(agentId: string, command: grpc.Command.$Properties): Promise<DeliveryResult> {
    const session = this.#byId.get(agentId);
    const result = isEmptyCommand(command)
      ? 'empty_command'
      : session
        ? await session.deliver(grpc.Command.encode(command).finish(), this.limits)
        : 'not_connected';
    this.#metrics.commands.inc({ result });
    return result;
  }

  /** Pushes one command to many agents, encoding it once. */
  async sendMany(
    agentIds: readonly string[],
    command: grpc.Command.$Properties,
  ): Promise<Map<string, DeliveryResult>> {
    if (isEmptyCommand(command)) {
      this.#metrics.commands.inc({ result: 'empty_command' }, agentIds.length);
      return new Map(agentIds.map((id) => [id, 'empty_command'] as const));
    }
    const encoded = grpc.Command.encode(command).finish();
    const results = await Promise.all(
      agentIds.map(async (id) => {
        const s = this.#byId.get(id);
        const r: DeliveryResult = s ? await s.deliver(encoded, this.limits) : 'not_connected';
        this.#metrics.commands.inc({ result: r });
        return [id, r] as const;
      }),
    );
    return new Map(results);
  }

  /**
   * The AgentID whose Transfer stream runs on `connection` (an HTTP/2 session): uploads carry no
   * AgentID, but a stock agent sends them on the connection of its stream. O(agents): uploads are rare.
   */
  agentOn(connection: unknown): string | undefined {
    for (const s of this.#byId.values()) if (s.connection === connection) return s.agentId;
    return undefined;
  }

  /** Closes an agent's stream (`/conn/reset`); false when it is not connected. */
  close(agentId: string, message = 'connection reset by operator'): boolean {
    const s = this.#byId.get(agentId);
    if (!s) return false;
    s.close(Status.OK, message);
    return true;
  }
}
