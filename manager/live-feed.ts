/**
 * What the operator console shows live: fleet statistics, gateways with their limits, the most
 * recent tasks with their counts, and an hour of history (connected / online agents, records/s in
 * and into Kafka per sample).
 * One snapshot is built for every subscriber (everyone signed in may read it), from the very
 * route handlers of `GET /api/fleet/stats`, `/gateways` and `/tasks`, so the pushed data has the
 * shapes docs/openapi.yaml gives those routes and cannot drift from them.
 *
 * The WebSocket (live-socket.ts) pushes a snapshot to its subscribers every `pushMs`;
 * `GET /api/fleet/live` answers the same snapshot to pollers (the console's fallback, and the
 * only way on Lambda, where nothing runs between requests). Builds are coalesced and cached for
 * `minBuildMs`, so any number of pollers cost the store one build per interval.
 */
import type { HttpResponse } from '../platform/http/types.js';
import type { Logger } from '../platform/obs/logger.js';
import { apiOk } from './envelope.js';
import type { Ctx, ManagerRoute } from './router.js';

export interface LiveSample {
  /** Unix milliseconds. */
  t: number;
  total: number;
  online: number;
  connected: number;
  gateways: number;
  active_tasks: number;
  /** Records per second received by the live gateways / into Kafka (their last published rates). */
  records_in_per_s: number;
  records_to_kafka_per_s: number;
}

export interface LiveSnapshot {
  at: number;
  stats: unknown;
  gateways: unknown[];
  tasks: unknown[];
  history: LiveSample[];
}

export interface LiveFeed {
  /** The latest snapshot, built now unless one younger than `minBuildMs` exists. */
  snapshot(): Promise<LiveSnapshot>;
  /** Calls `listener` with each pushed snapshot until the returned function is called. */
  subscribe(listener: (s: LiveSnapshot) => void): () => void;
  readonly subscribers: number;
  /**
   * Starts pushing (every pushMs while anyone listens); history is sampled every sampleMs from
   * the first snapshot asked for (socket or poll) on, so an unwatched manager reads nothing.
   */
  start(): void;
  stop(): void;
}

export interface LiveFeedOptions {
  /** The manager's routes; the feed calls the read handlers named above. */
  routes: readonly ManagerRoute[];
  logger: Logger;
  now?: () => number;
  pushMs?: number;
  sampleMs?: number;
  minBuildMs?: number;
  /** Samples kept (default an hour of 10 s samples). */
  historySize?: number;
  /** Recent tasks in a snapshot. */
  taskCount?: number;
}

const ACTIVE_TASK = new Set(['created', 'running']);

function readHandler(routes: readonly ManagerRoute[], path: string) {
  const route = routes.find((r) => r.method === 'GET' && r.path === path);
  if (!route) throw new Error(`live feed: no route GET ${path}`);
  return route.handler;
}

/** A read by the feed itself: the internal principal of an admin-level reader, never audited. */
function internalCtx(query: string): Ctx {
  return {
    req: { method: 'GET', path: '', query, headers: {}, body: Buffer.alloc(0), remoteAddress: 'internal' },
    params: {},
    query: new URLSearchParams(query),
    principal: { kind: 'user', id: 'live-feed', role: 'viewer' },
    audit: { skip: true },
    body: () => ({}),
  };
}

async function bodyOf(res: HttpResponse | Promise<HttpResponse>): Promise<Record<string, unknown>> {
  const r = await res;
  if (r.status !== 200) throw new Error(`live feed read answered ${r.status}`);
  return JSON.parse(String(r.body)) as Record<string, unknown>;
}

export function createLiveFeed(o: LiveFeedOptions): LiveFeed {
  const now = o.now ?? Date.now;
  const pushMs = o.pushMs ?? 2000;
  const sampleMs = o.sampleMs ?? 10_000;
  const minBuildMs = o.minBuildMs ?? 1000;
  const historySize = o.historySize ?? 360;
  const taskCount = o.taskCount ?? 20;
  const stats = readHandler(o.routes, '/api/fleet/stats');
  const gateways = readHandler(o.routes, '/api/fleet/gateways');
  const tasks = readHandler(o.routes, '/api/fleet/tasks');
  const history: LiveSample[] = [];
  const listeners = new Set<(s: LiveSnapshot) => void>();
  let last: LiveSnapshot | undefined;
  let building: Promise<LiveSnapshot> | undefined;
  let started = false;
  let pushing: NodeJS.Timeout | undefined;
  let sampling: NodeJS.Timeout | undefined;

  function sample(s: LiveSnapshot): void {
    const prev = history[history.length - 1];
    // At most one sample per interval, whoever built the snapshot (timer or poller).
    if (prev && s.at - prev.t < sampleMs * 0.9) return;
    const st = s.stats as { total?: number; online?: number };
    const gws = s.gateways as Array<{
      connected?: number;
      alive?: boolean;
      records_in_per_s?: number | null;
      records_to_kafka_per_s?: number | null;
    }>;
    const alive = gws.filter((g) => g.alive);
    const sum = (f: (g: (typeof gws)[number]) => number | null | undefined) =>
      Math.round(alive.reduce((n, g) => n + (f(g) ?? 0), 0) * 10) / 10;
    history.push({
      t: s.at,
      total: st.total ?? 0,
      online: st.online ?? 0,
      connected: sum((g) => g.connected),
      gateways: alive.length,
      active_tasks: (s.tasks as Array<{ task_status?: string }>).filter((t) =>
        ACTIVE_TASK.has(String(t.task_status)),
      ).length,
      records_in_per_s: sum((g) => g.records_in_per_s),
      records_to_kafka_per_s: sum((g) => g.records_to_kafka_per_s),
    });
    if (history.length > historySize) history.splice(0, history.length - historySize);
  }

  async function build(): Promise<LiveSnapshot> {
    const [st, gw, tk] = await Promise.all([
      bodyOf(stats(internalCtx(''))),
      bodyOf(gateways(internalCtx(''))),
      bodyOf(tasks(internalCtx(`limit=${taskCount}`))),
    ]);
    const s: LiveSnapshot = {
      at: now(),
      stats: st,
      gateways: (gw.gateways as unknown[]) ?? [],
      tasks: (tk.items as unknown[]) ?? [],
      history,
    };
    sample(s);
    last = s;
    return s;
  }

  function snapshot(): Promise<LiveSnapshot> {
    // History is kept from the first look on: a manager nobody watches reads nothing.
    if (started && !sampling) {
      sampling = setInterval(() => void tick(false), sampleMs);
      sampling.unref();
    }
    if (last && now() - last.at < minBuildMs) return Promise.resolve(last);
    building ??= build().finally(() => {
      building = undefined;
    });
    return building;
  }

  async function tick(push: boolean): Promise<void> {
    if (push && listeners.size === 0) return;
    try {
      const s = await snapshot();
      if (push) for (const l of listeners) l(s);
    } catch (err) {
      o.logger.warn({ err }, 'live feed: snapshot failed');
    }
  }

  return {
    snapshot,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    get subscribers() {
      return listeners.size;
    },
    start() {
      if (started) return;
      started = true;
      pushing = setInterval(() => void tick(true), pushMs);
      pushing.unref();
    },
    stop() {
      started = false;
      clearInterval(pushing);
      clearInterval(sampling);
      pushing = undefined;
      sampling = undefined;
    },
  };
}

/** `GET /api/fleet/live`: the snapshot the WebSocket pushes, for pollers (and Lambda). */
export function liveRoute(feed: LiveFeed): ManagerRoute {
  return {
    method: 'GET',
    path: '/api/fleet/live',
    access: 'read',
    api: 'fleet',
    audited: false,
    summary: 'what the console shows live: stats, gateways, recent tasks, an hour of history',
    handler: async () => apiOk(await feed.snapshot()),
  };
}
