/**
 * Wiring of the gateway role: the agent gRPC server, the session registry, the ingest sink,
 * the control API and TLS reload. Tests build it with injected parts and port 0.
 */
import path from 'node:path';
import type { Config } from '../../platform/config/env.js';
import type { Logger } from '../../platform/obs/logger.js';
import { createMetrics, type Metrics } from '../../platform/obs/metrics.js';
import { loadTlsMaterial, type TlsReloader, watchTls } from '../../platform/pki/tls-context.js';
import { type ConfigSource, noConfigSource } from '../agent/config-source.js';
import { type SessionLimits, SessionRegistry } from '../agent/sessions.js';
import type { TaskResultSink } from '../agent/special-records.js';
import { createTransferHandler, TRANSFER_METHOD } from '../agent/transfer.js';
import { createUploadHandler, UPLOAD_METHOD, UploadResults } from '../agent/upload.js';
import { DeliveryGuard } from '../control/delivery-guard.js';
import {
  type CallHandler,
  createGrpcServer,
  DEFAULT_LIMITS,
  type GrpcServer,
  type GrpcServerLimits,
} from '../grpc/http2-server.js';
import { Status } from '../grpc/status.js';
import type { IngestSink } from '../ingest/sink.js';

export interface GatewayOptions {
  config: Pick<Config, 'dataDir' | 'pkiDir' | 'identity' | 'host' | 'grpcPort' | 'maxConnections'>;
  logger: Logger;
  sink: IngestSink;
  metrics?: Metrics;
  configSource?: ConfigSource;
  taskResults?: TaskResultSink;
  limits?: Partial<GrpcServerLimits>;
  sessionLimits?: Partial<Omit<SessionLimits, 'maxAgents'>>;
  maxUploadBytes?: number;
  tlsPollMs?: number;
  /** Share the agent port with the other gateway processes of this host (SO_REUSEPORT). */
  reusePort?: boolean;
}

export interface Gateway {
  readonly grpcPort: number;
  readonly sessions: SessionRegistry;
  readonly metrics: Metrics;
  readonly grpc: GrpcServer;
  readonly uploads: UploadResults;
  readonly tls: TlsReloader;
  /** Fences and token de-duplication of the control API's `/command/batch` (delivery-guard.ts). */
  readonly guard: DeliveryGuard;
  readonly draining: boolean;
  /** Graceful stop: GOAWAY, end agent streams after their pending records, flush the sink. */
  shutdown(graceMs?: number): Promise<void>;
}

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const { config, logger, sink } = opts;
  const metrics = opts.metrics ?? createMetrics();
  const log = logger.child({ component: 'gateway' });
  const limits: GrpcServerLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  // Sockets beyond the agent limit are still admitted (to get a clear RESOURCE_EXHAUSTED), up to a margin.
  limits.maxSockets = opts.limits?.maxSockets ?? Math.ceil(config.maxConnections * 1.1) + 64;
  const sessions = new SessionRegistry(
    { maxAgents: config.maxConnections, commandQueue: 64, commandTimeoutMs: 5000, ...opts.sessionLimits },
    metrics,
  );
  const uploads = new UploadResults(path.join(config.dataDir, 'uploads'));
  const guard = new DeliveryGuard();
  // Every task result the gateway reads marks its (agent, token) answered before it goes on to
  // the manager, so a dispatcher retrying that token is refused here even if the manager has
  // not reconciled the result yet.
  const taskResults: TaskResultSink = {
    report(r) {
      const token = r.fields.token;
      if (typeof token === 'string') guard.markAnswered(r.agentId, token);
      opts.taskResults?.report(r);
    },
  };
  const handlers = new Map<string, CallHandler>([
    [
      TRANSFER_METHOD,
      createTransferHandler({
        sessions,
        sink,
        configSource: opts.configSource ?? noConfigSource,
        taskResults,
        identity: config.identity,
        logger,
        metrics,
      }),
    ],
    [
      UPLOAD_METHOD,
      createUploadHandler({
        results: uploads,
        maxBytes: opts.maxUploadBytes ?? 64 * 1024 * 1024,
        logger,
        metrics,
        taskResults,
        agentOn: (connection) => sessions.agentOn(connection),
      }),
    ],
  ]);
  const material = loadTlsMaterial(config.pkiDir);
  const grpc = createGrpcServer({
    tls: material.options,
    revocation: material.revocation,
    limits,
    handlers,
    logger,
    metrics,
  });
  const tls = watchTls(
    config.pkiDir,
    (m) => {
      grpc.setSecureContext(m.options, m.revocation);
      const closed = grpc.closeRevoked(m.revoked);
      if (closed > 0) log.warn({ closed }, 'closed sessions of revoked certificates');
    },
    (ok, err) => {
      metrics.tlsReloads.inc({ result: ok ? 'ok' : 'error' });
      if (ok) log.info({ pkiDir: config.pkiDir }, 'TLS material reloaded');
      else log.error({ err }, 'TLS reload failed; keeping the previous certificates');
    },
    opts.tlsPollMs,
  );
  const grpcPort = await grpc.listen(config.grpcPort, config.host, { reusePort: opts.reusePort === true });
  log.info({ port: grpcPort, host: config.host, identity: config.identity }, 'agent gRPC listening');

  let draining = false;
  return {
    grpcPort,
    sessions,
    metrics,
    grpc,
    uploads,
    tls,
    guard,
    get draining() {
      return draining;
    },
    async shutdown(graceMs = 20_000) {
      if (draining) return;
      draining = true;
      tls.stop();
      log.info({ agents: sessions.size, graceMs }, 'draining');
      grpc.stopAccepting();
      // Agent streams never end by themselves: end each one once the records already read from
      // it have been accepted by the sink (AgentSession.close waits for them).
      for (const s of [...sessions.all()]) s.close(Status.UNAVAILABLE, 'server shutting down');
      const deadline = Date.now() + graceMs;
      await grpc.drain(graceMs);
      // A call is over once every message its stream delivered has been handed to the sink (the
      // agent's last writes, read after its status): only then is the sink flushed.
      while (sessions.reserved > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      if (sessions.size > 0) {
        // The sink held these streams back for the whole grace (spool full or failing): what they
        // still hold in memory is lost with the process, so it is counted and logged, not dropped.
        log.error(
          { agents: sessions.size, graceMs },
          'drain grace ended with records the sink has not accepted: they are counted as discarded',
        );
        for (const s of [...sessions.all()]) s.abandon();
      }
      await sink.flush();
      log.info('drained');
    },
  };
}
