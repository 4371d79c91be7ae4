/**
 * `fleetgate gateway --processes N` around the supervisor (gateway/process/supervisor.ts): its
 * banner and signals; and what a child does differently from a lone gateway — it reports itself
 * up to the supervisor instead of printing the banner, and drains when its supervisor is gone.
 */
import type { ProcessSlot } from '../gateway/process/process-slot.js';
import type { ChildUp, Supervisor } from '../gateway/process/supervisor.js';
import type { Config } from '../platform/config/env.js';
import type { Logger } from '../platform/obs/logger.js';
import { startFailed } from './role-command.js';

/** Runs the supervisor until SIGTERM/SIGINT, then until every child has drained. */
export async function runSupervisor(config: Readonly<Config>, closing: string[]): Promise<number> {
  const [{ startSupervisor }, { createLogger }] = await Promise.all([
    import('../gateway/process/supervisor.js'),
    import('../platform/obs/logger.js'),
  ]);
  const logger = createLogger(config.logLevel);
  let sup: Supervisor;
  try {
    sup = await startSupervisor({
      processes: config.processes,
      // The children run this same command (bin/fleetgate.js, or cli/run.ts under tsx in tests).
      entry: process.argv[1]!,
      args: ['gateway'],
      env: process.env,
      grpcPort: config.grpcPort,
      httpPort: config.httpPort,
      logger,
    });
  } catch (err) {
    return startFailed('gateway', err);
  }
  console.log(supervisorBanner(config, sup, closing).join('\n'));
  process.on('SIGHUP', () => sup.signal('SIGHUP'));
  return untilStopped(sup, logger);
}

function supervisorBanner(config: Readonly<Config>, sup: Supervisor, closing: string[]): string[] {
  return [
    `fleetgate gateway is up: ${config.processes} processes share the agent port (SO_REUSEPORT); each has its own control API, spool, connection limit and load control`,
    ...sup.banner,
    ...sup
      .children()
      .map(
        (c) =>
          `  process ${c.name.padEnd(4)}     pid ${c.pid}, control API, /readyz, /metrics on http://${config.apiHost}:${c.controlPort}, spool ${config.dataDir}/spool/${c.name}`,
      ),
    `  supervisor         pid ${process.pid}: restarts a process that dies; SIGTERM/SIGINT drain them all`,
    ...closing,
  ];
}

/** First signal: forwarded, every child drains; a second one is forwarded too (they exit at once). */
function untilStopped(sup: Supervisor, logger: Logger): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: the gateway processes exit now');
        sup.signal(signal);
        return;
      }
      stopping = true;
      logger.info({ signal, restarts: sup.restarts }, 'shutting down: every gateway process drains');
      void sup.stop(signal).then((code) => {
        resolve(code);
        setTimeout(() => process.exit(code), 250).unref();
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/**
 * A child's side: tells the supervisor it serves (with its banner), and drains when the IPC
 * channel closes (the supervisor died: no orphan keeps the agent port and its spool).
 */
export function reportToSupervisor(slot: ProcessSlot, up: Omit<ChildUp, 'type'>, logger: Logger): void {
  process.send?.({ type: 'up', ...up } satisfies ChildUp);
  let signalled = false;
  process.once('SIGTERM', () => {
    signalled = true;
  });
  process.once('SIGINT', () => {
    signalled = true;
  });
  process.once('disconnect', () => {
    if (signalled) return;
    logger.warn({ process: `p${slot.index}` }, 'supervisor gone: draining');
    process.kill(process.pid, 'SIGTERM');
  });
}
