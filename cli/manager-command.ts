/**
 * `fleetgate manager`: the manager alone (Elkeid Manager, port FLEETGATE_MANAGER_PORT) over the
 * store, registered in discovery as `hids_manage` when FLEETGATE_SD_ADDRS is set. `fleetgate all`
 * starts the same role through `startManagerRole`.
 */
import { parseArgs } from 'node:util';
import { createRegistrarMetrics } from '../discovery/metrics.js';
import { startManagerRole } from '../manager/role.js';
import { SecretError } from '../manager/secret.js';
import { type Config, ConfigError, loadConfig, resolveAksk } from '../platform/config/env.js';
import { createLogger } from '../platform/obs/logger.js';
import { createMetrics } from '../platform/obs/metrics.js';
import { openStore } from '../platform/store/open.js';
import { consoleUrl, envHelp } from './main.js';
import { preflight } from './preflight.js';

function help(): string {
  return `usage: fleetgate manager [--help]

Runs the manager (Elkeid Manager API on FLEETGATE_MANAGER_PORT): users, agent status, configs,
tags, statistics, load-control settings, the audit log. Sign in with POST /api/v1/user/login.
Token secret: FLEETGATE_MANAGER_SECRET (required with AWS_REGION), else generated into
$FLEETGATE_DATA_DIR/manager-secret. The first admin comes from FLEETGATE_ADMIN (name:password),
else a generated password is printed once. docs/manager.md and docs/openapi.yaml describe the API.

${envHelp()}
  FLEETGATE_MANAGER_SECRET  token-signing secret, at least 32 random bytes [default: generated into the data dir]`;
}

export async function runManager(argv: string[]): Promise<number> {
  try {
    const { values } = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' } },
      strict: true,
    });
    if (values.help) {
      console.log(help());
      return 0;
    }
  } catch (err) {
    console.error(`fleetgate manager: ${(err as Error).message}\n\n${help()}`);
    return 2;
  }
  let config: Readonly<Config>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`fleetgate: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const pre = await preflight('manager', config);
  if (pre.problems.length > 0) {
    console.error(`fleetgate manager: cannot start:\n  - ${pre.problems.join('\n  - ')}`);
    return 2;
  }
  const logger = createLogger(config.logLevel);
  const metrics = createMetrics();
  const aksk = resolveAksk(config);
  let store: Awaited<ReturnType<typeof openStore>>;
  try {
    store = await openStore(config, { logger });
  } catch (err) {
    console.error(`fleetgate manager: cannot start: ${(err as Error).message}`);
    return 2;
  }
  const remote = config.sdAddrs.filter((a) => a !== 'all');
  const [ak, sk] = aksk[0]!;
  let role: Awaited<ReturnType<typeof startManagerRole>>;
  try {
    role = await startManagerRole({
      config,
      store,
      logger,
      registry: metrics.registry,
      aksk,
      ...(remote.length > 0
        ? {
            registrar: {
              target: { sdAddrs: remote, ak, sk },
              metrics: createRegistrarMetrics(metrics.registry),
            },
          }
        : {}),
    });
  } catch (err) {
    await store.close();
    if (err instanceof SecretError) {
      console.error(`fleetgate manager: refusing to start: ${err.message}`);
      return 1;
    }
    throw err;
  }
  console.log(
    [
      'fleetgate manager is up',
      `  manager API        http://${config.apiHost}:${role.port}   (store: ${store.kind})`,
      `  operator console   ${consoleUrl(config.apiHost, role.port)}`,
      `  sign in            POST http://${config.advertiseHost}:${role.port}/api/v1/user/login {"username","password"}`,
      remote.length > 0
        ? `  registered as      hids_manage with ${remote.join(', ')}`
        : '  discovery          not registered (set FLEETGATE_SD_ADDRS)',
    ].join('\n'),
  );
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) process.exit(1);
      stopping = true;
      logger.info({ signal }, 'shutting down');
      (async () => {
        await role.close();
        await store.close();
      })().then(
        () => resolve(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
