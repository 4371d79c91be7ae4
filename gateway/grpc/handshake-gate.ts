/**
 * Admission of new TCP connections to the TLS server by the number of handshakes in progress.
 *
 * Why: a stock Elkeid agent redials 5 s after its stream ends, with no jitter, and gives up a
 * dial after 15 s. When a gateway restarts or the network blips, all its agents arrive in the
 * same second. Started all at once, their handshakes share the CPU and each takes as long as all
 * of them together; past 15 s the agents give up, the work spent on them is lost, and they come
 * back 5 s later with the others — a storm that feeds itself (docs/capacity.md). With at most
 * `max` handshakes in progress, each finishes quickly and the excess is refused in microseconds,
 * before any TLS work: the agent dials the next address discovery gave it, or retries in 5 s.
 *
 * One source address may hold at most `maxPerSource` of the slots, so a peer that opens sockets
 * and never finishes its handshake (slowloris) delays only itself, for at most the handshake
 * timeout, and cannot shut everyone else out.
 *
 * The gate sits in front of the TLS server's own 'connection' listener (node:tls wraps each
 * accepted socket there); a slot is released when the handshake completes (the TLS socket's
 * `_parent` is the raw socket — checked by test/unit/handshake-gate.test.ts on the Node in use)
 * or when the raw socket closes, whichever comes first.
 */

import type { Http2SecureServer } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

export interface HandshakeGateOptions {
  /** Handshakes in progress at once; beyond it new connections are refused. */
  max: number;
  /** Of those, at most this many from one source address. */
  maxPerSource: number;
  /** Called for each refused connection (metrics, rate-limited logs). */
  onRefuse: (reason: 'handshakes' | 'source', remoteAddress: string | undefined) => void;
  /** Called with the number in progress whenever it changes (a gauge). */
  onPending?: (pending: number) => void;
}

export interface HandshakeGate {
  /** Handshakes in progress now. */
  readonly pending: number;
  /** Connections refused since start, by reason. */
  readonly refused: { handshakes: number; source: number };
}

type ConnectionListener = (this: Http2SecureServer, socket: Socket) => void;

/** On a raw socket whose slot is held: its source address (the slot's key). Cleared on release. */
const kSlot = Symbol('handshakeSlot');
type GatedSocket = Socket & { [kSlot]?: string | undefined };

/** Puts the gate in front of `server`'s TLS connection listener. Throws if that listener is not where node:tls puts it. */
export function installHandshakeGate(server: Http2SecureServer, opts: HandshakeGateOptions): HandshakeGate {
  const listeners = server.listeners('connection') as ConnectionListener[];
  if (listeners.length !== 1) {
    throw new Error(`expected node:tls's one 'connection' listener on the server, found ${listeners.length}`);
  }
  const tlsListener = listeners[0]!;
  server.removeListener('connection', tlsListener);

  let pending = 0;
  const bySource = new Map<string, number>();
  const refused = { handshakes: 0, source: 0 };

  // One function for every socket (no closure per connection: a storm accepts thousands a second).
  const release = (socket: GatedSocket) => {
    const source = socket[kSlot];
    if (source === undefined) return;
    socket[kSlot] = undefined;
    pending--;
    opts.onPending?.(pending);
    const n = (bySource.get(source) ?? 1) - 1;
    if (n <= 0) bySource.delete(source);
    else bySource.set(source, n);
  };
  function releaseOnClose(this: GatedSocket) {
    release(this);
  }

  server.on('connection', (socket: GatedSocket) => {
    const source = socket.remoteAddress ?? '';
    const fromSource = bySource.get(source) ?? 0;
    const reason =
      pending >= opts.max ? 'handshakes' : fromSource >= opts.maxPerSource ? 'source' : undefined;
    if (reason) {
      refused[reason]++;
      opts.onRefuse(reason, socket.remoteAddress);
      // An RST rather than a FIN: the agent's dial fails at once instead of waiting on a TLS reply.
      if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
      else socket.destroy();
      return;
    }
    pending++;
    opts.onPending?.(pending);
    bySource.set(source, fromSource + 1);
    socket[kSlot] = source;
    socket.on('close', releaseOnClose);
    tlsListener.call(server, socket);
  });

  const onHandshakeEnd = (tlsSocket: TLSSocket) => {
    const raw = (tlsSocket as TLSSocket & { _parent?: GatedSocket })._parent;
    if (raw) release(raw);
  };
  server.on('secureConnection', onHandshakeEnd);
  server.on('tlsClientError', (_err: Error, tlsSocket: TLSSocket) => onHandshakeEnd(tlsSocket));

  return {
    get pending() {
      return pending;
    },
    refused,
  };
}
