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
 *
 * Parts: live-socket-hub.ts (the sockets, limits, metrics, close and send), live-socket-auth.ts
 * (inbound messages: auth, recheck, rate limit); this file does the upgrade and bookkeeping.
 */

import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t } from 'uWebSockets.js';
import { onLiveMessage } from './live-socket-auth.js';
import {
  createLiveSocketHub,
  endSocket,
  LiveClose,
  type LiveSocketHub,
  type LiveSocketOptions,
  type LiveWs,
  type SocketData,
} from './live-socket-hub.js';

export { LiveClose, type LivePrincipal, type LiveSocketOptions } from './live-socket-hub.js';

export const LIVE_SOCKET_PATH = '/api/fleet/live/ws';

function refuse(res: HttpResponse, status: string, message: string): void {
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', 'application/json').end(JSON.stringify({ message }));
  });
}

/** The upgrade: cross-site pages and sockets beyond the limits are refused with an HTTP error. */
function upgrade(
  hub: LiveSocketHub,
  res: HttpResponse,
  req: HttpRequest,
  context: us_socket_context_t,
): void {
  const { sockets, perAddress, limits, metrics, log } = hub;
  const address = Buffer.from(res.getRemoteAddressAsText()).toString();
  const origin = req.getHeader('origin');
  const host = req.getHeader('host');
  const key = req.getHeader('sec-websocket-key');
  const protocol = req.getHeader('sec-websocket-protocol');
  const extensions = req.getHeader('sec-websocket-extensions');
  if (origin && host && origin.replace(/^https?:\/\//, '') !== host) {
    metrics.closed.inc({ reason: 'cross-origin' });
    log.warn({ peer: address, origin }, 'console socket refused: cross-origin');
    refuse(res, '403 Forbidden', 'cross-origin WebSocket refused');
    return;
  }
  if (sockets.size >= limits.maxSubscribers || (perAddress.get(address) ?? 0) >= limits.maxPerAddress) {
    metrics.closed.inc({ reason: 'capacity' });
    log.warn({ peer: address, sockets: sockets.size }, 'console socket refused: too many subscribers');
    refuse(res, '503 Service Unavailable', 'too many live subscribers; poll /api/fleet/live');
    return;
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
}

/** Counted, and closed unless an auth message arrives within `authTimeoutMs`. */
function open(hub: LiveSocketHub, ws: LiveWs): void {
  const data = ws.getUserData();
  hub.sockets.add(ws);
  hub.perAddress.set(data.address, (hub.perAddress.get(data.address) ?? 0) + 1);
  hub.metrics.gauge.set(hub.sockets.size);
  data.timer = setTimeout(() => {
    if (!data.principal) endSocket(hub, ws, data, LiveClose.AuthTimeout, 'no auth message in time');
  }, hub.limits.authTimeoutMs);
  data.timer.unref();
}

function close(hub: LiveSocketHub, ws: LiveWs): void {
  const data = ws.getUserData();
  data.closed = true;
  clearTimeout(data.timer);
  clearInterval(data.timer);
  data.unsubscribe?.();
  hub.sockets.delete(ws);
  const n = (hub.perAddress.get(data.address) ?? 1) - 1;
  if (n <= 0) hub.perAddress.delete(data.address);
  else hub.perAddress.set(data.address, n);
  hub.metrics.gauge.set(hub.sockets.size);
}

export function attachLiveSocket(app: TemplatedApp, options: LiveSocketOptions): { close(): void } {
  const hub = createLiveSocketHub(options);
  app.ws<SocketData>(LIVE_SOCKET_PATH, {
    maxPayloadLength: 8 * 1024,
    maxBackpressure: 4 * hub.limits.maxBuffered,
    idleTimeout: 120,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => upgrade(hub, res, req, context),
    open: (ws) => open(hub, ws),
    message: (ws, message) => onLiveMessage(hub, ws, message),
    close: (ws) => close(hub, ws),
  });
  return {
    close() {
      for (const ws of [...hub.sockets]) endSocket(hub, ws, ws.getUserData(), 1001, 'manager stopping');
    },
  };
}
