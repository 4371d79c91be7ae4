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
 * it keeps trying: after a failure it retries after 1 s, doubling up to the interval.
 */
import { signRequest } from '../platform/http/aksk.js';
import type { Logger } from '../platform/obs/logger.js';
import type { RegistrarMetrics } from './metrics.js';
import type { RegisterInput, RegistryStore } from './registry-store.js';

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

const FIRST_RETRY_MS = 1000;

/** `host:port` or an http(s) URL (FLEETGATE_SD_ADDRS, `fleetgate sim --sd`) as a base URL. */
export function baseUrl(addr: string): string {
  return /^https?:\/\//.test(addr) ? addr.replace(/\/+$/, '') : `http://${addr}`;
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export function startRegistrar(opts: RegistrarOptions): Registrar {
  const log = opts.logger.child({ component: 'registrar' });
  const intervalMs = opts.intervalMs ?? 5000;
  const jitter = opts.jitter ?? 0.2;
  const timeoutMs = opts.requestTimeoutMs ?? 2000;
  const random = opts.random ?? Math.random;
  const target = opts.target;
  if ('sdAddrs' in target && target.sdAddrs.length === 0) throw new Error('registrar: no discovery address');

  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let round: Promise<RoundResult> | undefined;
  let retryMs = FIRST_RETRY_MS;
  let lastSuccessAt = 0;
  let failing = false;
  /** What was registered, to evict on stop even if registrations() changes meanwhile. */
  const registered = new Map<string, Registration>();

  /** POSTs a signed Elkeid request to the discovery nodes in random order until one accepts. */
  async function post(path: string, payload: object): Promise<void> {
    if (!('sdAddrs' in target)) throw new Error('unreachable');
    const body = JSON.stringify(payload);
    const errors: string[] = [];
    for (const addr of shuffled(target.sdAddrs, random)) {
      const url = `${baseUrl(addr)}${path}`;
      try {
        const headers = signRequest({
          method: 'POST',
          path,
          query: '',
          body,
          ak: target.ak.toLowerCase(),
          sk: target.sk,
        });
        const res = await fetch(url, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await res.text();
        if (res.status === 200) return;
        errors.push(`${addr}: HTTP ${res.status} ${text.slice(0, 200)}`);
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause?.code;
        errors.push(`${addr}: ${cause ?? (err as Error).message}`);
      }
    }
    throw new Error(errors.join('; '));
  }

  /** Evicts `list`; a failure is logged, and the registrations expire after the TTL anyway. */
  async function evict(list: Registration[]): Promise<void> {
    if (list.length === 0) return;
    try {
      if ('store' in target) await target.store.evictMany(list);
      else
        await Promise.all(list.map((r) => post('/registry/evict', { name: r.name, ip: r.ip, port: r.port })));
      log.info({ evicted: list.length, names: list.map((r) => r.name) }, 'deregistered from discovery');
    } catch (err) {
      log.warn({ err }, 'deregistration failed; the registrations expire after the TTL');
    }
  }

  async function registerOne(r: Registration): Promise<void> {
    if ('store' in target) {
      const input: RegisterInput = { name: r.name, ip: r.ip, port: r.port, weight: r.weight };
      if (r.extra !== undefined) input.extra = r.extra;
      if (r.limit !== undefined) input.limit = r.limit;
      if (r.cpu !== undefined) input.cpu = r.cpu;
      if (r.mem !== undefined) input.mem = r.mem;
      if (r.version !== undefined) input.version = r.version;
      await target.store.register(input);
      return;
    }
    // Elkeid's body first (name, ip, port, weight, extra), our fields after; undefined ones are dropped.
    await post('/registry/register', {
      name: r.name,
      ip: r.ip,
      port: r.port,
      weight: r.weight,
      extra: r.extra === undefined ? null : r.extra,
      limit: r.limit,
      cpu: r.cpu,
      mem: r.mem,
      version: r.version,
    });
  }

  async function runRound(): Promise<RoundResult> {
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
    const dropped = [...registered.entries()].filter(([k]) => !keys.has(k));
    if (dropped.length > 0) {
      for (const [k] of dropped) registered.delete(k);
      await evict(dropped.map(([, r]) => r));
    }
    const results = await Promise.allSettled(regs.map((r) => registerOne(r)));
    const result: RoundResult = { ok: 0, failed: 0 };
    results.forEach((res, i) => {
      const r = regs[i]!;
      if (res.status === 'fulfilled') {
        result.ok++;
        registered.set(keyOf(r), r);
        opts.metrics?.rounds.inc({ result: 'ok' });
      } else {
        result.failed++;
        opts.metrics?.rounds.inc({ result: 'failed' });
        if (!failing)
          log.warn(
            { err: res.reason, name: r.name, ip: r.ip, port: r.port },
            'registration failed; retrying',
          );
      }
    });
    if (result.failed === 0) {
      lastSuccessAt = Date.now();
      opts.metrics?.lastOk.set(lastSuccessAt / 1000);
      if (failing) log.info({ registrations: regs.length }, 'registered again');
      failing = false;
    } else {
      failing = true;
    }
    return result;
  }

  function schedule(ms: number): void {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      void registerNow();
    }, ms);
    // The listeners keep the process alive; a pending renewal alone must not.
    timer.unref();
  }

  function registerNow(): Promise<RoundResult> {
    if (stopped) return Promise.resolve({ ok: 0, failed: 0 });
    round ??= runRound()
      .then((result) => {
        if (result.failed === 0) {
          retryMs = FIRST_RETRY_MS;
          schedule(intervalMs * (1 + (random() * 2 - 1) * jitter));
        } else {
          schedule(Math.min(retryMs, intervalMs) * (1 + (random() * 2 - 1) * jitter));
          retryMs = Math.min(retryMs * 2, intervalMs);
        }
        return result;
      })
      .finally(() => {
        round = undefined;
      });
    return round;
  }

  void registerNow();

  return {
    registerNow,
    get lastSuccessAt() {
      return lastSuccessAt;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      // A round in flight could re-register after our evict; let it finish first.
      await round?.catch(() => undefined);
      const all = [...registered.values()];
      registered.clear();
      await evict(all);
    },
  };
}
