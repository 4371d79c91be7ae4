/**
 * Our gateway (`startGateway`) as a benchmark child process: a CountingSink, a temporary data
 * dir, a connection limit far above any benchmark, silent logs.
 *
 *   node --expose-gc --import tsx loadtest/bench/gateway-server.ts --pki DIR [--port 0] [--host 127.0.0.1]
 *
 * Prints `{"port":N,...}` as its first stdout line, then answers on stdin (one JSON line each):
 * `stats` (ServerStats), `gc` (full GCs, then stats). Closing stdin shuts it down and exits (a
 * `--cpu-prof` profile is written then).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CountingSink } from '../../gateway/ingest/memory-sink.js';
import { silentLogger } from '../../gateway/obs/logger.js';
import { startGateway } from '../../gateway/roles/gateway.js';
import {
  openFileLimit,
  processStats,
  reply,
  type ServerStats,
  serveCommands,
  settleGc,
} from './child-protocol.js';

const { values } = parseArgs({
  options: {
    pki: { type: 'string' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
if (!values.pki) throw new Error('--pki DIR is required');

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'fg-bench-'));
const sink = new CountingSink();
const gateway = await startGateway({
  config: {
    dataDir,
    pkiDir: values.pki,
    identity: 'fleet',
    host: values.host,
    grpcPort: Number(values.port),
    maxConnections: 1_000_000,
  },
  logger: silentLogger(),
  sink,
  tlsPollMs: 60_000,
});

let calls = 0;
let sessionsTotal = 0;
gateway.grpc.server.on('stream', () => calls++);
gateway.grpc.server.on('session', () => sessionsTotal++);

function stats(): ServerStats & { sessions: number; sessionsTotal: number } {
  let openCalls = 0;
  for (const s of gateway.grpc.sessions) openCalls += s.openStreams;
  return {
    records: sink.records,
    calls,
    openCalls,
    agents: gateway.sessions.size,
    sessions: gateway.grpc.sessions.size,
    sessionsTotal,
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
    gateway
      .shutdown(2000)
      .catch(() => {})
      .finally(() => {
        rmSync(dataDir, { recursive: true, force: true });
        process.exit(0);
      });
  },
);
reply({ port: gateway.grpcPort, pid: process.pid, nofile: openFileLimit() ?? null, impl: 'fleetgate' });
