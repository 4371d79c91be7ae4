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
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { CountingSink } from '../../gateway/ingest/memory-sink.js';
import { silentLogger } from '../../gateway/obs/logger.js';
import { startControlApi } from '../../gateway/roles/control-api.js';
import { startGateway } from '../../gateway/roles/gateway.js';
import { openFileLimit, processStats, reply, serveCommands, settleGc, threadCpu } from './child-protocol.js';

const { values } = parseArgs({
  options: {
    pki: { type: 'string' },
    aksk: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    'handshake-timeout-ms': { type: 'string' },
  },
});
if (!values.pki || !values.aksk) throw new Error('--pki DIR and --aksk AK:SK are required');
const [ak, sk] = values.aksk.split(':') as [string, string];

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'fg-fleet-'));
const sink = new CountingSink();
const logger = silentLogger();
const gateway = await startGateway({
  config: {
    dataDir,
    pkiDir: values.pki,
    identity: 'fleet',
    host: values.host,
    grpcPort: 0,
    maxConnections: 1_000_000,
  },
  logger,
  sink,
  tlsPollMs: 60_000,
  ...(values['handshake-timeout-ms']
    ? { limits: { handshakeTimeoutMs: Number(values['handshake-timeout-ms']) } }
    : {}),
});
const control = await startControlApi({
  host: values.host,
  port: 0,
  sessions: gateway.sessions,
  metrics: gateway.metrics,
  logger,
  aksk: [[ak, sk]],
  ready: () => true,
});

let calls = 0;
gateway.grpc.server.on('stream', () => calls++);
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();

function stats() {
  let openCalls = 0;
  for (const s of gateway.grpc.sessions) openCalls += s.openStreams;
  const lagP99Ms = loop.percentile(99) / 1e6;
  const lagMaxMs = loop.max / 1e6;
  loop.reset();
  return {
    records: sink.records,
    calls,
    openCalls,
    agents: gateway.sessions.size,
    sessions: gateway.grpc.sessions.size,
    loopLagP99Ms: Number(lagP99Ms.toFixed(1)),
    loopLagMaxMs: Number(lagMaxMs.toFixed(1)),
    threads: threadCpu(),
    ...processStats(),
  };
}

let stopping = false;
serveCommands(
  {
    stats,
    async gc() {
      await settleGc();
      return stats();
    },
  },
  () => {
    if (stopping) return;
    stopping = true;
    control.close();
    gateway
      .shutdown(2000)
      .catch(() => {})
      .finally(() => {
        rmSync(dataDir, { recursive: true, force: true });
        process.exit(0);
      });
  },
);
reply({
  port: gateway.grpcPort,
  httpPort: control.port,
  pid: process.pid,
  nofile: openFileLimit() ?? null,
  impl: 'fleetgate',
});
