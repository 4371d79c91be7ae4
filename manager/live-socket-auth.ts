/**
 * Inbound messages of a live socket (live-socket.ts): the rate limit, the auth message, its
 * periodic recheck, pings. Anything else closes the socket.
 */

import {
  endSocket,
  LiveClose,
  type LiveSocketHub,
  type LiveWs,
  pushSnapshot,
  type SocketData,
  sendTo,
} from './live-socket-hub.js';

/** Checks the credential; on success subscribes the socket to the feed and starts the recheck. */
async function authenticate(
  hub: LiveSocketHub,
  ws: LiveWs,
  data: SocketData,
  credential: string,
): Promise<void> {
  const { options } = hub;
  data.authenticating = true;
  const principal = await options.authenticate(credential, data.address).catch(() => undefined);
  data.authenticating = false;
  if (data.closed) return;
  if (!principal) {
    endSocket(hub, ws, data, LiveClose.AuthFailed, 'auth failed');
    return;
  }
  data.principal = principal;
  data.credential = credential;
  clearTimeout(data.timer);
  data.timer = setInterval(() => void recheck(hub, ws, data), hub.limits.recheckMs);
  data.timer.unref();
  sendTo(ws, data, { type: 'hello', principal });
  data.unsubscribe = options.feed.subscribe((snapshot) => pushSnapshot(hub, ws, data, snapshot));
  options.feed.snapshot().then(
    (snapshot) => pushSnapshot(hub, ws, data, snapshot),
    (err: unknown) => hub.log.warn({ err }, 'console socket: first snapshot failed'),
  );
}

/** Revocation: the credential is asked about again; a refused one closes the socket. */
async function recheck(hub: LiveSocketHub, ws: LiveWs, data: SocketData): Promise<void> {
  if (data.closed || !data.credential) return;
  const still = await hub.options.authenticate(data.credential, data.address).catch(() => undefined);
  if (data.closed) return;
  if (!still) endSocket(hub, ws, data, LiveClose.AuthFailed, 'credential revoked or expired');
  else data.principal = still;
}

/** False (and the socket closed) beyond `maxMessagesPer10s` inbound messages. */
function withinMessageLimit(hub: LiveSocketHub, ws: LiveWs, data: SocketData): boolean {
  const now = Date.now();
  data.messages = data.messages.filter((at) => now - at < 10_000);
  data.messages.push(now);
  if (data.messages.length <= hub.limits.maxMessages) return true;
  endSocket(hub, ws, data, LiveClose.TooManyMessages, 'too many messages');
  return false;
}

export function onLiveMessage(hub: LiveSocketHub, ws: LiveWs, message: ArrayBuffer): void {
  const data = ws.getUserData();
  if (!withinMessageLimit(hub, ws, data)) return;
  let parsed: { type?: unknown; token?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(message).toString('utf8')) as typeof parsed;
  } catch {
    endSocket(hub, ws, data, LiveClose.BadMessage, 'not JSON');
    return;
  }
  if (parsed?.type === 'auth' && typeof parsed.token === 'string') {
    if (data.principal || data.authenticating) {
      endSocket(hub, ws, data, LiveClose.BadMessage, 'already authenticated');
      return;
    }
    void authenticate(hub, ws, data, parsed.token.slice(0, 1024));
    return;
  }
  if (parsed?.type === 'ping') {
    sendTo(ws, data, { type: 'pong' });
    return;
  }
  endSocket(hub, ws, data, LiveClose.BadMessage, 'unknown message');
}
