/**
 * What every role command (`fleetgate gateway|discovery|manager|all`) does around its role
 * modules: `--help`, the environment read and checked (every error at once, exit 2), the preflight
 * (exit 2, one line per cause), the banner, and the drain on SIGTERM/SIGINT.
 */
import { parseArgs } from 'node:util';
import { type ProcessSlot, reusePortProblem } from '../gateway/process/process-slot.js';
import { type Config, ConfigError, ENV_DOC, loadConfig } from '../platform/config/env.js';
import type { Logger } from '../platform/obs/logger.js';
import type { Preflight, PreflightRole } from './preflight.js';

/** The environment variables, as every role command's `--help` lists them. */
export function envHelp(): string {
  const width = Math.max(...ENV_DOC.map(([k]) => k.length));
  return [
    'environment (all optional):',
    ...ENV_DOC.map(([k, d, m]) => `  ${k.padEnd(width)}  ${m} [default: ${d}]`),
  ].join('\n');
}

/** Where a browser on this machine opens the console (a wildcard listen address is not browsable). */
export function consoleUrl(host: string, port: number): string {
  const browsable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${browsable.includes(':') ? `[${browsable}]` : browsable}:${port}/`;
}

export interface PrepareOptions {
  /** The command takes `--processes N` (FLEETGATE_PROCESSES): `fleetgate gateway`. */
  processesFlag?: boolean;
  /** This process is one of several gateway processes (forked by the supervisor). */
  slot?: ProcessSlot;
}

/**
 * `--help` (printed, exit 0) and, where taken, `--processes N`, which sets FLEETGATE_PROCESSES
 * before the config is read (so flag and variable are one setting, and the children inherit
 * it). Returns the exit status when the command ends here.
 */
function parseRoleArgs(
  command: string,
  argv: string[],
  help: () => string,
  processesFlag: boolean,
): number | undefined {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        help: { type: 'boolean', short: 'h' },
        ...(processesFlag ? { processes: { type: 'string' as const } } : {}),
      },
      strict: true,
    });
    if (values.help) {
      console.log(help());
      return 0;
    }
    const n = (values as { processes?: string }).processes;
    if (n !== undefined) {
      if (!/^\d+$/.test(n) || Number(n) < 1) throw new Error(`--processes ${n}: must be an integer >= 1`);
      process.env.FLEETGATE_PROCESSES = n;
    }
    return undefined;
  } catch (err) {
    console.error(`fleetgate ${command}: ${(err as Error).message}\n\n${help()}`);
    return 2;
  }
}

/** Several processes are for `fleetgate gateway` only, on a runtime with SO_REUSEPORT. */
function processesProblem(command: string, processes: number): string | undefined {
  if (processes === 1 || command === 'discovery' || command === 'manager') return undefined;
  if (command !== 'gateway') {
    return `FLEETGATE_PROCESSES=${processes}: several processes are for \`fleetgate gateway\` only`;
  }
  const problem = reusePortProblem();
  return problem ? `--processes ${processes}: ${problem}` : undefined;
}

export type Prepared =
  | { ok: true; config: Readonly<Config>; pre: Preflight }
  | { ok: false; exitCode: number };

/**
 * Parses `--help`, loads the config (adjusted by `adjust`) and runs the preflight of `role`.
 * Prints what went wrong itself; the caller exits with `exitCode` when not ok.
 */
export async function prepareRole(
  command: string,
  role: PreflightRole,
  argv: string[],
  help: () => string,
  adjust: (config: Readonly<Config>) => Readonly<Config> = (c) => c,
  o: PrepareOptions = {},
): Promise<Prepared> {
  const args = parseRoleArgs(command, argv, help, o.processesFlag === true);
  if (typeof args === 'number') return { ok: false, exitCode: args };
  let config: Readonly<Config>;
  try {
    config = adjust(loadConfig());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`fleetgate: ${err.message}`);
    return { ok: false, exitCode: 2 };
  }
  const processes = processesProblem(command, config.processes);
  if (processes) {
    console.error(`fleetgate ${command}: ${processes}`);
    return { ok: false, exitCode: 2 };
  }
  // Everything that can be checked before a port opens is, with one line per cause. Imported
  // here, so `--help` loads none of what it checks with (PKI, HTTP engines, password policy).
  const { preflight } = await import('./preflight.js');
  const pre = await preflight(role, config, o.slot);
  if (pre.problems.length > 0) {
    console.error(`fleetgate ${command}: cannot start:\n  - ${pre.problems.join('\n  - ')}`);
    return { ok: false, exitCode: 2 };
  }
  return { ok: true, config, pre };
}

/**
 * Runs until SIGTERM or SIGINT, then `drain`s and resolves with the exit status (0 drained, 1 the
 * drain failed); a second signal exits at once. Once drained the process exits: a client's
 * keep-alive socket or an SDK timer must not hold a drained process for seconds.
 */
export function untilSignal(logger: Logger, drain: () => Promise<void>): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      const exit = (code: number) => {
        resolve(code);
        setTimeout(() => process.exit(code), 250).unref();
      };
      drain().then(
        () => exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          exit(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/**
 * What cannot be foreseen by the preflight (a store that will not open, a port taken meanwhile):
 * one line, exit 2, and the process exits so listeners already open do not linger.
 */
export function startFailed(command: string, err: unknown): number {
  console.error(`fleetgate ${command}: cannot start: ${(err as Error).message}`);
  process.exitCode = 2;
  setTimeout(() => process.exit(2), 100).unref();
  return 2;
}
