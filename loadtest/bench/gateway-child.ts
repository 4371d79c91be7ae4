/**
 * Our gateway (`startGateway`) inside a benchmark child process, as gateway-server.ts,
 * fleet-gateway.ts and ingest-server.ts run it: a temporary data dir, identity `fleet`, a
 * connection limit far above any benchmark, silent logs unless given, TLS files polled rarely;
 * plus the call counters every `stats` reply carries.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Gateway, type GatewayOptions, startGateway } from '../../gateway/process/gateway.js';
import { silentLogger } from '../../platform/obs/logger.js';

export interface BenchGatewayOptions extends Pick<GatewayOptions, 'sink' | 'metrics' | 'limits'> {
  pkiDir: string;
  host: string;
  port: number;
  /** Prefix of the temporary data dir, or the dir itself (made by the caller; removed all the same). */
  dataDir: { prefix: string } | string;
  logger?: GatewayOptions['logger'];
  /** One of several gateway processes on the port (SO_REUSEPORT). */
  reusePort?: boolean;
}

export interface BenchGateway {
  readonly gateway: Gateway;
  /** The call counters of ServerStats: calls started, calls open now, agents registered now. */
  callStats(): { calls: number; openCalls: number; agents: number };
  /** Shuts the gateway down (2 s grace), runs `after` (errors of either ignored), removes the data dir. */
  shutdown(after?: () => Promise<unknown>): Promise<void>;
}

export async function startBenchGateway(o: BenchGatewayOptions): Promise<BenchGateway> {
  const dataDir =
    typeof o.dataDir === 'string' ? o.dataDir : mkdtempSync(path.join(os.tmpdir(), o.dataDir.prefix));
  const gateway = await startGateway({
    config: {
      dataDir,
      pkiDir: o.pkiDir,
      identity: 'fleet',
      host: o.host,
      grpcPort: o.port,
      maxConnections: 1_000_000,
    },
    logger: o.logger ?? silentLogger(),
    sink: o.sink,
    ...(o.metrics ? { metrics: o.metrics } : {}),
    ...(o.limits ? { limits: o.limits } : {}),
    tlsPollMs: 60_000,
    reusePort: o.reusePort === true,
  });
  let calls = 0;
  gateway.grpc.server.on('stream', () => calls++);
  return {
    gateway,
    callStats() {
      let openCalls = 0;
      for (const s of gateway.grpc.sessions) openCalls += s.openStreams;
      return { calls, openCalls, agents: gateway.sessions.size };
    },
    async shutdown(after) {
      await gateway.shutdown(2000).catch(() => {});
      if (after) await after().catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
