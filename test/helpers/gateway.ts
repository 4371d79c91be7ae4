/**
 * Starts a real gateway on 127.0.0.1 port 0 with a temporary data dir and PKI, and registers
 * its teardown with the test. The CA and certificates are generated once per test process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encodeItem } from '../../gateway/agent/item.js';
import { MemorySink } from '../../gateway/ingest/memory-sink.js';
import type { IngestSink } from '../../gateway/ingest/sink.js';
import { startControlApi } from '../../gateway/process/control-api.js';
import { type Gateway, type GatewayOptions, startGateway } from '../../gateway/process/gateway.js';
import {
  connectAgent,
  openTransfer,
  readAgentTls,
  type TransferStream,
} from '../../loadtest/agent/raw-agent.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { createCa, createClientCert, createServerCert, type Pem } from '../../platform/pki/certs.js';

export interface TestPki {
  ca: Pem;
  server: Pem;
  fleet: Pem;
}

let pkiPromise: Promise<TestPki> | undefined;
export function testPki(): Promise<TestPki> {
  pkiPromise ??= (async () => {
    const ca = await createCa();
    return {
      ca,
      server: await createServerCert(ca, { hosts: ['127.0.0.1'] }),
      fleet: await createClientCert(ca, { identity: 'fleet' }),
    };
  })();
  return pkiPromise;
}

export function tempDir(t: TestContext, prefix = 'fg-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function writePki(dir: string, pki: TestPki): void {
  writeFileSync(path.join(dir, 'ca.crt'), pki.ca.cert);
  writeFileSync(path.join(dir, 'server.crt'), pki.server.cert);
  writeFileSync(path.join(dir, 'server.key'), pki.server.key, { mode: 0o600 });
}

export interface TestGateway {
  gateway: Gateway;
  sink: MemorySink;
  pki: TestPki;
  dataDir: string;
  pkiDir: string;
  address: { host: string; port: number };
  /** The fleet client credentials, as a stock agent holds them. */
  tls: { ca: string; cert: string; key: string };
}

export async function startTestGateway(
  t: TestContext,
  overrides: Partial<Omit<GatewayOptions, 'config' | 'sink'>> & {
    config?: Partial<GatewayOptions['config']>;
    sink?: IngestSink;
  } = {},
): Promise<TestGateway> {
  const pki = await testPki();
  const dataDir = tempDir(t);
  const pkiDir = path.join(dataDir, 'pki');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(pkiDir);
  writePki(pkiDir, pki);
  const sink = new MemorySink();
  const { config: configOverrides, sink: sinkOverride, ...rest } = overrides;
  const gateway = await startGateway({
    config: {
      dataDir,
      pkiDir,
      identity: 'fleet',
      host: '127.0.0.1',
      grpcPort: 0,
      maxConnections: 1000,
      ...configOverrides,
    },
    logger: silentLogger(),
    sink: sinkOverride ?? sink,
    ...rest,
  });
  t.after(() => gateway.shutdown(500));
  return {
    gateway,
    sink,
    pki,
    dataDir,
    pkiDir,
    address: { host: '127.0.0.1', port: gateway.grpcPort },
    tls: { ca: pki.ca.cert, cert: pki.fleet.cert, key: pki.fleet.key },
  };
}

/** Polls `fn` until it returns true, failing after `ms`. */
export async function waitFor(fn: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The AK/SK the control API of a test gateway accepts (startTestControlApi). */
export const CONTROL_AK = 'ekwjsyj2iucfotiy';
export const CONTROL_SK = 'kqxxfphfxj6ud9pon1zyf2oyqrda3xdt';

/**
 * The control API over `g`'s sessions on 127.0.0.1 port 0, accepting CONTROL_AK/SK (or `aksk`);
 * with `guard`, `/command/batch` goes through the gateway's delivery guard.
 */
export function startTestControlApi(
  g: Pick<TestGateway, 'gateway'>,
  o: { guard?: boolean; aksk?: readonly [string, string] } = {},
): ReturnType<typeof startControlApi> {
  return startControlApi({
    host: '127.0.0.1',
    port: 0,
    sessions: g.gateway.sessions,
    ...(o.guard ? { guard: g.gateway.guard } : {}),
    metrics: g.gateway.metrics,
    logger: silentLogger(),
    aksk: [o.aksk ?? [CONTROL_AK, CONTROL_SK]],
    ready: () => true,
  });
}

/**
 * An agent on `g`: a Transfer stream whose first message is a heartbeat (data_type 1000) with
 * `fields`; resolves once the gateway holds the agent's detail.
 */
export async function heartbeatAgent(
  g: Pick<TestGateway, 'gateway' | 'address' | 'tls'>,
  id: string,
  fields: Record<string, string>,
): Promise<{ s: TransferStream; close(): void }> {
  const session = await connectAgent(g.address, g.tls);
  const s = openTransfer(session);
  s.send({
    AgentID: id,
    Hostname: `host-${id}`,
    Data: [{ DataType: 1000, Timestamp: 1, Body: encodeItem(fields) }],
  });
  await waitFor(() => g.gateway.sessions.get(id)?.detail !== undefined, 5000, `agent ${id}`);
  return { s, close: () => session.destroy() };
}

/** The repository root and the `fleetgate` command's entry (run under tsx). */
export const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI_ENTRY = path.join(ROOT, 'cli/run.ts');

/**
 * Spawns `fleetgate <role> [args]` (gateway, all) on `dataDir` (127.0.0.1, ports 0, warn logs,
 * `env` on top). `port` resolves with the agent gRPC port once the banner names it (and `ready` holds of
 * the output, when given); it rejects when the process exits before.
 */
export function spawnFleetgate(
  role: string,
  dataDir: string,
  env: Record<string, string> = {},
  o: { readyMs?: number; ready?: (output: string) => boolean; args?: string[] } = {},
): { child: ChildProcess; port: Promise<number>; output(): string } {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI_ENTRY, role, ...(o.args ?? [])], {
    cwd: ROOT,
    env: {
      ...process.env,
      FLEETGATE_DATA_DIR: dataDir,
      FLEETGATE_HOST: '127.0.0.1',
      FLEETGATE_GRPC_PORT: '0',
      FLEETGATE_HTTP_PORT: '0',
      FLEETGATE_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += String(d);
  });
  child.stderr?.on('data', (d) => {
    out += String(d);
  });
  const banner = /agent gRPC \(mTLS\)\s+127\.0\.0\.1:(\d+)/;
  const started = () => banner.test(out) && (o.ready?.(out) ?? true);
  const port = (async () => {
    await waitFor(() => started() || child.exitCode !== null, o.readyMs ?? 30_000, 'startup banner');
    if (!started()) throw new Error(`fleetgate ${role} did not start:\n${out}`);
    return Number(banner.exec(out)![1]);
  })();
  return { child, port, output: () => out };
}

/**
 * spawnFleetgate on a fresh data dir, killed after the test; resolves once it has started, with
 * the fleet client credentials it generated.
 */
export async function startFleetgateProcess(
  t: TestContext,
  role: string,
  env: Record<string, string> = {},
  o: {
    readyMs?: number;
    ready?: (output: string) => boolean;
    args?: string[];
    /** Called with the fresh data dir before the process starts (files it should find there). */
    prepare?: (dataDir: string) => Promise<void>;
  } = {},
): Promise<{
  child: ChildProcess;
  dataDir: string;
  /** The agent gRPC port. */
  port: number;
  /** What it wrote so far (stdout and stderr). */
  output(): string;
  tls: { ca: Buffer; cert: Buffer; key: Buffer };
}> {
  const dataDir = tempDir(t);
  await o.prepare?.(dataDir);
  const p = spawnFleetgate(role, dataDir, env, o);
  t.after(() => p.child.kill('SIGKILL'));
  const port = await p.port;
  return { child: p.child, dataDir, port, output: p.output, tls: readAgentTls(path.join(dataDir, 'pki')) };
}
