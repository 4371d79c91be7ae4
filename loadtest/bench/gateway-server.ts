/**
 * Our gateway (`startGateway`) as a benchmark child process: a CountingSink, a temporary data
 * dir, a connection limit far above any benchmark, silent logs.
 *
 *   node --expose-gc --import tsx loadtest/bench/gateway-server.ts --pki DIR [--port 0] [--host 127.0.0.1]
 *       [--reuse-port]   (one of several on the port, SO_REUSEPORT: bench:gateway --processes)
 *
 * Prints `{"port":N,...}` as its first stdout line, then answers on stdin (one JSON line each):
 * `stats` (ServerStats), `gc` (full GCs, then stats). Closing stdin shuts it down and exits (a
 * `--cpu-prof` profile is written then).
 */
import { parseArgs } from 'node:util';
import { CountingSink } from '../../gateway/ingest/memory-sink.js';
import {
  openFileLimit,
  processStats,
  reply,
  requiredPkiDir,
  SERVER_CHILD_OPTIONS,
  type ServerStats,
  serveServerCommands,
} from './child-protocol.js';
import { startBenchGateway } from './gateway-child.js';

const { values } = parseArgs({ options: SERVER_CHILD_OPTIONS });
const pkiDir = requiredPkiDir(values.pki);

const sink = new CountingSink();
const bench = await startBenchGateway({
  pkiDir,
  host: values.host,
  port: Number(values.port),
  dataDir: { prefix: 'fg-bench-' },
  sink,
  reusePort: values['reuse-port'] === true,
});
const { gateway } = bench;

let sessionsTotal = 0;
gateway.grpc.server.on('session', () => sessionsTotal++);

function stats(): ServerStats & { sessions: number; sessionsTotal: number } {
  return {
    records: sink.records,
    ...bench.callStats(),
    sessions: gateway.grpc.sessions.size,
    sessionsTotal,
    ...processStats(),
  };
}

serveServerCommands(stats, () => bench.shutdown());
reply({ port: gateway.grpcPort, pid: process.pid, nofile: openFileLimit() ?? null, impl: 'fleetgate' });
