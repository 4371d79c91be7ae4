/**
 * `fleetgate gateway`, `fleetgate discovery` and `fleetgate all`: check the environment and the
 * preflight (a development PKI is generated on first start), start the role modules
 * (gateway/process/role.ts, discovery/process.ts, and for `all` also manager/process.ts, over one
 * store), print where they listen and how to point an agent at them, and drain on SIGTERM/SIGINT.
 * The role modules are imported only once a role starts, so `--help` loads none of them.
 */
import { type ProcessSlot, slotFromEnv } from '../gateway/process/process-slot.js';
import { type Config, isLoopback } from '../platform/config/env.js';
import type { Preflight } from './preflight.js';
import type { ProcessContext } from './process-context.js';
import { consoleUrl, envHelp, prepareRole, startFailed, untilSignal } from './role-command.js';

export type Role = 'gateway' | 'discovery' | 'all';

const ROLE_TEXT: Record<Role, string> = {
  gateway:
    'Runs the agent gateway (Elkeid AgentCenter): agents connect with mutual TLS, gRPC over HTTP/2\non FLEETGATE_GRPC_PORT; the control API (/conn/*, /command, AK/SK-signed) on FLEETGATE_HTTP_PORT.\nRegisters as hids_svr_grpc and hids_svr_http with the discovery nodes of FLEETGATE_SD_ADDRS.\nWith FLEETGATE_DYNAMODB_ENDPOINT or AWS_REGION it also writes agent status, pushes the stored\nconfig at first heartbeat and applies the desired connection limit (FLEETGATE_SHED_RATE/ORDER).',
  discovery:
    'Runs service discovery (Elkeid ServiceDiscovery) on FLEETGATE_SD_PORT over the DynamoDB registry\n(embedded dynalite under $FLEETGATE_DATA_DIR/dynamodb unless FLEETGATE_DYNAMODB_ENDPOINT or\nAWS_REGION is set). /registry/detail answers least-loaded gateways first.',
  all: 'Runs every role in one process on the embedded defaults: the gateway, discovery (the gateway\nregisters with it) and the manager (agent status, configs pushed at first heartbeat, tags).',
};

/** `fleetgate gateway --processes N`: what the flag does, for `--help`. */
const PROCESSES_TEXT = `

--processes N (FLEETGATE_PROCESSES): N gateway processes share the agent port with SO_REUSEPORT
(Linux, Node >= 22.12; refused with exit 2 elsewhere), for hosts where one event loop is the limit.
A supervisor forks them and accepts no connection itself; it forwards signals and restarts a
process that dies (backoff, logged). Process p<i> has its own control API (FLEETGATE_HTTP_PORT + i,
with /readyz and /metrics), spool ($FLEETGATE_DATA_DIR/spool/p<i>), instance id (host:port/p<i>),
discovery registration, connection limit and load control.`;

function help(role: Role): string {
  return `usage: fleetgate ${role}${role === 'gateway' ? ' [--processes N]' : ''} [--help]

${ROLE_TEXT[role]}${role === 'gateway' ? PROCESSES_TEXT : ''}
Signals: SIGTERM/SIGINT drain (GOAWAY, end agent streams after their records are stored, flush)
and exit 0; a second signal exits at once. SIGHUP reloads certificates and the CRL.

${envHelp()}`;
}

/** `all` is the single-machine quick start: its manager and control APIs stay on loopback. */
function forRole(role: Role, config: Readonly<Config>): Readonly<Config> {
  if (role !== 'all' || config.apiHostExplicit) return config;
  return Object.freeze({ ...config, apiHost: '127.0.0.1' });
}

export async function runServe(role: Role, argv: string[]): Promise<number> {
  // One of several gateway processes, forked by the supervisor (gateway-processes.ts).
  const slot = role === 'gateway' ? slotFromEnv(process.env, process.send !== undefined) : undefined;
  const prepared = await prepareRole(
    role,
    role,
    argv,
    () => help(role),
    (c) => forRole(role, c),
    { processesFlag: role === 'gateway', ...(slot ? { slot } : {}) },
  );
  if (!prepared.ok) return prepared.exitCode;
  const { config, pre } = prepared;
  if (role === 'gateway' && !slot && config.processes > 1) {
    const { runSupervisor } = await import('./gateway-processes.js');
    return runSupervisor(config, closingLines(role, config, pre));
  }
  const { createProcessContext } = await import('./process-context.js');
  const ctx = createProcessContext(config);
  let started: StartedRoles;
  try {
    started = await START[role](ctx, pre, slot);
  } catch (err) {
    return startFailed(role, err);
  }
  if (slot && started.up) {
    const { reportToSupervisor } = await import('./gateway-processes.js');
    reportToSupervisor(slot, started.up, ctx.logger);
  } else {
    console.log(
      [`fleetgate ${role} is up`, ...started.banner, ...closingLines(role, config, pre)].join('\n'),
    );
  }
  return untilSignal(ctx.logger, started.drain);
}

interface StartedRoles {
  banner: string[];
  /** A gateway: what a child of the supervisor reports once up. */
  up?: { grpcPort: number; controlPort: number; banner: string[] };
  /** Drains the roles in the reverse order of their start. */
  drain(): Promise<void>;
}

type Start = (ctx: ProcessContext, pre: Preflight, slot?: ProcessSlot) => Promise<StartedRoles>;

const START: Record<Role, Start> = {
  async gateway(ctx, pre, slot) {
    const { startGatewayRole } = await import('../gateway/process/role.js');
    const { managerHooksFromStore } = await import('../manager/process.js');
    const gateway = await startGatewayRole({
      ...ctx,
      ...(slot ? { slot } : {}),
      generatedPki: pre.generatedPki,
      managerHooks: (client) =>
        managerHooksFromStore({
          client,
          tablePrefix: ctx.config.tablePrefix,
          logger: ctx.logger,
          registry: ctx.metrics.registry,
          aksk: ctx.aksk,
        }),
    });
    process.on('SIGHUP', () => gateway.reloadTls());
    const up = {
      grpcPort: gateway.gateway.grpcPort,
      controlPort: gateway.controlPort,
      banner: gateway.banner,
    };
    return { banner: gateway.banner, up, drain: gateway.drain };
  },
  async discovery(ctx) {
    const { startDiscoveryRole } = await import('../discovery/process.js');
    const discovery = await startDiscoveryRole(ctx);
    return { banner: discovery.banner, drain: discovery.drain };
  },
  all: startAll,
};

/** `fleetgate all`: one store, then discovery, the manager (registered there) and the gateway. */
async function startAll(ctx: ProcessContext, pre: Preflight): Promise<StartedRoles> {
  const [{ openStore }, { startDiscoveryRole }, { startManagerFromConfig }, { startGatewayRole }] =
    await Promise.all([
      import('../platform/store/open.js'),
      import('../discovery/process.js'),
      import('../manager/process.js'),
      import('../gateway/process/role.js'),
    ]);
  const store = await openStore(ctx.config, { logger: ctx.logger });
  const discovery = await startDiscoveryRole({ ...ctx, store });
  const { registryStore } = discovery;
  const manager = await startManagerFromConfig({ ...ctx, store, registryStore });
  const gateway = await startGatewayRole({
    ...ctx,
    store,
    registryStore,
    managerHooks: () => manager.manager.gatewayHooks,
    generatedPki: pre.generatedPki,
  });
  process.on('SIGHUP', () => gateway.reloadTls());
  const { apiHost } = ctx.config;
  const port = manager.manager.port;
  return {
    banner: [
      ...discovery.banner,
      `  manager API        http://${apiHost}:${port}   (POST /api/v1/user/login)`,
      `  operator console   ${consoleUrl(apiHost, port)}`,
      ...gateway.banner,
    ],
    async drain() {
      await gateway.drain();
      await manager.drain();
      await discovery.drain();
      await store.close();
    },
  };
}

function closingLines(role: Role, config: Readonly<Config>, pre: Preflight): string[] {
  const lines: string[] = [];
  if (role === 'all' && isLoopback(config.apiHost)) {
    lines.push(
      '  manager and control APIs listen on loopback only (FLEETGATE_API_HOST to open them to the network)',
    );
  }
  if (pre.generatedPki) {
    lines.push(
      `  NEW development CA generated in ${config.pkiDir}: agents trusting any other CA are refused`,
    );
  }
  return lines;
}
