/**
 * ECS task scale-in protection while the spool holds records (docs/deploy.md, "Spools and
 * scale-in"). A gateway's spool lives on its task's own storage: if autoscaling, a deployment or
 * zone rebalancing stopped the task while Kafka was refusing records, the records not yet shipped
 * would go with it. So while `fleetgate_spool_pending_records` is above zero the gateway asks the
 * ECS agent (`$ECS_AGENT_URI/task-protection/v1/state`, set by ECS in every task) to protect the
 * task, renewing before the protection expires, and drops the protection once the spool is empty.
 * ECS then picks other tasks to stop and deployments wait.
 *
 * Failures (no agent endpoint, a refused call) are logged and counted, never thrown: protection is
 * a safeguard, and the spool alarm still fires.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../../platform/obs/logger.js';

export interface ScaleInProtectionOptions {
  /** ECS_AGENT_URI of the task. */
  agentUri: string;
  /** Records in the spool not yet shipped. */
  pendingRecords: () => number | Promise<number>;
  logger: Logger;
  registry?: Registry;
  /** How often the spool is looked at. Default 15 s. */
  intervalMs?: number;
  /** Protection asked for each time (ECS allows 1 to 2,880); renewed at half of it. Default 60. */
  expiresInMinutes?: number;
  /**
   * Other gateway processes of this task protect it too (`--processes N`): the task-wide
   * protection is never dropped here — that would drop a sibling's whose spool still has
   * records — but lapses at its expiry once no process renews it (so keep expiresInMinutes short).
   */
  shared?: boolean;
  /** Per call to the agent. Default 5 s. */
  requestTimeoutMs?: number;
  now?: () => number;
}

export interface ScaleInProtection {
  /** One look at the spool (also what the timer does). */
  check(): Promise<void>;
  /** Stops looking; the protection, if any, lapses at its expiry or is dropped here when `release`. */
  stop(opts?: { release?: boolean }): Promise<void>;
  readonly protected: boolean;
}

export function startScaleInProtection(opts: ScaleInProtectionOptions): ScaleInProtection {
  const intervalMs = opts.intervalMs ?? 15_000;
  const expiresInMinutes = opts.expiresInMinutes ?? 60;
  const renewAfterMs = (expiresInMinutes * 60_000) / 2;
  const now = opts.now ?? Date.now;
  const url = `${opts.agentUri.replace(/\/+$/, '')}/task-protection/v1/state`;
  const registers = opts.registry ? [opts.registry] : [];
  const gauge = new Gauge({
    name: 'fleetgate_scale_in_protected',
    help: '1 while the gateway holds ECS task scale-in protection because its spool has records',
    registers,
  });
  const failures = new Counter({
    name: 'fleetgate_scale_in_protection_failures_total',
    help: 'calls to the ECS agent to set or drop task scale-in protection that failed',
    registers,
  });
  let isProtected = false;
  let protectedAt = 0;
  let running: Promise<void> | undefined;

  async function put(enabled: boolean): Promise<boolean> {
    const body = enabled
      ? { ProtectionEnabled: true, ExpiresInMinutes: expiresInMinutes }
      : { ProtectionEnabled: false };
    try {
      const res = await fetch(url, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(opts.requestTimeoutMs ?? 5000),
      });
      const text = await res.text();
      // The agent answers 200 with {"failure": {...}} when ECS refused the change.
      if (!res.ok || /"failure"\s*:\s*\{/.test(text))
        throw new Error(`HTTP ${res.status}: ${text.slice(0, 300)}`);
      return true;
    } catch (err) {
      failures.inc();
      opts.logger.warn({ err, enabled }, 'ECS task scale-in protection call failed');
      return false;
    }
  }

  async function once(): Promise<void> {
    const pending = await opts.pendingRecords();
    if (pending > 0 && (!isProtected || now() - protectedAt >= renewAfterMs)) {
      if (await put(true)) {
        if (!isProtected) opts.logger.info({ pending }, 'spool has records: task protected from scale-in');
        isProtected = true;
        protectedAt = now();
        gauge.set(1);
      }
    } else if (pending === 0 && isProtected) {
      if (opts.shared || (await put(false))) {
        opts.logger.info(
          opts.shared
            ? 'spool empty: no longer renewing task scale-in protection (it lapses unless another gateway process renews it)'
            : 'spool empty: task scale-in protection dropped',
        );
        isProtected = false;
        gauge.set(0);
      }
    }
  }

  function check(): Promise<void> {
    running ??= once().finally(() => {
      running = undefined;
    });
    return running;
  }

  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();
  return {
    check,
    async stop({ release = false } = {}) {
      clearInterval(timer);
      await running;
      if (release && isProtected && !opts.shared && (await put(false))) {
        isProtected = false;
        gauge.set(0);
      }
    },
    get protected() {
      return isProtected;
    },
  };
}
