/**
 * The `fleetgate` command (docs/environment.md). Each sub-command has its own `--help`; errors in the
 * environment are all reported at once and exit with status 2.
 */

// Every command is imported only when it runs: `fleetgate gateway` must not load the simulator
// (or anything else it does not use), and a missing optional piece breaks only its own command.
const COMMANDS: Record<string, { summary: string; run: (argv: string[]) => Promise<number> }> = {
  gateway: {
    summary: 'the agent gateway (Elkeid AgentCenter): gRPC with mTLS on 6751, control API on 6752',
    run: async (a) => (await import('./serve-command.js')).runServe('gateway', a),
  },
  discovery: {
    summary: 'service discovery (Elkeid ServiceDiscovery) on 8088, registry in DynamoDB, least-loaded first',
    run: async (a) => (await import('./serve-command.js')).runServe('discovery', a),
  },
  manager: {
    summary:
      'the manager API (Elkeid Manager) on 6701: users, agent status, configs, tags, statistics, audit',
    run: async (a) => (await import('./manager-command.js')).runManager(a),
  },
  users: {
    summary: 'users add | passwd | list | delete: manager accounts',
    run: async (a) => (await import('./users-command.js')).runUsers(a),
  },
  all: {
    summary: 'gateway, discovery and manager in one process on embedded defaults (what `npm start` runs)',
    run: async (a) => (await import('./serve-command.js')).runServe('all', a),
  },
  spool: {
    summary: 'spool stat | tail | replay: inspect the spool, print records as JSON, ship them to Kafka',
    run: async (a) => (await import('./spool-command.js')).runSpool(a),
  },
  sim: {
    summary: 'the agent simulator: many Elkeid agents over mTLS, scenarios, a report at the end',
    run: async (a) => (await import('../loadtest/sim/command.js')).runSim(a),
  },
  certs: {
    summary: 'certs init | certs agent: write the CA, server and client certificates',
    run: async (a) => (await import('./certs-command.js')).runCerts(a),
  },
};

export function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    'usage: fleetgate <command> [options]',
    '',
    'An Elkeid-compatible agent gateway for fleets of host-security agents.',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(width)}  ${v.summary}`),
    '',
    'Run `fleetgate <command> --help` for its options.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(mainHelp());
    return command === undefined ? 2 : 0;
  }
  const entry = COMMANDS[command];
  if (!entry) {
    console.error(`fleetgate: unknown command "${command}"\n\n${mainHelp()}`);
    return 2;
  }
  return entry.run(rest);
}
