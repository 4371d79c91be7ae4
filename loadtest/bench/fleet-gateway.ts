/**
 * Our gateway for `npm run bench:fleet`, as a child process: `startGateway` (the agent gRPC
 * server, sessions, heartbeats, commands) plus the control API (`startControlApi`, uWS, AK/SK),
 * the two listeners of the `fleetgate gateway` role, with a CountingSink instead of Kafka (the
 * Kafka path is bench:ingest's) and no discovery registration.
 *
 *   node --expose-gc --import tsx loadtest/bench/fleet-gateway.ts --pki DIR --aksk AK:SK
 *
 * Prints `{"port":N,"httpPort":M,...}` first, then answers `stats` and `gc` on stdin; closing
 * stdin exits.
 */
import { parseArgs } from 'node:util';
import { admissionLimits } from '../../gateway/grpc/http2-server.js';
import { CountingSink } from '../../gateway/ingest/memory-sink.js';
import { startControlApi } from '../../gateway/process/control-api.js';
import { silentLogger } from '../../platform/obs/logger.js';
import {
  loopLagMeter,
  openFileLimit,
  processStats,
  reply,
  serveServerCommands,
  threadCpu,
} from './child-protocol.js';
import { startBenchGateway } from './gateway-child.js';

const { values } = parseArgs({
  options: {
    pki: { type: 'string' },
    aksk: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    'handshake-timeout-ms': { type: 'string' },
    'max-pending-handshakes': { type: 'string' },
  },
});
if (!values.pki || !values.aksk) throw new Error('--pki DIR and --aksk AK:SK are required');
const [ak, sk] = values.aksk.split(':') as [string, string];

const sink = new CountingSink();
const logger = silentLogger();
const bench = await startBenchGateway({
  pkiDir: values.pki,
  host: values.host,
  port: 0,
  dataDir: { prefix: 'fg-fleet-' },
  sink,
  logger,
  limits: {
    ...(values['handshake-timeout-ms'] ? { handshakeTimeoutMs: Number(values['handshake-timeout-ms']) } : {}),
    ...(values['max-pending-handshakes'] ? admissionLimits(Number(values['max-pending-handshakes'])) : {}),
  },
});
const { gateway } = bench;
const control = await startControlApi({
  host: values.host,
  port: 0,
  sessions: gateway.sessions,
  metrics: gateway.metrics,
  logger,
  aksk: [[ak, sk]],
  ready: () => true,
});

const loopLag = loopLagMeter(1);

function stats() {
  return {
    records: sink.records,
    ...bench.callStats(),
    sessions: gateway.grpc.sessions.size,
    refused: gateway.grpc.admission.refused.handshakes + gateway.grpc.admission.refused.source,
    ...loopLag(),
    threads: threadCpu(),
    ...processStats(),
  };
}

serveServerCommands(stats, () => {
  control.close();
  return bench.shutdown();
});
reply({
  port: gateway.grpcPort,
  httpPort: control.port,
  pid: process.pid,
  nofile: openFileLimit() ?? null,
  impl: 'fleetgate',
});
