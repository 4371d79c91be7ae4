/** Setup shared by the benchmark drivers: a throwaway PKI and the loopback source addresses. */

import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createCa, createClientCert, createCrl, createServerCert } from '../../platform/pki/certs.js';

/**
 * Writes a fresh CA, server and fleet client certificate into `dir` (Elkeid's file names); with
 * `revoked`, also a crl.pem revoking that many other (random) serials, so handshakes check a CRL.
 */
export async function writeBenchPki(dir: string, opts: { revoked?: number } = {}): Promise<void> {
  const ca = await createCa();
  const server = await createServerCert(ca, { hosts: ['127.0.0.1'] });
  const client = await createClientCert(ca, { identity: 'fleet' });
  writeFileSync(path.join(dir, 'ca.crt'), ca.cert);
  writeFileSync(path.join(dir, 'server.crt'), server.cert);
  writeFileSync(path.join(dir, 'server.key'), server.key, { mode: 0o600 });
  writeFileSync(path.join(dir, 'client.crt'), client.cert);
  writeFileSync(path.join(dir, 'client.key'), client.key, { mode: 0o600 });
  if (opts.revoked) {
    const serials = Array.from({ length: opts.revoked }, () => randomBytes(16).toString('hex'));
    writeFileSync(path.join(dir, 'crl.pem'), await createCrl(ca, serials));
  }
}

/** Loopback addresses 127.0.0.2… that can be bound here (more ephemeral ports for many clients). */
export async function loopbackSources(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 2; i < 2 + n; i++) {
    const addr = `127.0.0.${i}`;
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(0, addr, () => s.close(() => resolve(true)));
    });
    if (ok) out.push(addr);
  }
  return out;
}

/** The project root (the nearest package.json named fleetgate above `from`), else the cwd. */
export function projectRoot(from: string): string {
  let dir = from;
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'fleetgate') return dir;
    } catch {
      // keep walking up
    }
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}
