/**
 * The gRPC-over-HTTP/2 server: a node:http2 secure server with the bounds a gateway for root
 * agents needs (docs/hardening.md §1), session keepalive and ping policy, routing by `:path`, and a
 * graceful drain. It knows gRPC, not Elkeid: handlers are plugged in by method path.
 */
import http2, {
  type Http2SecureServer,
  type IncomingHttpHeaders,
  type SecureServerOptions,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../../platform/obs/logger.js';
import type { Metrics } from '../../platform/obs/metrics.js';
import { installCertificateGate } from './certificate-gate.js';
import { ACCEPT_ENCODING_HEADER, parseEncoding } from './codecs.js';
import { type HandshakeGate, installHandshakeGate } from './handshake-gate.js';
import { parseGrpcTimeout, ServerCall } from './server-call.js';
import { encodeGrpcMessage, type GrpcError, Status } from './status.js';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR, NGHTTP2_CANCEL } = http2.constants;

export interface GrpcServerLimits {
  /** Declared and decompressed size bound of one message (Elkeid: 10 MiB). */
  maxMessageBytes: number;
  /** Advertised SETTINGS_MAX_CONCURRENT_STREAMS; an agent needs 1 Transfer + 1 Upload. */
  maxConcurrentStreams: number;
  maxHeaderListSize: number;
  maxHeaderListPairs: number;
  /** nghttp2 per-session memory cap in MB; past it new streams get ENHANCE_YOUR_CALM. */
  maxSessionMemoryMb: number;
  /** TCP connections accepted at once (handshakes included); past it the socket is dropped. */
  maxSockets: number;
  /** TLS handshakes in progress at once; past it new connections are refused before TLS (handshake-gate.ts). */
  maxPendingHandshakes: number;
  /** Of those, at most this many from one source address (slowloris from one peer). */
  maxPendingHandshakesPerSource: number;
  handshakeTimeoutMs: number;
  /** A session with no open stream for this long is sent GOAWAY and closed. */
  idleSessionMs: number;
  /** Server PING interval on every session, and how long the ack may take before we destroy it. */
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  /** Client PINGs closer than this count as a strike (grpc-go EnforcementPolicy.MinTime). */
  minClientPingIntervalMs: number;
  maxPingStrikes: number;
}

/** Admission for `maxPending` TLS handshakes in progress: one source address gets a quarter of them. */
export function admissionLimits(
  maxPending: number,
): Pick<GrpcServerLimits, 'maxPendingHandshakes' | 'maxPendingHandshakesPerSource'> {
  return {
    maxPendingHandshakes: maxPending,
    maxPendingHandshakesPerSource: Math.max(1, Math.ceil(maxPending / 4)),
  };
}

export const DEFAULT_LIMITS: GrpcServerLimits = {
  maxMessageBytes: 10 * 1024 * 1024,
  maxConcurrentStreams: 16,
  maxHeaderListSize: 16 * 1024,
  maxHeaderListPairs: 64,
  maxSessionMemoryMb: 32,
  maxSockets: 100_000,
  // Above the Elkeid agent's 15 s dial timeout (docs/elkeid-protocol.md §1.8): with TLS 1.3 the client
  // counts itself connected once it has sent Finished; a starved server that times the handshake
  // out first destroys a connection the agent already streams on, and a storm turns into retries
  // (docs/capacity.md). Slowloris handshakes still end within 20 s.
  handshakeTimeoutMs: 20_000,
  // A core completes ~500 agent handshakes a second (bench:gateway): 512 in progress is about one
  // second of work, far inside the agents' 15 s dial timeout, and over a WAN (two round trips per
  // handshake) still more than a core can do. docs/capacity.md, "Reconnect storm".
  ...admissionLimits(512),
  idleSessionMs: 30_000,
  keepaliveTimeMs: 60_000,
  keepaliveTimeoutMs: 20_000,
  minClientPingIntervalMs: 5_000,
  maxPingStrikes: 2,
};

/** TLS 1.3 suites first, then TLS 1.2 ECDHE with AEAD only (Mozilla "intermediate"). */
export const AEAD_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export type CallHandler = (call: ServerCall, session: SessionInfo) => void;

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
const kInfo = Symbol('sessionInfo');
const kOpenedAt = Symbol('streamOpenedAt');
type TaggedSession = ServerHttp2Session & { [kInfo]: AgentSessionInfo };
type TaggedStream = ServerHttp2Stream & { [kInfo]: AgentSessionInfo; [kOpenedAt]: number };

class AgentSessionInfo implements SessionInfo {
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
      const c = this.socket.getPeerCertificate();
      this.#cert = {
        identity: typeof c?.subject?.CN === 'string' ? c.subject.CN : '',
        serial: (c?.serialNumber ?? '').toLowerCase(),
      };
    }
    return this.#cert;
  }
}

function ignoreError(): void {}

/** Accept queue length asked of the kernel (Node's default is 511). */
const LISTEN_BACKLOG = 4096;

/** A stream cancelled this soon after it opened counts toward the Rapid Reset limit. */
const RAPID_RESET_WINDOW_MS = 1000;
const RAPID_RESET_LIMIT = 100;

export interface GrpcServerOptions {
  tls: SecureServerOptions;
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
  listen(port: number, host: string): Promise<number>;
  /** Swaps certificates/CA/CRL for new handshakes. */
  setSecureContext(tls: SecureServerOptions): void;
  /** Destroys sessions whose client certificate serial is in the set (after a CRL reload). */
  closeRevoked(serials: ReadonlySet<string>): number;
  /** Stops accepting and sends GOAWAY to every session; streams may finish. */
  stopAccepting(): void;
  /** Waits for sessions to close, up to graceMs, then destroys the rest. */
  drain(graceMs: number): Promise<void>;
}

export function createGrpcServer(opts: GrpcServerOptions): GrpcServer {
  const { limits, logger, metrics, handlers } = opts;
  const sessions = new Set<SessionInfo>();
  const log = logger.child({ component: 'grpc' });
  let accepting = true;

  const server = http2.createSecureServer({
    ...opts.tls,
    minVersion: 'TLSv1.2',
    ciphers: AEAD_CIPHERS,
    honorCipherOrder: true,
    requestCert: true,
    // Verification still happens in the handshake; certificate-gate.ts closes unverified peers
    // before HTTP/2 starts, because Node's built-in refusal gives no event to log or count.
    rejectUnauthorized: false,
    allowHTTP1: false,
    ALPNProtocols: ['h2'],
    handshakeTimeout: limits.handshakeTimeoutMs,
    unknownProtocolTimeout: limits.handshakeTimeoutMs,
    maxSessionMemory: limits.maxSessionMemoryMb,
    maxHeaderListPairs: limits.maxHeaderListPairs,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    settings: {
      maxConcurrentStreams: limits.maxConcurrentStreams,
      maxHeaderListSize: limits.maxHeaderListSize,
      enablePush: false,
    },
  });
  server.maxConnections = limits.maxSockets;
  const certRefusals = rateLimitedRefusalLog(log);
  installCertificateGate(server, {
    reasonOf: (detail) => tlsFailureReason(new Error(detail)),
    onRefuse(reason, peer, detail) {
      metrics.tlsHandshakeFailures.inc({ reason });
      certRefusals(reason, peer, detail);
    },
  });
  let refusedSinceLog = 0;
  let lastRefusalLog = 0;
  const gate = installHandshakeGate(server, {
    max: limits.maxPendingHandshakes,
    maxPerSource: limits.maxPendingHandshakesPerSource,
    onPending: (n) => metrics.handshakesPending.set(n),
    onRefuse(reason, peer) {
      metrics.connectionsRefused.inc({ reason });
      refusedSinceLog++;
      const now = Date.now();
      // One line per 10 s at most: a storm refuses thousands a second.
      if (now - lastRefusalLog >= 10_000) {
        log.warn(
          { reason, peer, refused: refusedSinceLog, pending: gate.pending, max: limits.maxPendingHandshakes },
          'refusing new connections: too many TLS handshakes in progress (agents retry in 5 s)',
        );
        lastRefusalLog = now;
        refusedSinceLog = 0;
      }
    },
  });

  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    const reason = tlsFailureReason(err);
    metrics.tlsHandshakeFailures.inc({ reason });
    log.debug({ reason, peer: socket.remoteAddress, err: err.message }, 'TLS handshake refused');
  });
  const onSocketError = (err: Error) => log.debug({ err: err.message }, 'socket error');
  server.on('secureConnection', (socket: TLSSocket) => {
    // An unhandled socket error would crash the process (CVE-2025-59465 class).
    socket.on('error', onSocketError);
  });
  server.on('unknownProtocol', (socket) => {
    metrics.tlsHandshakeFailures.inc({ reason: 'alpn' });
    socket.destroy();
  });
  server.on('sessionError', (err) => log.debug({ err: err.message }, 'session error'));

  const onSessionError = (err: Error) => log.debug({ err: err.message }, 'session error');
  function onSessionClose(this: TaggedSession) {
    sessions.delete(this[kInfo]);
    metrics.sessionsOpen.dec();
  }
  function onSessionPing(this: TaggedSession) {
    onClientPing(this[kInfo]);
  }
  function onSessionStream(this: TaggedSession, stream: ServerHttp2Stream, headers: IncomingHttpHeaders) {
    onStream(this[kInfo], stream as TaggedStream, headers);
  }

  server.on('session', (session: TaggedSession) => {
    const socket = session.socket as TLSSocket;
    if (!accepting) {
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

  // Ping strikes as grpc-go's server counts them (http2_server.go handlePing): a client PING
  // after the server sent headers or data is never a strike and clears them. grpc-go clients
  // (stock Elkeid agents) send a PING for each DATA frame they receive while estimating the
  // bandwidth-delay product, so a burst of commands is answered by a burst of PINGs; counting
  // those closed the agent's session. A PING flood with nothing sent in between still strikes.
  function onClientPing(info: SessionInfo): void {
    if (info.resetPingStrikes) {
      info.resetPingStrikes = false;
      info.pingStrikes = 0;
      return;
    }
    const now = Date.now();
    if (info.lastClientPingAt !== 0 && now - info.lastClientPingAt < limits.minClientPingIntervalMs) {
      info.pingStrikes++;
      if (info.pingStrikes > limits.maxPingStrikes) {
        metrics.sessionsClosed.inc({ reason: 'too_many_pings' });
        log.info({ peer: info.socket.remoteAddress }, 'GOAWAY too_many_pings');
        closeSession(info, NGHTTP2_ENHANCE_YOUR_CALM, 'too_many_pings');
      }
    } else {
      info.pingStrikes = 0;
    }
    info.lastClientPingAt = now;
  }

  function closeSession(info: SessionInfo, code: number, debug: string): void {
    const s = info.session;
    if (s.destroyed) return;
    try {
      s.goaway(code, 0, Buffer.from(debug));
    } catch {
      // goaway throws on a session already closing; destroying is still right.
    }
    // Give the GOAWAY frame a moment to reach the peer.
    setTimeout(() => s.destroy(), 100).unref();
  }

  function onStreamClose(this: TaggedStream): void {
    const info = this[kInfo];
    info.openStreams--;
    const now = Date.now();
    if (info.openStreams === 0) info.idleSince = now;
    // Rapid Reset (CVE-2023-44487): nghttp2 stops reading after its own limit but leaves the
    // socket open; we close a session whose client keeps cancelling streams right after opening.
    if (this.rstCode === NGHTTP2_CANCEL && now - this[kOpenedAt] < RAPID_RESET_WINDOW_MS) {
      info.rapidResets++;
      if (info.rapidResets === RAPID_RESET_LIMIT) {
        metrics.sessionsClosed.inc({ reason: 'rapid_reset' });
        log.warn({ peer: info.socket.remoteAddress }, 'GOAWAY rapid reset');
        closeSession(info, NGHTTP2_ENHANCE_YOUR_CALM, 'rapid_reset');
      }
    }
  }

  function onStream(info: AgentSessionInfo, stream: TaggedStream, headers: IncomingHttpHeaders): void {
    stream.on('error', ignoreError);
    info.openStreams++;
    stream[kInfo] = info;
    stream[kOpenedAt] = Date.now();
    stream.on('close', onStreamClose);
    const path = String(headers[':path'] ?? '');
    if (headers[':method'] !== 'POST') {
      earlyReply(stream, 405, Status.UNIMPLEMENTED, 'gRPC requires POST');
      return;
    }
    const contentType = String(headers['content-type'] ?? '');
    if (!contentType.startsWith('application/grpc')) {
      // PROTOCOL-HTTP2.md: a non-gRPC content type gets HTTP 415.
      earlyReply(stream, 415, Status.INTERNAL, `invalid gRPC request content-type "${contentType}"`);
      return;
    }
    const handler = handlers.get(path);
    if (!handler) {
      metrics.grpcCalls.inc({ method: 'unknown', code: String(Status.UNIMPLEMENTED) });
      earlyReply(stream, 200, Status.UNIMPLEMENTED, `unknown method ${path}`);
      return;
    }
    const encodingHeader = headers['grpc-encoding'];
    const encoding = parseEncoding(typeof encodingHeader === 'string' ? encodingHeader : undefined);
    if (!encoding) {
      earlyReply(stream, 200, Status.UNIMPLEMENTED, `unsupported grpc-encoding "${String(encodingHeader)}"`);
      return;
    }
    let deadlineMs: number | undefined;
    try {
      deadlineMs = parseGrpcTimeout(headers['grpc-timeout']);
    } catch (err) {
      earlyReply(stream, 200, Status.INTERNAL, (err as GrpcError).message);
      return;
    }
    const call = new ServerCall(stream, headers, {
      maxMessageBytes: limits.maxMessageBytes,
      encoding,
      onSend: () => {
        info.resetPingStrikes = true;
      },
      ...(deadlineMs !== undefined ? { deadlineMs } : {}),
    });
    call.onClose((end) => metrics.grpcCalls.inc({ method: path, code: String(end.code) }));
    try {
      handler(call, info);
    } catch (err) {
      log.error({ err, method: path }, 'handler threw');
      call.fail(err);
    }
  }

  // One sweep for all sessions instead of timers per session: keepalive pings, ack timeouts,
  // idle sessions (docs/hardening.md §0.2: node:http2 has no idle timeout by default).
  const sweepEvery = Math.max(250, Math.min(limits.keepaliveTimeMs, limits.idleSessionMs) / 4);
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const info of sessions) {
      const s = info.session;
      if (s.destroyed || s.closed) continue;
      if (info.pingSentAt !== 0 && now - info.pingSentAt > limits.keepaliveTimeoutMs) {
        metrics.sessionsClosed.inc({ reason: 'keepalive_timeout' });
        s.destroy();
        continue;
      }
      if (info.openStreams === 0 && now - info.idleSince > limits.idleSessionMs) {
        metrics.sessionsClosed.inc({ reason: 'idle' });
        closeSession(info, NGHTTP2_NO_ERROR, 'idle');
        continue;
      }
      if (info.pingSentAt === 0 && now - info.lastPingAckAt >= limits.keepaliveTimeMs) {
        info.pingSentAt = now;
        try {
          s.ping((err) => {
            info.pingSentAt = 0;
            info.lastPingAckAt = Date.now();
            if (err) s.destroy();
          });
        } catch {
          s.destroy();
        }
      }
    }
  }, sweepEvery);
  sweep.unref();

  return {
    server,
    sessions,
    admission: gate,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        // A storm's SYNs wait in the accept queue rather than being dropped (a dropped SYN is
        // retried after 1, 3, 7 s); the kernel caps this at net.core.somaxconn.
        server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    setSecureContext(tls) {
      server.setSecureContext(tls);
    },
    closeRevoked(serials) {
      let n = 0;
      for (const info of sessions) {
        const serial = serials.size > 0 ? info.cert().serial : '';
        if (serial && serials.has(serial)) {
          metrics.sessionsClosed.inc({ reason: 'revoked' });
          info.session.destroy();
          n++;
        }
      }
      return n;
    },
    stopAccepting() {
      accepting = false;
      server.close();
      for (const info of sessions) {
        if (!info.session.closed) info.session.close();
      }
    },
    async drain(graceMs) {
      const deadline = Date.now() + graceMs;
      while (sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      for (const info of sessions) info.session.destroy(undefined, NGHTTP2_CANCEL);
      clearInterval(sweep);
    },
  };
}

/** An error before any message: one HEADERS frame with END_STREAM (trailers-only). */
function earlyReply(stream: ServerHttp2Stream, httpStatus: number, code: number, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond(
    {
      ':status': httpStatus,
      'content-type': 'application/grpc',
      'grpc-status': String(code),
      'grpc-message': encodeGrpcMessage(message),
      'grpc-accept-encoding': ACCEPT_ENCODING_HEADER,
    },
    { endStream: true },
  );
  setImmediate(() => {
    if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_NO_ERROR);
  });
}

function tlsFailureReason(err: Error | NodeJS.ErrnoException): string {
  const text = `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`.toLowerCase();
  if (text.includes('cert_revoked')) return 'revoked';
  if (text.includes('cert_has_expired')) return 'expired';
  if (text.includes('timeout') || text.includes('timed out')) return 'timeout';
  if (text.includes('revoked')) return 'revoked';
  if (text.includes('expired')) return 'expired';
  if (text.includes('peer did not return a certificate') || text.includes('no certificate')) return 'no_cert';
  if (/unknown ca|unable.to.(get|verify)|self.signed|certificate verify|cert_untrusted/.test(text))
    return 'untrusted';
  if (text.includes('version') || text.includes('protocol')) return 'protocol';
  return 'other';
}

/**
 * Log lines for refused client certificates: the first at once, then at most one per 10 s with
 * the count by reason since the last line and the latest peer. A refused agent retries for ever.
 */
function rateLimitedRefusalLog(
  log: Logger,
): (reason: string, peer: string | undefined, detail: string) => void {
  let last = 0;
  let since: Record<string, number> = {};
  return (reason, peer, detail) => {
    since[reason] = (since[reason] ?? 0) + 1;
    const now = Date.now();
    if (now - last < 10_000) return;
    log.warn(
      { reason, peer, detail, refusedByReason: since },
      'client certificate refused in the TLS handshake (untrusted, expired, revoked or absent); further refusals are logged at most every 10 s',
    );
    last = now;
    since = {};
  };
}
