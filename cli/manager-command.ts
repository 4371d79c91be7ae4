/**
 * `fleetgate manager`: the manager alone (Elkeid Manager, port FLEETGATE_MANAGER_PORT) over the
 * store, registered in discovery as `hids_manage` when FLEETGATE_SD_ADDRS is set. The role is
 * built by manager/process.ts, as in `fleetgate all`.
 */
import { consoleUrl, envHelp, prepareRole, untilSignal } from './role-command.js';

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
  const prepared = await prepareRole('manager', 'manager', argv, help);
  if (!prepared.ok) return prepared.exitCode;
  const { config } = prepared;
  const [{ createProcessContext }, { startManagerFromConfig }, { SecretError }] = await Promise.all([
    import('./process-context.js'),
    import('../manager/process.js'),
    import('../manager/secret.js'),
  ]);
  const ctx = createProcessContext(config);
  let started: Awaited<ReturnType<typeof startManagerFromConfig>>;
  try {
    started = await startManagerFromConfig(ctx);
  } catch (err) {
    if (err instanceof SecretError) {
      console.error(`fleetgate manager: refusing to start: ${err.message}`);
      return 1;
    }
    console.error(`fleetgate manager: cannot start: ${(err as Error).message}`);
    return 2;
  }
  const { port } = started.manager;
  console.log(
    [
      'fleetgate manager is up',
      `  manager API        http://${config.apiHost}:${port}   (store: ${started.storeKind})`,
      `  operator console   ${consoleUrl(config.apiHost, port)}`,
      `  sign in            POST http://${config.advertiseHost}:${port}/api/v1/user/login {"username","password"}`,
      started.registeredWith.length > 0
        ? `  registered as      hids_manage with ${started.registeredWith.join(', ')}`
        : '  discovery          not registered (set FLEETGATE_SD_ADDRS)',
    ].join('\n'),
  );
  return untilSignal(ctx.logger, started.drain);
}
