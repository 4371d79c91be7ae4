/**
 * A discovery server as a `bench:discovery` child process: the discovery handler over a
 * DynamoDB endpoint (the driver's dynalite), served by uWS (ours) or node:http (the fallback engine,
 * platform/http/node-http-adapter.ts).
 *
 *   node --import tsx loadtest/bench/discovery-server.ts --impl uws|node --endpoint URL --prefix P
 *
 * Prints `{"port":N,...}` first, then answers on stdin (one JSON line each): `stats`
 * (process CPU and memory, event-loop delay since the last `resetLoopDelay`), `miss` {n, name} (n cache misses timed inside the process: the
 * cache is cleared and the handler called, so each costs one Query of the name's instances),
 * `hit` {n, name} (the same request answered from the cache, for contrast).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { createDiscoveryMetrics } from '../../discovery/metrics.js';
import { createRegistryStore } from '../../discovery/registry-store.js';
import { createDiscoveryHandler } from '../../discovery/routes.js';
import type { HttpRequest } from '../../platform/http/types.js';
import { serveUws } from '../../platform/http/uws-adapter.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { createDynamoClient } from '../../platform/store/dynamo-client.js';
import { openFileLimit, processStats, reply, serveCommands } from './child-protocol.js';

const { values } = parseArgs({
  options: {
    impl: { type: 'string', default: 'uws' },
    endpoint: { type: 'string' },
    prefix: { type: 'string', default: 'fleetgate-' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
if (!values.endpoint) throw new Error('--endpoint URL is required');
if (values.impl !== 'uws' && values.impl !== 'node') throw new Error('--impl must be uws or node');

const client = createDynamoClient({ endpoint: values.endpoint });
const store = createRegistryStore({ client, tablePrefix: values.prefix });
const registry = new Registry();
const { handler, clearCache } = createDiscoveryHandler({
  store,
  metrics: createDiscoveryMetrics(registry),
  logger: silentLogger(),
  self: `${values.host}:0`,
  aksk: [['benchak', 'benchsk']],
  registry,
});

// The product's two engines (platform/http/http-engine.ts); `uws` refuses where no native binary loads.
const server = await serveUws(handler, { host: values.host, port: 0, engine: values.impl });

const detailRequest = (name: string, count: number): HttpRequest => ({
  method: 'GET',
  path: '/registry/detail',
  query: `name=${name}&count=${count}`,
  headers: {},
  body: Buffer.alloc(0),
  remoteAddress: '127.0.0.1',
});

function summarize(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
  return {
    n: s.length,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    maxMs: s.at(-1) ?? 0,
    meanMs: s.reduce((a, b) => a + b, 0) / (s.length || 1),
  };
}

async function timeRequests(n: number, name: string, miss: boolean) {
  const samples: number[] = [];
  let instances = 0;
  for (let i = 0; i < n; i++) {
    if (miss) clearCache();
    const t0 = performance.now();
    const res = await handler(detailRequest(name, 10));
    samples.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`detail answered ${res.status}: ${String(res.body)}`);
    instances = (JSON.parse(String(res.body)) as { data: unknown[] }).data.length;
  }
  return { ...summarize(samples), instances };
}

// Event-loop stalls of the server (GC, a cache refresh): what a latency tail owes to the server.
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();

serveCommands(
  {
    stats: (c) => {
      const eld = {
        p50Ms: loopDelay.percentile(50) / 1e6,
        p99Ms: loopDelay.percentile(99) / 1e6,
        maxMs: loopDelay.max / 1e6,
      };
      if (c.resetLoopDelay) loopDelay.reset();
      return { ...processStats(), loopDelay: eld };
    },
    miss: (c) => timeRequests(Number(c.n ?? 200), String(c.name ?? 'hids_svr_grpc'), true),
    hit: (c) => timeRequests(Number(c.n ?? 2000), String(c.name ?? 'hids_svr_grpc'), false),
  },
  () => {
    void Promise.resolve(server.close()).finally(() => {
      client.destroy();
      process.exit(0);
    });
  },
);
reply({ port: server.port, pid: process.pid, impl: values.impl, nofile: openFileLimit() ?? null });
