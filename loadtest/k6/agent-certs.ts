/**
 * Per-agent client certificates for k6 instances (agents.js with CERTS=DIR): the files `fleetgate
 * certs agent --dir PKI --id ID` writes (agent-<id>.crt/.key, CN and URI SAN = the AgentID, signed
 * by the fleet CA), for a whole range of AgentIDs in one process instead of one process per agent.
 * The AgentIDs are PREFIX + BASE … PREFIX + (BASE + COUNT − 1), the ones agents.js gives its VUs
 * with ID_PREFIX, AGENT_BASE and AGENTS. `ca.key` is read here only: copy the output directory
 * (certificates and keys, no CA key) to the load machine.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createClientCert, loadCa } from '../../platform/pki/certs.js';

const HELP = `usage: node --import tsx loadtest/k6/agent-certs.ts --pki DIR --count N [--base B] [--prefix P] [--out DIR]

Writes agent-<P><i>.crt and agent-<P><i>.key for i = B … B+N−1 into --out (default: --pki), each
signed by --pki's ca.crt/ca.key with identity <P><i>: what \`fleetgate certs agent\` writes for one
agent, for a gateway in FLEETGATE_IDENTITY=per-agent mode. Run k6 with the same numbers:
  k6 run -e CERTS=OUT -e PKI=DIR -e ID_PREFIX=P -e AGENT_BASE=B -e AGENTS=N loadtest/k6/agents.js
(PKI needs only ca.crt there). --prefix defaults to k6-, --base to 0. ECDSA P-256: a few ms each.`;

export interface AgentCertRange {
  pki: string;
  out: string;
  prefix: string;
  base: number;
  count: number;
}

/** Writes the range's certificate pairs; returns the AgentIDs written, in order. */
export async function writeAgentCertRange(
  r: AgentCertRange,
  onProgress?: (done: number) => void,
): Promise<string[]> {
  const ca = await loadCa(r.pki);
  await mkdir(r.out, { recursive: true });
  const ids: string[] = [];
  for (let i = 0; i < r.count; i++) {
    const id = `${r.prefix}${r.base + i}`;
    const pem = await createClientCert(ca, { identity: id });
    const key = path.join(r.out, `agent-${id}.key`);
    await writeFile(key, pem.key, { mode: 0o600 });
    await chmod(key, 0o600); // an existing file keeps its mode through writeFile
    await writeFile(path.join(r.out, `agent-${id}.crt`), pem.cert, { mode: 0o644 });
    ids.push(id);
    if ((i + 1) % 1000 === 0) onProgress?.(i + 1);
  }
  return ids;
}

function wholeNumber(name: string, raw: string | undefined, fallback?: number): number {
  if (raw === undefined && fallback !== undefined) return fallback;
  const n = Number(raw);
  if (raw === undefined || !Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      pki: { type: 'string' },
      out: { type: 'string' },
      prefix: { type: 'string', default: 'k6-' },
      base: { type: 'string' },
      count: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.pki) throw new Error('--pki is required');
  const range = {
    pki: values.pki,
    out: values.out ?? values.pki,
    prefix: values.prefix,
    base: wholeNumber('base', values.base, 0),
    count: wholeNumber('count', values.count),
  };
  const ids = await writeAgentCertRange(range, (n) => console.error(`${n} of ${range.count}`));
  console.log(`wrote ${ids.length} certificate pairs to ${range.out}: ${ids[0] ?? ''} … ${ids.at(-1) ?? ''}`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: Error) => {
      console.error(`agent-certs: ${err.message}\n\n${HELP}`);
      process.exitCode = 2;
    },
  );
}
