/**
 * The console's live channel: a WebSocket on the manager's uWebSockets.js app
 * (`/api/fleet/live/ws`) pushing the live feed's snapshots (live-feed.ts) to signed-in browsers.
 *
 * - Authentication: the first message is `{"type":"auth","token":"…"}` with a session token or
 *   API key — never the URL, so the token stays out of access logs and browser history. The
 *   credential is checked by the manager's own router (the caller passes `authenticate`, which
 *   asks `GET /api/fleet/me`), so revocation rules, roles and rate limits are the API's. Nothing
 *   is sent before it succeeds; no auth within `authTimeoutMs` closes the socket.
 * - Revocation: every `recheckMs` each socket's credential is checked again; a sign-out,
 *   password change, role loss, key revocation or expiry closes it (code 4401).
 * - Bounds: `maxSubscribers` sockets in all and `maxPerAddress` per peer address (the upgrade is
 *   refused with 503 beyond), messages of at most 8 KiB, `maxMessagesPer10s` inbound messages
 *   per socket (beyond: closed, 4429), one snapshot per push interval outbound, skipped for a
 *   socket whose unsent data exceeds `maxBufferedBytes` (a slow reader is not buffered forever).
 * - Cross-site pages are refused at the upgrade (Origin must match Host).
 *
 * The module only takes the uWS app; when the HTTP adapter runs without uWS there is no socket
 * and the console polls `GET /api/fleet/live` instead.
 */

import type { HttpResponse, TemplatedApp, WebSocket } from 'uWebSockets.js';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../platform/obs/logger.js';
import type { LiveFeed, LiveSnapshot } from './live-feed.js';

export const LIVE_SOCKET_PATH = '/api/fleet/live/ws';

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

interface SocketData {
  address: string;
  principal: LivePrincipal | undefined;
  credential: string | undefined;
  closed: boolean;
  authenticating: boolean;
  messages: number[];
  unsubscribe: (() => void) | undefined;
  timer: NodeJS.Timeout | undefined;
}

type LiveWs = WebSocket<SocketData>;

function metrics(registry: Registry | undefined) {
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

function refuse(res: HttpResponse, status: string, message: string): void {
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', 'application/json').end(JSON.stringify({ message }));
  });
}

export function attachLiveSocket(app: TemplatedApp, o: LiveSocketOptions): { close(): void } {
  const maxSubscribers = o.maxSubscribers ?? 200;
  const maxPerAddress = o.maxPerAddress ?? 20;
  const maxMessages = o.maxMessagesPer10s ?? 20;
  const maxBuffered = o.maxBufferedBytes ?? 256 * 1024;
  const authTimeoutMs = o.authTimeoutMs ?? 5000;
  const recheckMs = o.recheckMs ?? 10_000;
  const log = o.logger.child({ component: 'console-ws' });
  const m = metrics(o.registry);
  const sockets = new Set<LiveWs>();
  const perAddress = new Map<string, number>();

  // Every helper takes the socket's data object: uWS throws on any call on a closed socket,
  // getUserData() included, and an answer awaited here can arrive after the close.
  function end(ws: LiveWs, d: SocketData, code: number, reason: string): void {
    if (d.closed) return;
    m.closed.inc({ reason });
    log.info({ peer: d.address, principal: d.principal?.id, code, reason }, 'console socket closed');
    d.closed = true;
    ws.end(code, reason);
  }

  function send(ws: LiveWs, d: SocketData, message: unknown): void {
    if (d.closed) return;
    ws.send(JSON.stringify(message), false);
  }

  function push(ws: LiveWs, d: SocketData, s: LiveSnapshot): void {
    if (d.closed) return;
    // A reader that does not keep up misses snapshots rather than growing our buffer.
    if (ws.getBufferedAmount() > maxBuffered) return;
    send(ws, d, { type: 'snapshot', data: s });
  }

  async function authenticate(ws: LiveWs, d: SocketData, credential: string): Promise<void> {
    d.authenticating = true;
    const principal = await o.authenticate(credential, d.address).catch(() => undefined);
    d.authenticating = false;
    if (d.closed) return;
    if (!principal) {
      end(ws, d, LiveClose.AuthFailed, 'auth failed');
      return;
    }
    d.principal = principal;
    d.credential = credential;
    clearTimeout(d.timer);
    d.timer = setInterval(() => void recheck(ws, d), recheckMs);
    d.timer.unref();
    send(ws, d, { type: 'hello', principal });
    d.unsubscribe = o.feed.subscribe((s) => push(ws, d, s));
    o.feed.snapshot().then(
      (s) => push(ws, d, s),
      (err: unknown) => log.warn({ err }, 'console socket: first snapshot failed'),
    );
  }

  async function recheck(ws: LiveWs, d: SocketData): Promise<void> {
    if (d.closed || !d.credential) return;
    const still = await o.authenticate(d.credential, d.address).catch(() => undefined);
    if (d.closed) return;
    if (!still) end(ws, d, LiveClose.AuthFailed, 'credential revoked or expired');
    else d.principal = still;
  }

  function onMessage(ws: LiveWs, message: ArrayBuffer): void {
    const d = ws.getUserData();
    const now = Date.now();
    d.messages = d.messages.filter((t) => now - t < 10_000);
    d.messages.push(now);
    if (d.messages.length > maxMessages) {
      end(ws, d, LiveClose.TooManyMessages, 'too many messages');
      return;
    }
    let parsed: { type?: unknown; token?: unknown };
    try {
      parsed = JSON.parse(Buffer.from(message).toString('utf8')) as typeof parsed;
    } catch {
      end(ws, d, LiveClose.BadMessage, 'not JSON');
      return;
    }
    if (parsed?.type === 'auth' && typeof parsed.token === 'string') {
      if (d.principal || d.authenticating) {
        end(ws, d, LiveClose.BadMessage, 'already authenticated');
        return;
      }
      void authenticate(ws, d, parsed.token.slice(0, 1024));
      return;
    }
    if (parsed?.type === 'ping') {
      send(ws, d, { type: 'pong' });
      return;
    }
    end(ws, d, LiveClose.BadMessage, 'unknown message');
  }

  app.ws<SocketData>(LIVE_SOCKET_PATH, {
    maxPayloadLength: 8 * 1024,
    maxBackpressure: 4 * maxBuffered,
    idleTimeout: 120,
    sendPingsAutomatically: true,
    upgrade(res, req, context) {
      const address = Buffer.from(res.getRemoteAddressAsText()).toString();
      const origin = req.getHeader('origin');
      const host = req.getHeader('host');
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      if (origin && host && origin.replace(/^https?:\/\//, '') !== host) {
        m.closed.inc({ reason: 'cross-origin' });
        log.warn({ peer: address, origin }, 'console socket refused: cross-origin');
        return refuse(res, '403 Forbidden', 'cross-origin WebSocket refused');
      }
      if (sockets.size >= maxSubscribers || (perAddress.get(address) ?? 0) >= maxPerAddress) {
        m.closed.inc({ reason: 'capacity' });
        log.warn({ peer: address, sockets: sockets.size }, 'console socket refused: too many subscribers');
        return refuse(res, '503 Service Unavailable', 'too many live subscribers; poll /api/fleet/live');
      }
      const data: SocketData = {
        address,
        principal: undefined,
        credential: undefined,
        closed: false,
        authenticating: false,
        messages: [],
        unsubscribe: undefined,
        timer: undefined,
      };
      res.upgrade(data, key, protocol, extensions, context);
    },
    open(ws) {
      const d = ws.getUserData();
      sockets.add(ws);
      perAddress.set(d.address, (perAddress.get(d.address) ?? 0) + 1);
      m.gauge.set(sockets.size);
      d.timer = setTimeout(() => {
        if (!d.principal) end(ws, d, LiveClose.AuthTimeout, 'no auth message in time');
      }, authTimeoutMs);
      d.timer.unref();
    },
    message: (ws, message) => onMessage(ws, message),
    close(ws) {
      const d = ws.getUserData();
      d.closed = true;
      clearTimeout(d.timer);
      clearInterval(d.timer);
      d.unsubscribe?.();
      sockets.delete(ws);
      const n = (perAddress.get(d.address) ?? 1) - 1;
      if (n <= 0) perAddress.delete(d.address);
      else perAddress.set(d.address, n);
      m.gauge.set(sockets.size);
    },
  });

  return {
    close() {
      for (const ws of [...sockets]) end(ws, ws.getUserData(), 1001, 'manager stopping');
    },
  };
}
