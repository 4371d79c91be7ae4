/**
 * Refusal of client certificates that fail verification (untrusted, expired, revoked, absent)
 * at the end of the TLS handshake, before the HTTP/2 server sends its first byte.
 *
 * Why here and not on the HTTP/2 session: grpc-go (the stock Elkeid agent) counts a connection
 * as up once the server's HTTP/2 SETTINGS arrive, and a connection that was up resets its
 * reconnect backoff. Refused after the session started, a refused agent redialled at once, tens
 * of handshakes a second from one host. Closed before any HTTP/2 frame, the dial fails and
 * grpc-go backs off (1 s, ×1.6, …) as it does against Elkeid's AgentCenter.
 *
 * Why not `rejectUnauthorized: true`: node:tls then destroys the socket itself with no event,
 * so nothing could be counted or logged. Here verification still happens in the handshake
 * (OpenSSL checks trust, validity and the CRL); we read its verdict and close.
 *
 * The gate wraps node:http2's own 'secureConnection' listener, the one that starts a session.
 */
import type { Http2SecureServer } from 'node:http2';
import type { TLSSocket } from 'node:tls';

/**
 * A revocation list checked at the gate instead of by OpenSSL (platform/pki/revocation.ts):
 * OpenSSL's verdict code for a verified peer, or undefined when it passes. `serial` is the peer
 * certificate's (lower-case hex), computed only if asked for.
 */
export interface RevocationCheck {
  refusal(now: number, serial: () => string): string | undefined;
}

export interface CertificateGateOptions {
  /** Called for each refused connection with the reason, the peer and OpenSSL's verdict. */
  onRefuse: (reason: string, peer: string | undefined, detail: string) => void;
  /** Maps OpenSSL's verdict to a bounded reason label. */
  reasonOf: (detail: string) => string;
  /** The revocation list checked after OpenSSL's verdict, if any (read per connection: reloads swap it). */
  revocation: () => RevocationCheck | undefined;
}

type SecureListener = (this: Http2SecureServer, socket: TLSSocket) => void;

/** Puts the gate in front of node:http2's session start. Call right after creating the server. */
export function installCertificateGate(server: Http2SecureServer, opts: CertificateGateOptions): void {
  const listeners = server.listeners('secureConnection') as SecureListener[];
  if (listeners.length !== 1) {
    throw new Error(`expected node:http2's one 'secureConnection' listener, found ${listeners.length}`);
  }
  const startSession = listeners[0]!;
  server.removeListener('secureConnection', startSession);
  server.on('secureConnection', function gate(this: Http2SecureServer, socket: TLSSocket) {
    if (!socket.authorized) {
      // At runtime authorizationError is OpenSSL's code as a string ('CERT_REVOKED', …).
      const detail = String(socket.authorizationError ?? '');
      const presented = detail !== '' && Object.keys(socket.getPeerCertificate() ?? {}).length > 0;
      refuse(socket, presented ? opts.reasonOf(detail) : 'no_cert', detail);
      return;
    }
    const revoked = opts.revocation()?.refusal(Date.now(), () => peerSerial(socket));
    if (revoked !== undefined) {
      refuse(socket, opts.reasonOf(revoked), revoked);
      return;
    }
    startSession.call(this, socket);
  });

  function refuse(socket: TLSSocket, reason: string, detail: string): void {
    opts.onRefuse(reason, socket.remoteAddress, detail);
    socket.on('error', () => {});
    socket.destroy();
  }
}

/** The verified peer's serial; the X509Certificate is far cheaper than getPeerCertificate()'s object. */
function peerSerial(socket: TLSSocket): string {
  return (socket.getPeerX509Certificate()?.serialNumber ?? '').toLowerCase();
}
