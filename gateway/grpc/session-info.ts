/**
 * The state the gRPC server keeps per HTTP/2 session (one TLS connection) and per stream.
 */
import type { ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';

/** What the gateway knows of one HTTP/2 session (one TLS connection). */
export interface SessionInfo {
  readonly session: ServerHttp2Session;
  readonly socket: TLSSocket;
  /**
   * Client certificate subject CN and serial (lower-case hex). Read on first use, not per
   * handshake: building the peer certificate object costs about a tenth of a handshake's CPU,
   * and only per-agent identity and CRL reloads need it.
   */
  cert(): { identity: string; serial: string };
  openStreams: number;
  idleSince: number;
  pingSentAt: number;
  lastPingAckAt: number;
  lastClientPingAt: number;
  pingStrikes: number;
  /** Set when the server sends headers or data; the next client PING then clears the strikes. */
  resetPingStrikes: boolean;
  /** Streams the client cancelled within RAPID_RESET_WINDOW_MS of opening them. */
  rapidResets: number;
}

/**
 * The SessionInfo of a session, and the state kept per stream, as properties under symbols: the
 * session and stream listeners are then one shared function each instead of closures made for
 * every connection (a reconnect storm starts thousands of sessions a second).
 */
export const kInfo = Symbol('sessionInfo');
export const kOpenedAt = Symbol('streamOpenedAt');
export type TaggedSession = ServerHttp2Session & { [kInfo]: AgentSessionInfo };
export type TaggedStream = ServerHttp2Stream & { [kInfo]: AgentSessionInfo; [kOpenedAt]: number };

export class AgentSessionInfo implements SessionInfo {
  openStreams = 0;
  idleSince: number;
  pingSentAt = 0;
  lastPingAckAt: number;
  lastClientPingAt = 0;
  pingStrikes = 0;
  resetPingStrikes = false;
  rapidResets = 0;
  #cert: { identity: string; serial: string } | undefined;

  constructor(
    readonly session: ServerHttp2Session,
    readonly socket: TLSSocket,
    now: number,
  ) {
    this.idleSince = now;
    this.lastPingAckAt = now;
  }

  cert(): { identity: string; serial: string } {
    if (!this.#cert) {
      const peer = this.socket.getPeerCertificate();
      this.#cert = {
        identity: typeof peer?.subject?.CN === 'string' ? peer.subject.CN : '',
        serial: (peer?.serialNumber ?? '').toLowerCase(),
      };
    }
    return this.#cert;
  }
}
