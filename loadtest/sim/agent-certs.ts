/**
 * Per-agent client certificates for the simulator (`fleetgate sim --per-agent-certs`): each
 * simulated agent presents its own certificate, CN and URI SAN = its AgentID, signed by the
 * fleet CA, as a gateway in per-agent identity mode (FLEETGATE_IDENTITY=per-agent) requires.
 * Generated in memory at start from the PKI directory's ca.crt and ca.key; never written.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createClientCert, loadCa } from '../../platform/pki/certs.js';
import type { AgentTls } from '../agent/raw-agent.js';

/** Why per-agent certificates cannot be made from `pkiDir`, or undefined when they can. */
export function perAgentCertsProblem(pkiDir: string): string | undefined {
  return existsSync(path.join(pkiDir, 'ca.key'))
    ? undefined
    : `--per-agent-certs signs a certificate for each agent with the CA: ${path.join(pkiDir, 'ca.key')} is missing`;
}

/** One certificate per AgentID (ECDSA P-256, a few ms each), in the order given. */
export async function agentCertificates(
  pkiDir: string,
  agentIds: readonly string[],
  onProgress?: (done: number) => void,
): Promise<AgentTls[]> {
  const ca = await loadCa(pkiDir);
  const out: AgentTls[] = [];
  for (const [i, id] of agentIds.entries()) {
    const pem = await createClientCert(ca, { identity: id });
    out.push({ ca: ca.cert, cert: pem.cert, key: pem.key });
    if ((i + 1) % 1000 === 0) onProgress?.(i + 1);
  }
  return out;
}
