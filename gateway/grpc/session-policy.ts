/**
 * What the server enforces on live sessions: client PING strikes, Rapid Reset, and one sweep for
 * every session (keepalive pings and their ack timeout, idle sessions), plus closing a session
 * with a GOAWAY the peer can read.
 */
import http2 from 'node:http2';
import type { GrpcServerContext } from './server-context.js';
import type { SessionInfo } from './session-info.js';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR, NGHTTP2_CANCEL } = http2.constants;

/** A stream cancelled this soon after it opened counts toward the Rapid Reset limit. */
const RAPID_RESET_WINDOW_MS = 1000;
const RAPID_RESET_LIMIT = 100;

/** Sends GOAWAY with `debug` as its debug data, then destroys the session shortly after. */
export function closeSession(info: SessionInfo, code: number, debug: string): void {
  const session = info.session;
  if (session.destroyed) return;
  try {
    session.goaway(code, 0, Buffer.from(debug));
  } catch {
    // goaway throws on a session already closing; destroying is still right.
  }
  // Give the GOAWAY frame a moment to reach the peer.
  setTimeout(() => session.destroy(), 100).unref();
}

// Ping strikes as grpc-go's server counts them (http2_server.go handlePing): a client PING
// after the server sent headers or data is never a strike and clears them. grpc-go clients
// (stock Elkeid agents) send a PING for each DATA frame they receive while estimating the
// bandwidth-delay product, so a burst of commands is answered by a burst of PINGs; counting
// those closed the agent's session. A PING flood with nothing sent in between still strikes.
export function countClientPing(context: GrpcServerContext, info: SessionInfo): void {
  if (info.resetPingStrikes) {
    info.resetPingStrikes = false;
    info.pingStrikes = 0;
    return;
  }
  const { limits } = context;
  const now = Date.now();
  if (info.lastClientPingAt !== 0 && now - info.lastClientPingAt < limits.minClientPingIntervalMs) {
    info.pingStrikes++;
    if (info.pingStrikes > limits.maxPingStrikes) {
      context.metrics.sessionsClosed.inc({ reason: 'too_many_pings' });
      context.log.info({ peer: info.socket.remoteAddress }, 'GOAWAY too_many_pings');
      closeSession(info, NGHTTP2_ENHANCE_YOUR_CALM, 'too_many_pings');
    }
  } else {
    info.pingStrikes = 0;
  }
  info.lastClientPingAt = now;
}

/**
 * Bookkeeping when a stream of `info` closes: open streams and idle time, and Rapid Reset
 * (CVE-2023-44487): nghttp2 stops reading after its own limit but leaves the socket open; we
 * close a session whose client keeps cancelling streams right after opening them.
 */
export function countStreamClose(
  context: GrpcServerContext,
  info: SessionInfo,
  rstCode: number,
  openedAt: number,
): void {
  info.openStreams--;
  const now = Date.now();
  if (info.openStreams === 0) info.idleSince = now;
  if (rstCode === NGHTTP2_CANCEL && now - openedAt < RAPID_RESET_WINDOW_MS) {
    info.rapidResets++;
    if (info.rapidResets === RAPID_RESET_LIMIT) {
      context.metrics.sessionsClosed.inc({ reason: 'rapid_reset' });
      context.log.warn({ peer: info.socket.remoteAddress }, 'GOAWAY rapid reset');
      closeSession(info, NGHTTP2_ENHANCE_YOUR_CALM, 'rapid_reset');
    }
  }
}

/**
 * One sweep for all sessions instead of timers per session: keepalive pings, ack timeouts, idle
 * sessions (docs/hardening.md §0.2: node:http2 has no idle timeout by default). Returns the
 * (unref'd) interval; drain clears it.
 */
export function startSessionSweep(context: GrpcServerContext): NodeJS.Timeout {
  const { limits } = context;
  const sweepEvery = Math.max(250, Math.min(limits.keepaliveTimeMs, limits.idleSessionMs) / 4);
  const sweep = setInterval(() => sweepSessions(context, Date.now()), sweepEvery);
  sweep.unref();
  return sweep;
}

function sweepSessions(context: GrpcServerContext, now: number): void {
  const { limits, metrics } = context;
  for (const info of context.sessions) {
    const session = info.session;
    if (session.destroyed || session.closed) continue;
    if (info.pingSentAt !== 0 && now - info.pingSentAt > limits.keepaliveTimeoutMs) {
      metrics.sessionsClosed.inc({ reason: 'keepalive_timeout' });
      session.destroy();
      continue;
    }
    if (info.openStreams === 0 && now - info.idleSince > limits.idleSessionMs) {
      metrics.sessionsClosed.inc({ reason: 'idle' });
      closeSession(info, NGHTTP2_NO_ERROR, 'idle');
      continue;
    }
    if (info.pingSentAt === 0 && now - info.lastPingAckAt >= limits.keepaliveTimeMs) {
      sendKeepalivePing(info, now);
    }
  }
}

function sendKeepalivePing(info: SessionInfo, now: number): void {
  const session = info.session;
  info.pingSentAt = now;
  try {
    session.ping((err) => {
      info.pingSentAt = 0;
      info.lastPingAckAt = Date.now();
      if (err) session.destroy();
    });
  } catch {
    session.destroy();
  }
}
