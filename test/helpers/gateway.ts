/**
 * Starts a real gateway on 127.0.0.1 port 0 with a temporary data dir and PKI, and registers
 * its teardown with the test. The CA and certificates are generated once per test process.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { MemorySink } from '../../gateway/ingest/memory-sink.js';
import type { IngestSink } from '../../gateway/ingest/sink.js';
import { silentLogger } from '../../gateway/obs/logger.js';
import { createCa, createClientCert, createServerCert, type Pem } from '../../gateway/pki/certs.js';
import { type Gateway, type GatewayOptions, startGateway } from '../../gateway/roles/gateway.js';

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
