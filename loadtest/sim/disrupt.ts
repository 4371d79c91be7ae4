/**
 * The parent side of a scenario's disruption (`fleetgate sim`): signalling the gateway process
 * (gateway-sigterm / gateway-sigkill) or running the operator's commands (--on-disrupt at atS,
 * --on-recover after the outage). Runs once per simulator invocation, whatever the processes.
 * The reconnect storm itself is done by every fleet process (fleet.ts).
 */
import { spawn } from 'node:child_process';
import type { Scenario } from './scenario.js';

export interface DisruptActions {
  gatewayPid?: number;
  onDisrupt?: string;
  onRecover?: string;
  outageS?: number;
}

/** What the parent did, for the report. */
export interface DisruptAction {
  /** Seconds since the run started. */
  atS: number;
  action: string;
  /** Exit code of a command (null while it runs or when killed), or 0 for a signal sent. */
  exitCode: number | null;
  error?: string;
}

/** Why the scenario cannot run with these options, or undefined. */
export function disruptProblem(s: Scenario, a: DisruptActions): string | undefined {
  const d = s.disrupt;
  if (!d) return undefined;
  switch (d.kind) {
    case 'reconnect-storm':
      return undefined;
    case 'gateway-sigterm':
    case 'gateway-sigkill':
      return a.gatewayPid !== undefined || a.onDisrupt
        ? undefined
        : `scenario ${s.name} needs --gateway-pid or --on-disrupt`;
    case 'kafka-outage':
      return a.onDisrupt
        ? undefined
        : `scenario ${s.name} needs --on-disrupt CMD (and optionally --on-recover CMD)`;
    case 'rolling-task':
      return `scenario ${s.name}: the rolling-task disruption is not supported by this simulator yet`;
  }
}

export function outageSeconds(s: Scenario, a: DisruptActions): number {
  return a.outageS ?? s.disrupt?.outageS ?? 30;
}

/** Schedules the parent's actions; `stop()` cancels what has not happened yet. */
export function scheduleDisruption(
  s: Scenario,
  a: DisruptActions,
): { actions: DisruptAction[]; stop(): Promise<void> } {
  const d = s.disrupt;
  const actions: DisruptAction[] = [];
  const timers: NodeJS.Timeout[] = [];
  const running: Promise<void>[] = [];
  const startedAt = Date.now();
  const atS = () => Number(((Date.now() - startedAt) / 1000).toFixed(1));
  const run = (cmd: string, label: string) => {
    const rec: DisruptAction = { atS: atS(), action: `${label}: ${cmd}`, exitCode: null };
    actions.push(rec);
    console.error(`[sim] ${label}: running ${cmd}`);
    running.push(
      new Promise((resolve) => {
        const c = spawn(cmd, { shell: true, stdio: ['ignore', 'inherit', 'inherit'] });
        c.on('error', (err) => {
          rec.error = err.message;
          resolve();
        });
        c.on('exit', (code) => {
          rec.exitCode = code;
          if (code !== 0) console.error(`[sim] ${label} command exited ${code}`);
          resolve();
        });
      }),
    );
  };
  const at = (seconds: number, fn: () => void) => {
    if (seconds < s.durationS) timers.push(setTimeout(fn, seconds * 1000));
  };
  if (d && (d.kind === 'gateway-sigterm' || d.kind === 'gateway-sigkill')) {
    const signal = d.kind === 'gateway-sigterm' ? 'SIGTERM' : 'SIGKILL';
    at(d.atS, () => {
      if (a.gatewayPid === undefined) return run(a.onDisrupt!, 'on-disrupt');
      const rec: DisruptAction = { atS: atS(), action: `${signal} to pid ${a.gatewayPid}`, exitCode: 0 };
      try {
        process.kill(a.gatewayPid, signal);
        console.error(`[sim] sent ${signal} to gateway pid ${a.gatewayPid}`);
      } catch (err) {
        rec.exitCode = null;
        rec.error = (err as Error).message;
        console.error(`[sim] could not signal pid ${a.gatewayPid}: ${rec.error}`);
      }
      actions.push(rec);
    });
  } else if (d?.kind === 'kafka-outage') {
    at(d.atS, () => run(a.onDisrupt!, 'on-disrupt'));
    if (a.onRecover) {
      const recover = a.onRecover;
      at(d.atS + outageSeconds(s, a), () => run(recover, 'on-recover'));
    }
  }
  return {
    actions,
    async stop() {
      for (const t of timers) clearTimeout(t);
      // Bounded: a command still running 10 s after the run is left to itself.
      await Promise.race([Promise.all(running), new Promise((r) => setTimeout(r, 10_000).unref())]);
    },
  };
}
