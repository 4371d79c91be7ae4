/**
 * The live channel's shared state (live-socket.ts): options with their defaults, the open
 * sockets and their count per address, metrics, and the calls every part uses to send to and
 * close a socket.
 */

import type { WebSocket } from 'uWebSockets.js';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../platform/obs/logger.js';
import type { LiveFeed, LiveSnapshot } from './live-feed.js';

/** Close codes the console understands (4000–4999 are the application's). */
export const LiveClose = {
  AuthFailed: 4401,
  AuthTimeout: 4408,
  TooManyMessages: 4429,
  BadMessage: 4400,
} as const;

export interface LivePrincipal {
  kind: string;
  id: string;
  role: string;
}

export interface LiveSocketOptions {
  feed: LiveFeed;
  /** The manager router's verdict on a credential; undefined when refused. */
  authenticate(credential: string, remoteAddress: string): Promise<LivePrincipal | undefined>;
  logger: Logger;
  registry?: Registry;
  maxSubscribers?: number;
  maxPerAddress?: number;
  maxMessagesPer10s?: number;
  maxBufferedBytes?: number;
  authTimeoutMs?: number;
  recheckMs?: number;
}

export interface SocketData {
  address: string;
  principal: LivePrincipal | undefined;
  credential: string | undefined;
  closed: boolean;
  authenticating: boolean;
  messages: number[];
  unsubscribe: (() => void) | undefined;
  timer: NodeJS.Timeout | undefined;
}

export type LiveWs = WebSocket<SocketData>;

export interface LiveLimits {
  maxSubscribers: number;
  maxPerAddress: number;
  maxMessages: number;
  maxBuffered: number;
  authTimeoutMs: number;
  recheckMs: number;
}

export interface LiveSocketHub {
  options: LiveSocketOptions;
  limits: LiveLimits;
  log: Logger;
  metrics: { gauge: Gauge; closed: Counter };
  sockets: Set<LiveWs>;
  perAddress: Map<string, number>;
}

function liveMetrics(registry: Registry | undefined) {
  const gauge =
    (registry?.getSingleMetric('fleetgate_console_ws_subscribers') as Gauge | undefined) ??
    new Gauge({
      name: 'fleetgate_console_ws_subscribers',
      help: 'console WebSocket connections (authenticated or not yet)',
      registers: registry ? [registry] : [],
    });
  const closed =
    (registry?.getSingleMetric('fleetgate_console_ws_closed_total') as Counter | undefined) ??
    new Counter({
      name: 'fleetgate_console_ws_closed_total',
      help: 'console WebSocket connections refused or closed by the manager, by reason',
      labelNames: ['reason'],
      registers: registry ? [registry] : [],
    });
  return { gauge, closed };
}

export function createLiveSocketHub(options: LiveSocketOptions): LiveSocketHub {
  return {
    options,
    limits: {
      maxSubscribers: options.maxSubscribers ?? 200,
      maxPerAddress: options.maxPerAddress ?? 20,
      maxMessages: options.maxMessagesPer10s ?? 20,
      maxBuffered: options.maxBufferedBytes ?? 256 * 1024,
      authTimeoutMs: options.authTimeoutMs ?? 5000,
      recheckMs: options.recheckMs ?? 10_000,
    },
    log: options.logger.child({ component: 'console-ws' }),
    metrics: liveMetrics(options.registry),
    sockets: new Set<LiveWs>(),
    perAddress: new Map<string, number>(),
  };
}

// Every helper takes the socket's data object: uWS throws on any call on a closed socket,
// getUserData() included, and an answer awaited here can arrive after the close.

export function endSocket(
  hub: LiveSocketHub,
  ws: LiveWs,
  data: SocketData,
  code: number,
  reason: string,
): void {
  if (data.closed) return;
  hub.metrics.closed.inc({ reason });
  hub.log.info({ peer: data.address, principal: data.principal?.id, code, reason }, 'console socket closed');
  data.closed = true;
  ws.end(code, reason);
}

export function sendTo(ws: LiveWs, data: SocketData, message: unknown): void {
  if (data.closed) return;
  ws.send(JSON.stringify(message), false);
}

/** Broadcast of one snapshot to one socket. */
export function pushSnapshot(hub: LiveSocketHub, ws: LiveWs, data: SocketData, snapshot: LiveSnapshot): void {
  if (data.closed) return;
  // A reader that does not keep up misses snapshots rather than growing our buffer.
  if (ws.getBufferedAmount() > hub.limits.maxBuffered) return;
  sendTo(ws, data, { type: 'snapshot', data: snapshot });
}
