/**
 * One gRPC call on one HTTP/2 stream, server side: reads length-prefixed messages with
 * backpressure, writes messages, and ends with a status in trailers (or trailers-only when
 * nothing was sent yet). No gRPC library: node:http2 only.
 */
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { ACCEPT_ENCODING_HEADER, decompress, type Encoding } from './codecs.js';
import { frameMessage, MessageReader } from './message-reader.js';
import { encodeGrpcMessage, GrpcError, Status, type StatusCode } from './status.js';

const { NGHTTP2_NO_ERROR } = http2.constants;

export interface CallOptions {
  maxMessageBytes: number;
  encoding: Encoding;
  /** ms from grpc-timeout, when the client set one. */
  deadlineMs?: number;
  /** Called whenever the call sends headers or a message (the session's ping-strike reset). */
  onSend?: () => void;
}

/** How a call ended, reported once to onClose listeners. */
export interface CallEnd {
  code: StatusCode;
  message: string;
  /** true when the client went away (RST_STREAM, session loss) before we sent a status. */
  cancelled: boolean;
}

export type MessageHandler = (message: Buffer) => void | Promise<void>;

export class ServerCall {
  readonly stream: ServerHttp2Stream;
  readonly headers: IncomingHttpHeaders;
  readonly method: string;
  readonly #opts: CallOptions;
  readonly #reader: MessageReader;
  #headersSent = false;
  #ended = false;
  #end: CallEnd | undefined;
  #pending: Array<{ compressed: boolean; payload: Buffer }> = [];
  #busy = false;
  #readEnded = false;
  #onMessage: MessageHandler | undefined;
  #onHalfClose: (() => void) | undefined;
  #closeListeners: Array<(end: CallEnd) => void> = [];
  #deadline: NodeJS.Timeout | undefined;
  #trailers: Record<string, string> | undefined;
  #closing: { code: StatusCode; message: string } | undefined;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, opts: CallOptions) {
    this.stream = stream;
    this.headers = headers;
    this.method = String(headers[':path'] ?? '');
    this.#opts = opts;
    this.#reader = new MessageReader(opts.maxMessageBytes);
    stream.on('error', () => {
      // Stream errors (RST from the peer, session teardown) surface as 'close'; nothing to add here,
      // but an unhandled 'error' would crash the process.
    });
    stream.on('wantTrailers', () => {
      if (!this.#trailers) return;
      stream.sendTrailers(this.#trailers);
      // Only once the trailers are queued may we ask a still-sending client to stop (RST_STREAM
      // NO_ERROR, RFC 9113 §8.1); earlier, the reset would overtake the status.
      if (!this.#readEnded) this.#resetAfterStatus();
    });
    stream.once('close', () => this.#closed());
    if (opts.deadlineMs !== undefined) {
      this.#deadline = setTimeout(
        () => this.end(Status.DEADLINE_EXCEEDED, 'deadline exceeded'),
        opts.deadlineMs,
      );
      this.#deadline.unref();
    }
  }

  /** `ip:port` of the peer. */
  get peer(): string {
    const s = this.stream.session?.socket;
    if (!s) return 'unknown';
    return s.remoteFamily === 'IPv6'
      ? `[${s.remoteAddress}]:${s.remotePort}`
      : `${s.remoteAddress}:${s.remotePort}`;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Starts reading. `onMessage` gets each decompressed message in order; when it returns a
   * promise, reading pauses until it settles, so backpressure reaches the client through HTTP/2
   * flow control. A rejected promise or a thrown GrpcError ends the call with its status.
   */
  read(onMessage: MessageHandler, onHalfClose: () => void): void {
    this.#onMessage = onMessage;
    this.#onHalfClose = onHalfClose;
    this.stream.on('data', (chunk: Buffer) => {
      if (this.#ended) return;
      try {
        for (const m of this.#reader.push(chunk)) this.#pending.push(m);
      } catch (err) {
        this.fail(err);
        return;
      }
      this.#drain();
    });
    this.stream.on('end', () => {
      this.#readEnded = true;
      try {
        this.#reader.finish();
      } catch (err) {
        this.fail(err);
        return;
      }
      this.#drain();
    });
  }

  #drain(): void {
    while (!this.#busy && !this.#ended && this.#pending.length > 0) {
      const framed = this.#pending.shift()!;
      let result: void | Promise<void>;
      try {
        const message = framed.compressed
          ? decompress(this.#opts.encoding, framed.payload, this.#opts.maxMessageBytes)
          : framed.payload;
        result = this.#onMessage!(message);
      } catch (err) {
        this.fail(err);
        return;
      }
      if (result instanceof Promise) {
        this.#busy = true;
        this.stream.pause();
        result.then(
          () => {
            this.#busy = false;
            if (this.#ended) return;
            this.stream.resume();
            this.#drain();
          },
          (err: unknown) => {
            this.#busy = false;
            this.fail(err);
          },
        );
        return;
      }
    }
    if (this.#closing && !this.#busy && !this.#ended && this.#pending.length === 0 && this.#reader.idle) {
      this.end(this.#closing.code, this.#closing.message);
      return;
    }
    if (!this.#busy && !this.#ended && this.#readEnded && this.#pending.length === 0) {
      const h = this.#onHalfClose;
      this.#onHalfClose = undefined;
      h?.();
    }
  }

  #sendHeaders(): void {
    if (this.#headersSent) return;
    this.#headersSent = true;
    this.stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'grpc-accept-encoding': ACCEPT_ENCODING_HEADER },
      { waitForTrailers: true },
    );
  }

  /**
   * Writes one message (uncompressed: Elkeid agents accept that). `cb` runs when the frame has been
   * handed to the session, or with an error if the stream went away. Returns false when the
   * stream's buffer is full (the caller should wait for 'drain').
   */
  write(payload: Uint8Array, cb?: (err?: Error | null) => void): boolean {
    if (this.#ended || this.stream.destroyed) {
      cb?.(new Error('call ended'));
      return false;
    }
    this.#sendHeaders();
    this.#opts.onSend?.();
    return this.stream.write(frameMessage(payload), cb);
  }

  /** Ends the call with a status; idempotent. */
  end(code: StatusCode, message = ''): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#end = { code, message, cancelled: false };
    if (this.#deadline) clearTimeout(this.#deadline);
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    const status: Record<string, string> = { 'grpc-status': String(code) };
    if (message) status['grpc-message'] = encodeGrpcMessage(message);
    // Whatever the client still sends is discarded instead of leaving the stream paused.
    if (!this.#readEnded) {
      stream.removeAllListeners('data');
      stream.resume();
    }
    if (!this.#headersSent) {
      // Trailers-only response: one HEADERS frame with END_STREAM.
      this.#headersSent = true;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...status }, { endStream: true });
      if (!this.#readEnded) this.#resetAfterStatus();
    } else {
      this.#trailers = status;
      stream.end();
    }
  }

  #resetAfterStatus(): void {
    const stream = this.stream;
    setImmediate(() => {
      if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_NO_ERROR);
    });
  }

  /**
   * Ends the call once every message already received has been handed to the handler (graceful
   * drain): nothing the client has sent and we have read is left unprocessed. A message cut in
   * the middle of its frame cannot be processed and is not acknowledged to anyone.
   */
  endAfterPending(code: StatusCode, message = ''): void {
    if (this.#ended || this.#closing) return;
    this.#closing = { code, message };
    if (!this.#busy && this.#pending.length === 0) this.end(code, message);
  }

  /** Ends the call from an error: GrpcError keeps its status, anything else is INTERNAL. */
  fail(err: unknown): void {
    if (err instanceof GrpcError) this.end(err.code, err.message);
    else this.end(Status.INTERNAL, 'internal error');
  }

  /** Runs once when the stream closes, with how the call ended. */
  onClose(listener: (end: CallEnd) => void): void {
    this.#closeListeners.push(listener);
  }

  #closed(): void {
    if (this.#deadline) clearTimeout(this.#deadline);
    if (!this.#ended) {
      this.#ended = true;
      this.#end = { code: Status.CANCELLED, message: 'client cancelled or connection lost', cancelled: true };
    }
    const end = this.#end!;
    for (const l of this.#closeListeners) l(end);
    this.#closeListeners = [];
  }
}

/**
 * grpc-timeout: TimeoutValue (at most 8 digits) then a unit (PROTOCOL-HTTP2.md). Returns ms,
 * undefined when absent, or throws INTERNAL when malformed.
 */
export function parseGrpcTimeout(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(String(header));
  if (!m) throw new GrpcError(Status.INTERNAL, `malformed grpc-timeout: ${String(header)}`);
  const n = Number(m[1]);
  const factor = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 }[m[2] as 'H'];
  return Math.max(0, Math.ceil(n * factor));
}
