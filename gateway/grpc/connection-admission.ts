/**
 * Everything that happens to a connection before it is an HTTP/2 session: the node:http2 secure
 * server's TLS and HTTP/2 options, the handshake gate (handshakes in progress), the certificate
 * gate (unverified peers), and the counting and logging of TLS failures.
 */
import http2, { type Http2SecureServer, type SecureServerOptions } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../../platform/obs/logger.js';
import { installCertificateGate } from './certificate-gate.js';
import { type HandshakeGate, installHandshakeGate } from './handshake-gate.js';
import type { GrpcServerContext } from './server-context.js';
import { AEAD_CIPHERS, type GrpcServerLimits } from './server-limits.js';

/** The node:http2 secure server with the TLS and HTTP/2 bounds of a gateway for root agents. */
export function createSecureHttp2Server(
  tls: SecureServerOptions,
  limits: GrpcServerLimits,
): Http2SecureServer {
  const server = http2.createSecureServer({
    ...tls,
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
  return server;
}

/**
 * Installs the certificate gate, the handshake gate and the TLS error listeners on `server`;
 * returns the handshake gate (GrpcServer.admission).
 */
export function installConnectionAdmission(
  server: Http2SecureServer,
  context: GrpcServerContext,
): HandshakeGate {
  const { log, metrics } = context;
  const certRefusals = rateLimitedRefusalLog(log);
  installCertificateGate(server, {
    reasonOf: (detail) => tlsFailureReason(new Error(detail)),
    revocation: () => context.revocation,
    onRefuse(reason, peer, detail) {
      metrics.tlsHandshakeFailures.inc({ reason });
      certRefusals(reason, peer, detail);
    },
  });
  const gate = installHandshakeGate(server, {
    max: context.limits.maxPendingHandshakes,
    maxPerSource: context.limits.maxPendingHandshakesPerSource,
    onPending: (pending) => metrics.handshakesPending.set(pending),
    onRefuse: (reason, peer) => handshakeRefusals.refused(reason, peer),
  });
  const handshakeRefusals = new HandshakeRefusalLog(context, gate);

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
  return gate;
}

/** Counts connections the handshake gate refuses; one log line per 10 s at most (a storm refuses thousands a second). */
class HandshakeRefusalLog {
  private refusedSinceLog = 0;
  private lastLogAt = 0;

  constructor(
    private readonly context: GrpcServerContext,
    private readonly gate: HandshakeGate,
  ) {}

  refused(reason: string, peer: string | undefined): void {
    this.context.metrics.connectionsRefused.inc({ reason });
    this.refusedSinceLog++;
    const now = Date.now();
    if (now - this.lastLogAt < 10_000) return;
    this.context.log.warn(
      {
        reason,
        peer,
        refused: this.refusedSinceLog,
        pending: this.gate.pending,
        max: this.context.limits.maxPendingHandshakes,
      },
      'refusing new connections: too many TLS handshakes in progress (agents retry in 5 s)',
    );
    this.lastLogAt = now;
    this.refusedSinceLog = 0;
  }
}

export function tlsFailureReason(err: Error | NodeJS.ErrnoException): string {
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
