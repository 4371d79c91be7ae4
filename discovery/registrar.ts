/**
 * Keeps a process registered in discovery: every interval (default 5 s, ±20 % jitter so a fleet
 * of gateways restarted together does not renew in lockstep) each registration is sent, and
 * `stop()` evicts them all (the gateway calls it on SIGTERM before it drains, so agents stop
 * being sent to it at once instead of after one TTL).
 *
 * Over HTTP it speaks Elkeid's signed `/registry/register` and `/registry/evict` (our extra
 * fields `limit`, `cpu`, `mem`, `version` are ignored by a stock Elkeid SD), so it registers
 * with ours or with Elkeid's. With a local store (`fleetgate all`) it writes the registry
 * directly. Unlike Elkeid's AgentCenter, whose renew loop never starts if its first call fails,
 * it keeps trying: after failed rounds it retries with a full-jitter backoff (platform/backoff.ts)
 * from 1 s, doubling up to the interval.
 */
import { backoffDelay } from '../platform/backoff.js';
import type { Logger } from '../platform/obs/logger.js';
import type { RegistrarMetrics } from './metrics.js';
import { type RegistryTransport, registryTransport } from './registrar-transport.js';
import type { RegistryStore } from './registry-store.js';

const keyOf = (r: Registration) => `${r.name} ${r.ip}:${r.port}`;

export interface Registration {
  name: string;
  ip: string;
  port: number;
  weight: number;
  limit?: number | undefined;
  cpu?: number | undefined;
  mem?: number | undefined;
  version?: string | undefined;
  extra?: Record<string, unknown> | null;
}

export type RegistrarTarget =
  /** `host:port` (plain HTTP, as Elkeid SD) or full `http(s)://host:port` URLs. */
  { sdAddrs: readonly string[]; ak: string; sk: string } | { store: RegistryStore };

export interface RegistrarOptions {
  target: RegistrarTarget;
  /** Called before every round: the current weight (live connections) goes in each time. */
  registrations: () => Registration[];
  logger: Logger;
  /** Default 5000 ms. Keep it under a third of discovery's TTL (15 s) so two lost rounds are survivable. */
  intervalMs?: number;
  /** Fraction of the interval each delay varies by, either way. Default 0.2. */
  jitter?: number;
  /** Per HTTP request. Default 2000 ms (Elkeid's SD client timeout). */
  requestTimeoutMs?: number;
  metrics?: RegistrarMetrics;
  random?: () => number;
}

export interface RoundResult {
  ok: number;
  failed: number;
}

export interface Registrar {
  /** Runs a round now (also what the timer does). Concurrent calls share one round. */
  registerNow(): Promise<RoundResult>;
  /** Stops renewing and evicts every registration of the last round. Resolves when done (bounded by the timeouts). */
  stop(): Promise<void>;
  /** Unix ms of the last round in which every registration was accepted; 0 before. */
  readonly lastSuccessAt: number;
}

/** `host:port` or an http(s) URL as a base URL (registrar-transport.ts). */
export { baseUrl } from './registrar-transport.js';

/** The first retry after a failed round waits up to this; each further one up to twice as long. */
const FIRST_RETRY_MS = 1000;

/** The registrar's state between rounds. */
interface RegistrarState {
  stopped: boolean;
  timer: NodeJS.Timeout | undefined;
  round: Promise<RoundResult> | undefined;
  /** Rounds failed in a row (0 after a good one). */
  failedRounds: number;
  lastSuccessAt: number;
  /** What was registered, to evict on stop even if registrations() changes meanwhile. */
  registered: Map<string, Registration>;
}

export function startRegistrar(opts: RegistrarOptions): Registrar {
  const log = opts.logger.child({ component: 'registrar' });
  const intervalMs = opts.intervalMs ?? 5000;
  const jitter = opts.jitter ?? 0.2;
  const random = opts.random ?? Math.random;
  if ('sdAddrs' in opts.target && opts.target.sdAddrs.length === 0)
    throw new Error('registrar: no discovery address');
  const transport = registryTransport(opts.target, { timeoutMs: opts.requestTimeoutMs ?? 2000, random });
  const state: RegistrarState = {
    stopped: false,
    timer: undefined,
    round: undefined,
    failedRounds: 0,
    lastSuccessAt: 0,
    registered: new Map(),
  };
  const rounds: Rounds = { opts, log, transport, state };
  const retry = { baseMs: Math.min(FIRST_RETRY_MS, intervalMs), capMs: intervalMs };

  /** The next round: the interval ± jitter after a good one; a full-jitter backoff after failures. */
  const nextDelay = () =>
    state.failedRounds === 0
      ? intervalMs * (1 + (random() * 2 - 1) * jitter)
      : backoffDelay(state.failedRounds, retry, random);

  function schedule(ms: number): void {
    if (state.stopped) return;
    clearTimeout(state.timer);
    state.timer = setTimeout(() => {
      void registerNow();
    }, ms);
    // The listeners keep the process alive; a pending renewal alone must not.
    state.timer.unref();
  }

  function registerNow(): Promise<RoundResult> {
    if (state.stopped) return Promise.resolve({ ok: 0, failed: 0 });
    state.round ??= runRound(rounds)
      .then((result) => {
        state.failedRounds = result.failed === 0 ? 0 : state.failedRounds + 1;
        schedule(nextDelay());
        return result;
      })
      .finally(() => {
        state.round = undefined;
      });
    return state.round;
  }

  void registerNow();

  return {
    registerNow,
    get lastSuccessAt() {
      return state.lastSuccessAt;
    },
    async stop() {
      if (state.stopped) return;
      state.stopped = true;
      clearTimeout(state.timer);
      // A round in flight could re-register after our evict; let it finish first.
      await state.round?.catch(() => undefined);
      const all = [...state.registered.values()];
      state.registered.clear();
      await evict(rounds, all);
    },
  };
}

interface Rounds {
  opts: RegistrarOptions;
  log: Logger;
  transport: RegistryTransport;
  state: RegistrarState;
}

/** Evicts `list`; a failure is logged, and the registrations expire after the TTL anyway. */
async function evict(r: Rounds, list: Registration[]): Promise<void> {
  if (list.length === 0) return;
  try {
    await r.transport.evict(list);
    r.log.info({ evicted: list.length, names: list.map((x) => x.name) }, 'deregistered from discovery');
  } catch (err) {
    r.log.warn({ err }, 'deregistration failed; the registrations expire after the TTL');
  }
}

/** One round: evicts what the caller no longer lists, registers the rest, counts and logs. */
async function runRound(r: Rounds): Promise<RoundResult> {
  const { opts, log, state } = r;
  let regs: Registration[];
  try {
    regs = opts.registrations();
  } catch (err) {
    log.error({ err }, 'registrations() failed; nothing registered this round');
    return { ok: 0, failed: 1 };
  }
  // A registration the caller no longer lists (a gateway draining under limit 0) is evicted
  // now rather than left to expire, so discovery stops handing it out within one round.
  const keys = new Set(regs.map(keyOf));
  const dropped = [...state.registered.entries()].filter(([k]) => !keys.has(k));
  for (const [k] of dropped) state.registered.delete(k);
  await evict(
    r,
    dropped.map(([, reg]) => reg),
  );
  // Logged once per outage: the first failure, then "registered again".
  const failing = state.failedRounds > 0;
  const results = await Promise.allSettled(regs.map((reg) => r.transport.register(reg)));
  const result: RoundResult = { ok: 0, failed: 0 };
  results.forEach((res, i) => {
    const reg = regs[i]!;
    opts.metrics?.rounds.inc({ result: res.status === 'fulfilled' ? 'ok' : 'failed' });
    if (res.status === 'fulfilled') {
      result.ok++;
      state.registered.set(keyOf(reg), reg);
    } else {
      result.failed++;
      if (!failing)
        log.warn(
          { err: res.reason, name: reg.name, ip: reg.ip, port: reg.port },
          'registration failed; retrying',
        );
    }
  });
  if (result.failed === 0) {
    state.lastSuccessAt = Date.now();
    opts.metrics?.lastOk.set(state.lastSuccessAt / 1000);
    if (failing) log.info({ registrations: regs.length }, 'registered again');
  }
  return result;
}
