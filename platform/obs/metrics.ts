/**
 * Every Prometheus metric of the gateway, defined once. Labels are bounded (status code,
 * method, reason, data type): never an agent ID. `elkeid_ac_grpc_conn_count` keeps Elkeid's
 * name because Elkeid's Manager monitor reads it.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export function createMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: 'fleetgate_' });
  const r = [registry];
  return {
    registry,
    ...connectionMetrics(r),
    ...agentMetrics(r),
    ...ingestMetrics(r),
    ...serviceMetrics(r),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** TLS admission, HTTP/2 sessions and gRPC calls. */
function connectionMetrics(r: Registry[]) {
  return {
    tlsHandshakeFailures: new Counter({
      name: 'fleetgate_tls_handshake_failures_total',
      help: 'TLS handshakes refused or failed, by reason',
      labelNames: ['reason'],
      registers: r,
    }),
    handshakesPending: new Gauge({
      name: 'fleetgate_tls_handshakes_pending',
      help: 'TLS handshakes in progress (admission: FLEETGATE_MAX_PENDING_HANDSHAKES)',
      registers: r,
    }),
    connectionsRefused: new Counter({
      name: 'fleetgate_connections_refused_total',
      help: 'TCP connections refused before TLS: handshakes (too many in progress) or source (one address holds its share)',
      labelNames: ['reason'],
      registers: r,
    }),
    sessionsOpen: new Gauge({ name: 'fleetgate_http2_sessions', help: 'open HTTP/2 sessions', registers: r }),
    sessionsClosed: new Counter({
      name: 'fleetgate_http2_sessions_closed_total',
      help: 'HTTP/2 sessions closed by the gateway, by reason',
      labelNames: ['reason'],
      registers: r,
    }),
    grpcCalls: new Counter({
      name: 'fleetgate_grpc_calls_total',
      help: 'finished gRPC calls by method and status code',
      labelNames: ['method', 'code'],
      registers: r,
    }),
    grpcMessagesIn: new Counter({
      name: 'fleetgate_grpc_messages_received_total',
      help: 'gRPC messages received by method',
      labelNames: ['method'],
      registers: r,
    }),
    grpcBytesIn: new Counter({
      name: 'fleetgate_grpc_message_bytes_received_total',
      help: 'decompressed gRPC message bytes received by method',
      labelNames: ['method'],
      registers: r,
    }),
  };
}

/** Agent streams, their records, task results and commands. */
function agentMetrics(r: Registry[]) {
  return {
    agentsConnected: new Gauge({
      name: 'elkeid_ac_grpc_conn_count',
      help: 'connected agents (Transfer streams); Elkeid name, read by the Elkeid Manager monitor',
      registers: r,
    }),
    agentConnects: new Counter({
      name: 'fleetgate_agent_connects_total',
      help: 'agent Transfer streams accepted',
      registers: r,
    }),
    agentRefusals: new Counter({
      name: 'fleetgate_agent_refusals_total',
      help: 'agent Transfer streams refused, by reason',
      labelNames: ['reason'],
      registers: r,
    }),
    agentReplaced: new Counter({
      name: 'fleetgate_agent_replaced_total',
      help: 'live agent streams replaced by a newer connection with the same AgentID',
      registers: r,
    }),
    agentIdFlapping: new Counter({
      name: 'fleetgate_agent_id_flapping_total',
      help: 'AgentIDs found flapping: live agents sharing one ID replaced each other 3 times within a minute',
      registers: r,
    }),
    recordsIn: new Counter({
      name: 'fleetgate_records_received_total',
      help: 'records received from agents, by data type class',
      labelNames: ['data_type'],
      registers: r,
    }),
    badRecords: new Counter({
      name: 'fleetgate_records_undecodable_total',
      help: 'records whose body could not be parsed where the gateway needed it (still forwarded)',
      labelNames: ['data_type'],
      registers: r,
    }),
    taskResults: new Counter({
      name: 'fleetgate_task_results_total',
      help: 'task result records (2001/2003/5100/5101/6000/8010) read from agents, by data type',
      labelNames: ['data_type'],
      registers: r,
    }),
    agentLogsSuppressed: new Counter({
      name: 'fleetgate_agent_log_lines_suppressed_total',
      help: 'agent error-log records (1010/1011) not written to the gateway log because of its rate limit (still forwarded)',
      registers: r,
    }),
    commands: new Counter({
      name: 'fleetgate_commands_total',
      help: 'commands pushed to agents, by delivery result',
      labelNames: ['result'],
      registers: r,
    }),
  };
}

/** The ingest sink: Kafka, the spool, uploads. */
function ingestMetrics(r: Registry[]) {
  return {
    sinkWriteSeconds: new Histogram({
      name: 'fleetgate_ingest_sink_write_seconds',
      help: 'time the ingest sink took to accept one batch (backpressure shows here)',
      buckets: [0.0005, 0.001, 0.005, 0.02, 0.1, 0.5, 2, 10],
      registers: r,
    }),
    produceTasks: new Counter({
      name: 'fleetgate_ingest_produce_tasks_total',
      help: 'produce tasks handed to the ingest workers (each one Kafka send of the agent batches it holds; batches per task = fleetgate_grpc_messages_received_total / this)',
      registers: r,
    }),
    ingestRecords: new Counter({
      name: 'fleetgate_ingest_records_total',
      help: 'records accepted from agents, by where they went first (kafka or spool)',
      labelNames: ['path'],
      registers: r,
    }),
    messagesDiscarded: new Counter({
      name: 'fleetgate_grpc_messages_discarded_total',
      help: 'messages a client sent after its call ended that were not handled (after an error status, or past the 2 s grace after a graceful one)',
      labelNames: ['method'],
      registers: r,
    }),
    spoolShipped: new Counter({
      name: 'fleetgate_spool_shipped_records_total',
      help: 'records shipped from the spool to Kafka',
      registers: r,
    }),
    spoolAdopted: new Counter({
      name: 'fleetgate_spool_adopted_total',
      help: 'spool directories holding records of a gateway process that no longer runs (after --processes was lowered, or changed to or from 1) that this process adopted and ships',
      registers: r,
    }),
    spoolAdoptedRecords: new Counter({
      name: 'fleetgate_spool_adopted_records_total',
      help: 'records shipped to Kafka from adopted spool directories',
      registers: r,
    }),
    spoolAdoptedPending: new Gauge({
      name: 'fleetgate_spool_adopted_pending_records',
      help: 'records in adopted spool directories not yet shipped to Kafka (not in fleetgate_spool_pending_records)',
      registers: r,
    }),
    kafkaFailures: new Counter({
      name: 'fleetgate_kafka_send_failures_total',
      help: 'Kafka sends that failed (their records were spooled or will be retried), by path',
      labelNames: ['path'],
      registers: r,
    }),
    spooling: new Gauge({
      name: 'fleetgate_ingest_spooling',
      help: '1 while records go to the spool because Kafka is unavailable, slow or not configured',
      registers: r,
    }),
    spoolPending: new Gauge({
      name: 'fleetgate_spool_pending_records',
      help: 'records in the spool not yet shipped to Kafka',
      registers: r,
    }),
    spoolBytes: new Gauge({
      name: 'fleetgate_spool_bytes',
      help: 'bytes of spool segments on disk',
      registers: r,
    }),
    spoolFullWaits: new Gauge({
      name: 'fleetgate_spool_full_waits',
      help: 'appends that waited because the spool was at its size bound or its disk failed (agents were slowed, nothing dropped)',
      registers: r,
    }),
    spoolDiskErrors: new Counter({
      name: 'fleetgate_spool_disk_errors_total',
      help: 'spool disk operations that failed and are retried (op: write or ack; code: ENOSPC, EIO, ...)',
      labelNames: ['op', 'code'],
      registers: r,
    }),
    spoolBlocked: new Gauge({
      name: 'fleetgate_spool_blocked',
      help: '1 while spool writes fail (disk full, I/O error): agents are paused and the gateway is not ready',
      registers: r,
    }),
    uploads: new Counter({
      name: 'fleetgate_uploads_total',
      help: 'FileExt uploads by result',
      labelNames: ['result'],
      registers: r,
    }),
  };
}

/** TLS reloads and the HTTP APIs. */
function serviceMetrics(r: Registry[]) {
  return {
    tlsReloads: new Counter({
      name: 'fleetgate_tls_reloads_total',
      help: 'certificate/CRL reloads by result',
      labelNames: ['result'],
      registers: r,
    }),
    httpRequests: new Counter({
      name: 'fleetgate_http_requests_total',
      help: 'HTTP API requests by route and status',
      labelNames: ['route', 'status'],
      registers: r,
    }),
    httpSeconds: new Histogram({
      name: 'fleetgate_http_request_seconds',
      help: 'HTTP API request duration by route',
      labelNames: ['route'],
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2],
      registers: r,
    }),
  };
}
