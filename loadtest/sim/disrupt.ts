/**
 * The parent side of a scenario's disruption (`fleetgate sim`): signalling the gateway process
 * (gateway-sigterm / gateway-sigkill) or running the operator's commands (--on-disrupt at atS,
 * --on-recover after the outage). Runs once per simulator invocation, whatever the processes.
 * The reconnect storm itself is done by every fleet process (fleet.ts); the rolling task is
 * driven by the parent through the manager API (rolling-task.ts).
 */
import { spawn } from 'node:child_process';
import { disruptDelayMs, type Scenario } from './scenario.js';

export interface DisruptActions {
  gatewayPid?: number;
  onDisrupt?: string;
  onRecover?: string;
  outageS?: number;
  /** rolling-task: the manager's base URL, an API key, and the share each run releases. */
  manager?: string;
  apiKey?: string;
  rollingPercent?: number;
  /** rolling-task: agents of this invocation (the task's id_list must fit the manager's cap). */
  agents?: number;
}

/**
 * Agents one rolling task may target by id_list: the manager caps an id_list at 256 KiB
 * (routes/tasks.ts MAX_ID_LIST_BYTES), and a simulator ID takes 36 bytes plus one.
 */
export const MAX_ROLLING_AGENTS = Math.floor((256 * 1024) / 37);

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
    case 'rolling-task': {
      const missing = [
        ...(a.manager ? [] : ['--manager URL']),
        ...(a.apiKey ? [] : ['--api-key KEY (or FLEETGATE_SIM_API_KEY)']),
      ];
      if (missing.length > 0) return `scenario ${s.name} needs ${missing.join(' and ')}`;
      const pct = rollingPercent(s, a);
      if (!(pct > 0 && pct <= 1)) return `--rolling-percent must be in (0, 1], not ${pct}`;
      if ((a.agents ?? 0) > MAX_ROLLING_AGENTS)
        return `scenario ${s.name} targets this invocation's agents by id_list: at most ${MAX_ROLLING_AGENTS} agents (the manager's 256 KiB id_list cap)`;
      return undefined;
    }
  }
}

export function rollingPercent(s: Scenario, a: DisruptActions): number {
  return a.rollingPercent ?? s.disrupt?.rollingPercent ?? 0.25;
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
  // Seconds after the disruption's moment (atS, or the wall-clock --disrupt-at-time).
  const at = (afterS: number, fn: () => void) => {
    if (d && d.atS + afterS < s.durationS)
      timers.push(setTimeout(fn, disruptDelayMs(d, startedAt) + afterS * 1000));
  };
  if (d && (d.kind === 'gateway-sigterm' || d.kind === 'gateway-sigkill')) {
    const signal = d.kind === 'gateway-sigterm' ? 'SIGTERM' : 'SIGKILL';
    at(0, () => {
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
    at(0, () => run(a.onDisrupt!, 'on-disrupt'));
    if (a.onRecover) {
      const recover = a.onRecover;
      at(outageSeconds(s, a), () => run(recover, 'on-recover'));
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
