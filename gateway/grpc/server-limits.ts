/**
 * The bounds of the gRPC server (docs/hardening.md §1) and their defaults, and the TLS suites it
 * offers. Separate from http2-server.ts so the server's parts (admission, session policy, stream
 * admission) read them without importing the server.
 */

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
