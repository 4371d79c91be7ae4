/**
 * The gRPC-over-HTTP/2 server: a node:http2 secure server with the bounds a gateway for root
 * agents needs (docs/hardening.md §1), session keepalive and ping policy, routing by `:path`, and a
 * graceful drain. It knows gRPC, not Elkeid: handlers are plugged in by method path.
 *
 * Its parts: connection-admission.ts (TLS options, handshake and certificate gates),
 * session-policy.ts (ping strikes, Rapid Reset, keepalive and idle sweep), stream-admission.ts
 * (request headers to a ServerCall); this file wires sessions to them and shuts the server down.
 */
import http2, {
  type Http2SecureServer,
  type IncomingHttpHeaders,
  type SecureServerOptions,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../../platform/obs/logger.js';
import type { Metrics } from '../../platform/obs/metrics.js';
import type { RevocationCheck } from './certificate-gate.js';
import { createSecureHttp2Server, installConnectionAdmission } from './connection-admission.js';
import type { HandshakeGate } from './handshake-gate.js';
import type { CallHandler, GrpcServerContext } from './server-context.js';
import type { GrpcServerLimits } from './server-limits.js';
import {
  AgentSessionInfo,
  kInfo,
  kOpenedAt,
  type SessionInfo,
  type TaggedSession,
  type TaggedStream,
} from './session-info.js';
import { countClientPing, countStreamClose, startSessionSweep } from './session-policy.js';
import { admitStream } from './stream-admission.js';

export type { CallHandler } from './server-context.js';
export { AEAD_CIPHERS, admissionLimits, DEFAULT_LIMITS, type GrpcServerLimits } from './server-limits.js';
export type { SessionInfo } from './session-info.js';

const { NGHTTP2_NO_ERROR, NGHTTP2_CANCEL } = http2.constants;

/** Accept queue length asked of the kernel (Node's default is 511). */
const LISTEN_BACKLOG = 4096;

export interface GrpcServerOptions {
  tls: SecureServerOptions;
  /** A CRL checked at the certificate gate rather than by OpenSSL (platform/pki/revocation.ts). */
  revocation?: RevocationCheck | undefined;
  limits: GrpcServerLimits;
  handlers: ReadonlyMap<string, CallHandler>;
  logger: Logger;
  metrics: Metrics;
}

export interface GrpcServer {
  readonly server: Http2SecureServer;
  readonly sessions: ReadonlySet<SessionInfo>;
  /** Admission by handshakes in progress (handshake-gate.ts): pending now, refused so far. */
  readonly admission: HandshakeGate;
  /** `reusePort`: share the port with other processes (SO_REUSEPORT; Node >= 22.12, Linux). */
  listen(port: number, host: string, o?: { reusePort?: boolean }): Promise<number>;
  /** Swaps certificates/CA/CRL (OpenSSL's, or the gate's `revocation`) for new handshakes. */
  setSecureContext(tls: SecureServerOptions, revocation?: RevocationCheck): void;
  /** Destroys sessions whose client certificate serial is in the set (after a CRL reload). */
  closeRevoked(serials: ReadonlySet<string>): number;
  /** Stops accepting and sends GOAWAY to every session; streams may finish. */
  stopAccepting(): void;
  /** Waits for sessions to close, up to graceMs, then destroys the rest. */
  drain(graceMs: number): Promise<void>;
}

export function createGrpcServer(opts: GrpcServerOptions): GrpcServer {
  const context: GrpcServerContext = {
    limits: opts.limits,
    log: opts.logger.child({ component: 'grpc' }),
    metrics: opts.metrics,
    handlers: opts.handlers,
    sessions: new Set<AgentSessionInfo>(),
    accepting: true,
    revocation: opts.revocation,
  };
  const server = createSecureHttp2Server(opts.tls, opts.limits);
  const admission = installConnectionAdmission(server, context);
  installSessionListeners(server, context);
  const sweep = startSessionSweep(context);

  return {
    server,
    sessions: context.sessions,
    admission,
    listen: (port, host, o) => listen(server, port, host, o?.reusePort === true),
    setSecureContext(tls, revocation) {
      server.setSecureContext(tls);
      context.revocation = revocation;
    },
    closeRevoked: (serials) => closeRevoked(context, serials),
    stopAccepting() {
      context.accepting = false;
      server.close();
      for (const info of context.sessions) {
        if (!info.session.closed) info.session.close();
      }
    },
    async drain(graceMs) {
      await drainSessions(context, graceMs);
      clearInterval(sweep);
    },
  };
}

function ignoreError(): void {}

/**
 * Session and stream listeners, made once per server and shared by every session: the
 * SessionInfo of a session (and a stream's opening time) hang on it under symbols
 * (session-info.ts), so a new connection allocates no closures (a reconnect storm starts
 * thousands of sessions a second).
 */
function installSessionListeners(server: Http2SecureServer, context: GrpcServerContext): void {
  const { log, metrics, sessions } = context;
  const onSessionError = (err: Error) => log.debug({ err: err.message }, 'session error');
  function onSessionClose(this: TaggedSession): void {
    sessions.delete(this[kInfo]);
    metrics.sessionsOpen.dec();
  }
  function onSessionPing(this: TaggedSession): void {
    countClientPing(context, this[kInfo]);
  }
  function onStreamClose(this: TaggedStream): void {
    countStreamClose(context, this[kInfo], this.rstCode, this[kOpenedAt]);
  }
  function onSessionStream(
    this: TaggedSession,
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
  ): void {
    const info = this[kInfo];
    const tagged = stream as TaggedStream;
    tagged.on('error', ignoreError);
    info.openStreams++;
    tagged[kInfo] = info;
    tagged[kOpenedAt] = Date.now();
    tagged.on('close', onStreamClose);
    admitStream(context, info, tagged, headers);
  }

  server.on('session', (session: TaggedSession) => {
    const socket = session.socket as TLSSocket;
    if (!context.accepting) {
      session.goaway(NGHTTP2_NO_ERROR);
      session.destroy();
      return;
    }
    const info = new AgentSessionInfo(session, socket, Date.now());
    session[kInfo] = info;
    sessions.add(info);
    metrics.sessionsOpen.inc();
    session.on('error', onSessionError);
    session.on('close', onSessionClose);
    session.on('ping', onSessionPing);
    session.on('stream', onSessionStream);
  });
}

function listen(server: Http2SecureServer, port: number, host: string, reusePort: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // A storm's SYNs wait in the accept queue rather than being dropped (a dropped SYN is
    // retried after 1, 3, 7 s); the kernel caps this at net.core.somaxconn. With reusePort each
    // process has its own accept queue and the kernel spreads new connections over them by a
    // hash of the 4-tuple (`reusePort` is not in Node 20's types, hence the spread).
    server.listen({ port, host, backlog: LISTEN_BACKLOG, ...(reusePort ? { reusePort } : {}) }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeRevoked(context: GrpcServerContext, serials: ReadonlySet<string>): number {
  let closed = 0;
  for (const info of context.sessions) {
    const serial = serials.size > 0 ? info.cert().serial : '';
    if (serial && serials.has(serial)) {
      context.metrics.sessionsClosed.inc({ reason: 'revoked' });
      info.session.destroy();
      closed++;
    }
  }
  return closed;
}

async function drainSessions(context: GrpcServerContext, graceMs: number): Promise<void> {
  const deadline = Date.now() + graceMs;
  while (context.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const info of context.sessions) info.session.destroy(undefined, NGHTTP2_CANCEL);
}
