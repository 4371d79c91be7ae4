/** `fleetgate certs init|agent`: the PKI in Elkeid's file names. */
import { parseArgs } from 'node:util';
import { writeAgentCert, writePkiDir } from '../platform/pki/certs.js';

const HELP = `usage:
  fleetgate certs init --dir D [--hosts h1,h2] [--force]
      writes ca.crt ca.key server.crt server.key client.crt client.key into D.
      The server certificate carries SAN DNS:elkeid.com (stock Elkeid agents verify that name)
      plus the given hosts; client.crt is the shared fleet certificate (identity "fleet").
      Keys are ECDSA P-256, written with mode 0600. Existing files are kept unless --force.
  fleetgate certs agent --dir D --id AGENT_ID
      writes agent-<id>.crt and agent-<id>.key signed by D/ca.crt, identity = AGENT_ID
      (for FLEETGATE_IDENTITY=per-agent).`;

export async function runCerts(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    console.log(HELP);
    return sub === undefined ? 2 : 0;
  }
  let values: {
    dir?: string | undefined;
    hosts?: string | undefined;
    id?: string | undefined;
    force?: boolean | undefined;
    help?: boolean | undefined;
  };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        dir: { type: 'string' },
        hosts: { type: 'string' },
        id: { type: 'string' },
        force: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(`fleetgate certs: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.dir) {
    console.error(`fleetgate certs ${sub}: --dir is required\n\n${HELP}`);
    return 2;
  }
  if (sub === 'init') {
    const hosts = (values.hosts ?? '')
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean);
    const { written } = await writePkiDir(values.dir, hosts, { force: values.force ?? false });
    console.log(`wrote ${written.join(' ')}`);
    return 0;
  }
  if (sub === 'agent') {
    if (!values.id) {
      console.error(`fleetgate certs agent: --id is required\n\n${HELP}`);
      return 2;
    }
    const { cert, key } = await writeAgentCert(values.dir, values.id);
    console.log(`wrote ${cert} ${key}`);
    return 0;
  }
  console.error(`fleetgate certs: unknown sub-command "${sub}"\n\n${HELP}`);
  return 2;
}
