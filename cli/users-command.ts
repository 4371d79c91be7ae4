/**
 * `fleetgate users add|passwd|list|delete`: manager accounts, straight in the store (the same
 * DynamoDB the manager uses: FLEETGATE_DYNAMODB_ENDPOINT, AWS_REGION, or the embedded store in
 * the data dir: that of a running `fleetgate all` through its private unix socket, which only
 * the account running it (and root) can reach, else opened here).
 *
 * Passwords never go on the command line (it shows in `ps`): `--password-stdin` reads one, else
 * a random one is generated and printed once.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createApiKeyStore } from '../manager/apikeys.js';
import { createAuditLog } from '../manager/audit.js';
import { generatePassword } from '../manager/passwords.js';
import { isRole, ROLES, type Role } from '../manager/roles.js';
import { createManagerStore } from '../manager/store.js';
import { createUserStore, UserError } from '../manager/users.js';
import { type Config, ConfigError, loadConfig } from '../platform/config/env.js';
import { silentLogger } from '../platform/obs/logger.js';
import { openStore } from '../platform/store/open.js';

const HELP = `usage: fleetgate users <command> [options]

Manager accounts (roles: admin, operator, viewer = Elkeid levels 0, 2, 3).

commands:
  add <name> [--role viewer|operator|admin] [--password-stdin]   create a user (default role viewer)
  passwd <name> [--password-stdin]                                reset a password (signs the user out, revokes its API keys)
  list                                                            users and roles
  delete <name>                                                   remove a user and revoke its API keys (never the last admin)

Without --password-stdin a random password is generated and printed once.
The store is the manager's: FLEETGATE_DYNAMODB_ENDPOINT, AWS_REGION, or the embedded store
under FLEETGATE_DATA_DIR: a running \`fleetgate all\` is reached through its private socket
($FLEETGATE_DATA_DIR/run/dynamodb.sock, only for the account running it and root).`;

function cliAccount(): string {
  try {
    return os.userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

type UsersCommand = 'add' | 'passwd' | 'list' | 'delete';

/** One `fleetgate users` invocation, its arguments checked. */
interface UsersRequest {
  command: UsersCommand;
  /** The user's name (every command but `list`). */
  name: string;
  role: Role;
  passwordStdin: boolean;
}

/** The request, or the exit status when there is nothing to run (help, bad arguments). */
function parseUsersArgs(argv: string[]): UsersRequest | number {
  let parsed: {
    values: { help?: boolean; role?: string; 'password-stdin'?: boolean };
    positionals: string[];
  };
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        help: { type: 'boolean', short: 'h' },
        role: { type: 'string' },
        'password-stdin': { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    console.error(`fleetgate users: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, name, ...extra] = positionals;
  if (values.help || command === undefined) {
    console.log(HELP);
    return command === undefined && !values.help ? 2 : 0;
  }
  const needsName = command === 'add' || command === 'passwd' || command === 'delete';
  if (!['add', 'passwd', 'list', 'delete'].includes(command) || (needsName && !name) || extra.length > 0) {
    console.error(`fleetgate users: bad arguments\n\n${HELP}`);
    return 2;
  }
  if (values.role !== undefined && !isRole(values.role)) {
    console.error(`fleetgate users: --role must be one of ${ROLES.join(', ')}`);
    return 2;
  }
  return {
    command: command as UsersCommand,
    name: name ?? '',
    role: (values.role as Role | undefined) ?? 'viewer',
    passwordStdin: values['password-stdin'] === true,
  };
}

export async function runUsers(argv: string[]): Promise<number> {
  const request = parseUsersArgs(argv);
  if (typeof request === 'number') return request;
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
  let store: Awaited<ReturnType<typeof openStore>>;
  try {
    store = await openStore(config, { logger: silentLogger(), joinRunning: true });
  } catch (err) {
    console.error(
      `fleetgate users: cannot open the store (${(err as Error).message}).\n` +
        'If `fleetgate all` is running on the embedded store, stop it first or set FLEETGATE_DYNAMODB_ENDPOINT.',
    );
    return 1;
  }
  try {
    return await runOnStore(request, createManagerStore(store.client, config.tablePrefix));
  } catch (err) {
    if (err instanceof UserError) {
      console.error(`fleetgate users: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    await store.close();
  }
}

async function runOnStore(
  req: UsersRequest,
  managerStore: ReturnType<typeof createManagerStore>,
): Promise<number> {
  const { command, name, role } = req;
  const users = createUserStore(managerStore);
  const keys = createApiKeyStore(managerStore);
  const audit = createAuditLog(managerStore);
  // Changes made here bypass the API; they go to the same audit log, as this OS account.
  const record = (detail: Record<string, unknown>) =>
    audit.write({
      actor: `cli:${cliAccount()}`,
      action: `fleetgate users ${command}`,
      sourceIp: 'local',
      target: `user:${name}`,
      detail,
      status: 200,
    });
  const password = async (): Promise<{ value: string; generated: boolean }> =>
    req.passwordStdin
      ? { value: await readStdin(), generated: false }
      : { value: generatePassword(), generated: true };
  switch (command) {
    case 'list': {
      const list = await users.list();
      for (const u of list) {
        console.log(
          `${u.username}\t${u.role}\tcreated ${new Date(u.createdAt).toISOString()}${u.createdBy ? ` by ${u.createdBy}` : ''}`,
        );
      }
      if (list.length === 0)
        console.log('(no users: the manager creates the first admin at its first start)');
      return 0;
    }
    case 'add': {
      const p = await password();
      await users.create({ username: name, password: p.value, role, createdBy: 'cli' });
      await record({ role });
      console.log(`created ${name} (${role})${p.generated ? ` with password ${p.value}  (shown once)` : ''}`);
      return 0;
    }
    case 'passwd': {
      const p = await password();
      await users.setPassword(name, p.value);
      const revoked = await keys.revokeAllOf(name);
      await record({ apiKeysRevoked: revoked });
      console.log(
        `password of ${name} changed${p.generated ? ` to ${p.value}  (shown once)` : ''}; its sessions are signed out and ${revoked} API key(s) revoked`,
      );
      return 0;
    }
    case 'delete': {
      await users.delete(name);
      const revoked = await keys.revokeAllOf(name);
      await record({ apiKeysRevoked: revoked });
      console.log(`deleted ${name}; ${revoked} API key(s) revoked`);
      return 0;
    }
  }
}
