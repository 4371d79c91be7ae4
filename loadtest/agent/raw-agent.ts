/**
 * A minimal Elkeid agent transport on node:http2, byte-for-byte what a stock agent puts on the
 * wire (docs/elkeid-protocol.md §1.2, §1.6): mTLS with SNI-independent verification of SAN
 * `elkeid.com`, ALPN h2, grpc-go's request headers, every message snappy-framed with the
 * compressed flag set. Used by tests, benchmarks and the simulator.
 */
import { readFileSync } from 'node:fs';
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import path from 'node:path';
import tls from 'node:tls';
import { frameMessage, MessageReader } from '../../gateway/grpc/message-reader.js';
import { encodeSnappyFrames } from '../../gateway/grpc/snappy-framing.js';
import { grpc } from '../../proto/gen/elkeid.js';

export interface AgentTls {
  ca: string | Buffer;
  cert: string | Buffer;
  key: string | Buffer;
}

/** The fleet client credentials from Elkeid-named files in `pkiDir` (ca.crt, client.crt, client.key). */
export function readAgentTls(pkiDir: string): { ca: Buffer; cert: Buffer; key: Buffer } {
  return {
    ca: readFileSync(path.join(pkiDir, 'ca.crt')),
    cert: readFileSync(path.join(pkiDir, 'client.crt')),
    key: readFileSync(path.join(pkiDir, 'client.key')),
  };
}

/** The message encoding of a call: snappy (what agents send) or identity (for gateways without snappy). */
export type AgentEncoding = 'snappy' | 'identity';

/** grpc-go's request headers for a compressed call (the agent sends no custom metadata). */
export function agentHeaders(path: string, encoding: AgentEncoding = 'snappy'): http2.OutgoingHttpHeaders {
  if (encoding === 'identity') {
    return {
      ':method': 'POST',
      ':path': path,
      ':scheme': 'https',
      ':authority': 'elkeid.com',
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'grpc-go/1.69.4',
    };
  }
  return {
    ':method': 'POST',
    ':path': path,
    ':scheme': 'https',
    ':authority': 'elkeid.com',
    'content-type': 'application/grpc',
    te: 'trailers',
    'grpc-encoding': 'snappy',
    'grpc-accept-encoding': 'snappy',
    'user-agent': 'grpc-go/1.69.4',
  };
}

/**
 * One client SecureContext per certificate set, as a Go agent keeps one tls.Config: building it
 * per dial parsed the key and certificates every time (8 % of a simulator's CPU in a storm).
 */
const secureContexts = new WeakMap<AgentTls, tls.SecureContext>();
function secureContextOf(t: AgentTls): tls.SecureContext {
  let c = secureContexts.get(t);
  if (!c) {
    c = tls.createSecureContext({ ca: t.ca, cert: t.cert, key: t.key });
    secureContexts.set(t, c);
  }
  return c;
}

export function connectAgent(
  address: { host: string; port: number; localAddress?: string },
  tls: AgentTls,
  opts: { timeoutMs?: number } = {},
): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const session = http2.connect(`https://${address.host}:${address.port}`, {
      secureContext: secureContextOf(tls),
      servername: 'elkeid.com',
      ALPNProtocols: ['h2'],
      ...(address.localAddress ? { localAddress: address.localAddress } : {}),
      // The agent verifies the server certificate against its CA for the name elkeid.com.
      checkServerIdentity: (_host, cert) => http2Checks(cert),
    });
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    session.once('error', onError);
    if (opts.timeoutMs !== undefined) {
      // A dial that neither connects nor fails (SYN queue overflow, a stalled handshake) gives up,
      // as grpc-go's dial timeout does.
      timer = setTimeout(() => {
        session.off('error', onError);
        session.on('error', () => {});
        session.destroy();
        reject(new Error(`dial timed out after ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      timer.unref();
    }
    session.once('connect', () => {
      clearTimeout(timer);
      session.off('error', onError);
      session.on('error', () => {});
      resolve(session);
    });
  });
}

function http2Checks(cert: tls.PeerCertificate): Error | undefined {
  return tls.checkServerIdentity('elkeid.com', cert);
}

/** Encodes a RawData as one snappy-framed, length-prefixed gRPC message (flag = 1). */
export function encodeAgentMessage(raw: grpc.RawData.$Properties): Buffer {
  return frameMessage(encodeSnappyFrames(grpc.RawData.encode(raw).finish()), true);
}

export interface TransferStream {
  stream: ClientHttp2Stream;
  /** Commands received, in order. */
  commands: grpc.Command[];
  send(raw: grpc.RawData.$Properties): boolean;
  sendFrame(frame: Uint8Array): boolean;
  /** Resolves with the final status when the server ends the call. */
  status: Promise<{ code: number; message: string; httpStatus: number | undefined }>;
  onCommand(fn: (c: grpc.Command) => void): void;
}

export function openTransfer(
  session: ClientHttp2Session,
  path = '/grpc.Transfer/Transfer',
  encoding: AgentEncoding = 'snappy',
): TransferStream {
  const stream = session.request(agentHeaders(path, encoding));
  const commands: grpc.Command[] = [];
  const listeners: Array<(c: grpc.Command) => void> = [];
  const reader = new MessageReader(4 * 1024 * 1024); // grpc-go client default receive limit
  let httpStatus: number | undefined;
  let headerStatus: { code: number; message: string } | undefined;
  stream.on('response', (h) => {
    httpStatus = Number(h[':status']);
    if (h['grpc-status'] !== undefined) {
      headerStatus = {
        code: Number(h['grpc-status']),
        message: decodeURIComponent(String(h['grpc-message'] ?? '')),
      };
    }
  });
  stream.on('data', (chunk: Buffer) => {
    for (const m of reader.push(chunk)) {
      const c = grpc.Command.decode(m.payload);
      commands.push(c);
      for (const l of listeners) l(c);
    }
  });
  stream.on('error', () => {});
  // As grpc-go's client: the status is known when the trailers (or a trailers-only response)
  // arrive, and a stream whose own side is still open is then reset with NO_ERROR. Whatever the
  // agent wrote before that is already on the wire ahead of the reset.
  const status = new Promise<{ code: number; message: string; httpStatus: number | undefined }>((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve({
        code: headerStatus?.code ?? -1,
        message: headerStatus?.message ?? `closed with rst ${stream.rstCode}`,
        httpStatus,
      });
      if (!stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    };
    stream.on('trailers', (t) => {
      headerStatus = {
        code: Number(t['grpc-status']),
        message: decodeURIComponent(String(t['grpc-message'] ?? '')),
      };
      finish();
    });
    stream.on('end', () => {
      if (headerStatus) finish(); // trailers-only response
    });
    stream.on('close', finish);
  });
  return {
    stream,
    commands,
    send: (raw) =>
      stream.write(
        encoding === 'snappy'
          ? encodeAgentMessage(raw)
          : frameMessage(grpc.RawData.encode(raw).finish(), false),
      ),
    sendFrame: (frame) => stream.write(frame),
    status,
    onCommand: (fn) => listeners.push(fn),
  };
}
