/**
 * Live updates: the manager's WebSocket (`/api/fleet/live/ws`; the token goes in the first
 * message, never the URL) and, where it is unavailable (a manager without uWS, API Gateway +
 * Lambda, a proxy that drops upgrades, the subscriber limit), polling `GET /api/fleet/live`.
 * The socket is retried every 30 s while polling.
 */
import { ApiError, currentToken, get, type Schemas } from './client';

export type LiveSnapshot = Schemas['LiveSnapshot'];
export type LiveMode = 'connecting' | 'websocket' | 'polling';

const POLL_MS = 3000;
const RETRY_SOCKET_MS = 30_000;
/** The manager closes with this when the credential is refused or revoked. */
const AUTH_FAILED = 4401;

export interface LiveHandlers {
  snapshot(s: LiveSnapshot): void;
  mode(m: LiveMode): void;
  /** The session ended (revoked or expired token). */
  ended(): void;
}

export function startLive(h: LiveHandlers): () => void {
  let stopped = false;
  let socket: WebSocket | undefined;
  let pollTimer: number | undefined;
  let retryTimer: number | undefined;

  async function poll(): Promise<void> {
    if (stopped) return;
    try {
      h.snapshot(await get('/api/fleet/live'));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return h.ended();
    }
    pollTimer = window.setTimeout(() => void poll(), POLL_MS);
  }

  function fallBack(): void {
    if (stopped || pollTimer !== undefined) return;
    h.mode('polling');
    void poll();
    retryTimer = window.setTimeout(() => {
      window.clearTimeout(pollTimer);
      pollTimer = undefined;
      openSocket();
    }, RETRY_SOCKET_MS);
  }

  function openSocket(): void {
    if (stopped) return;
    const token = currentToken();
    if (!token) {
      h.ended();
      return;
    }
    h.mode('connecting');
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    let ws: WebSocket;
    try {
      ws = new WebSocket(`${scheme}://${location.host}/api/fleet/live/ws`);
    } catch {
      fallBack();
      return;
    }
    socket = ws;
    let authenticated = false;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token }));
    ws.onmessage = (ev) => {
      const msg = JSON.parse(String(ev.data)) as { type: string; data?: LiveSnapshot };
      if (msg.type === 'hello') {
        authenticated = true;
        h.mode('websocket');
      } else if (msg.type === 'snapshot' && msg.data) h.snapshot(msg.data);
    };
    ws.onclose = (ev) => {
      socket = undefined;
      if (stopped) return;
      if (ev.code === AUTH_FAILED) return h.ended();
      // Never authenticated (no socket on this manager) or dropped: poll, retry later.
      if (!authenticated) {
        fallBack();
        return;
      }
      window.setTimeout(openSocket, 1000);
    };
  }

  openSocket();
  return () => {
    stopped = true;
    window.clearTimeout(pollTimer);
    window.clearTimeout(retryTimer);
    socket?.close(1000, 'page closed');
  };
}
