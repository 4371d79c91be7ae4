/**
 * What the parts of one gRPC server share (http2-server.ts builds it once per server): its bounds,
 * log, metrics, handlers and live sessions. The session and stream listeners read it instead of
 * closing over per-connection state, so a connection costs no closures.
 */
import type { Logger } from '../../platform/obs/logger.js';
import type { Metrics } from '../../platform/obs/metrics.js';
import type { RevocationCheck } from './certificate-gate.js';
import type { ServerCall } from './server-call.js';
import type { GrpcServerLimits } from './server-limits.js';
import type { AgentSessionInfo, SessionInfo } from './session-info.js';

export type CallHandler = (call: ServerCall, session: SessionInfo) => void;

export interface GrpcServerContext {
  readonly limits: GrpcServerLimits;
  /** The server's logger (component grpc). */
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly handlers: ReadonlyMap<string, CallHandler>;
  readonly sessions: Set<AgentSessionInfo>;
  /** False once stopAccepting ran: new sessions are sent GOAWAY at once. */
  accepting: boolean;
  /** The CRL the certificate gate checks (when OpenSSL does not); swapped by setSecureContext. */
  revocation: RevocationCheck | undefined;
}
