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
  /** Messages the client sent that were not handed to the handler (after an error, or past the grace). */
  discarded: number;
}

/**
 * After a graceful status (drain, load shedding, replacement) the client may still have messages
 * in flight that it wrote before it saw the status: they are read and handled for this long, or
 * until the client half-closes, whichever comes first.
 */
export const READ_AFTER_STATUS_MS = 2000;
// (What arrived before the grace ends is handled even if that takes longer: see #readOn.)

export type MessageHandler = (message: Buffer) => void | Promise<void>;

export class ServerCall {
  readonly stream: ServerHttp2Stream;
  /** Of the request headers only the path is kept: a call lives as long as its agent is connected. */
  readonly method: string;
  readonly #opts: CallOptions;
  readonly #reader: MessageReader;
  #headersSent = false;
  #ended = false;
  #end: CallEnd | undefined;
  #pending: Array<{ compressed: boolean; payload: Buffer }> = [];
  #busy = false;
  #onBacklog: (() => void) | undefined;
  #readEnded = false;
  #onMessage: MessageHandler | undefined;
  #onHalfClose: (() => void) | undefined;
  #closeListeners: Array<(end: CallEnd) => void> = [];
  #deadline: NodeJS.Timeout | undefined;
  #trailers: Record<string, string> | undefined;
  #closing: { code: StatusCode; message: string; readOnMs: number } | undefined;
  /** After a graceful status: messages are still read and handled until this timer fires. */
  #readingOn: NodeJS.Timeout | undefined;
  /** Set when received messages are no longer handled (error end, grace over): counted, dropped. */
  #discarding = false;
  #discarded = 0;
  /** A message cut off by the end of the stream (not handled; reported after the complete ones). */
  #truncated: unknown;
  /** The stream closed; listeners hear of it once every message received has been handled too. */
  #streamClosed = false;
  #closeEmitted = false;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, opts: CallOptions) {
    this.stream = stream;
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
      // NO_ERROR, RFC 9113 §8.1); earlier, the reset would overtake the status. After a graceful
      // status the client gets its grace first (#readOn).
      if (!this.#readEnded && this.#readingOn === undefined) this.#resetAfterStatus();
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
    this.stream.on('data', this.#onData);
    this.stream.on('end', () => {
      if (this.#readEnded) return; // already taken by #takeBuffered
      if (this.#readingOn) clearTimeout(this.#readingOn);
      this.#finishReading();
    });
  }

  /**
   * `listener` runs when the handler takes a message (returning a promise) while the client has
   * already sent more behind it: a complete message queued, part of one, or bytes in the stream's
   * buffer. Such a client writes faster than the handler settles; a sink that holds writes to
   * batch them across clients should not hold this one (IngestSink.hurry).
   */
  onBacklog(listener: () => void): void {
    this.#onBacklog = listener;
  }

  /** Bytes received on the stream: complete messages are queued in order (or counted when discarding). */
  readonly #onData = (chunk: Buffer): void => {
    try {
      for (const m of this.#reader.push(chunk)) {
        if (this.#discarding) this.#discarded++;
        else this.#pending.push(m);
      }
    } catch (err) {
      this.#stopHandling();
      this.fail(err);
      return;
    }
    this.#drain();
  };

  #drain(): void {
    while (!this.#busy && !this.#discarding && this.#pending.length > 0) {
      const framed = this.#pending.shift()!;
      let result: void | Promise<void>;
      try {
        const message = framed.compressed
          ? decompress(this.#opts.encoding, framed.payload, this.#opts.maxMessageBytes)
          : framed.payload;
        result = this.#onMessage!(message);
      } catch (err) {
        this.#stopHandling();
        this.fail(err);
        return;
      }
      if (result instanceof Promise) {
        this.#busy = true;
        this.stream.pause();
        if (this.#pending.length > 0 || !this.#reader.idle || this.stream.readableLength > 0)
          this.#onBacklog?.();
        result.then(
          () => {
            this.#busy = false;
            // After the stream closed, what it delivered before is still handled.
            if (!this.#discarding && !this.stream.destroyed) this.stream.resume();
            this.#drain();
          },
          (err: unknown) => {
            this.#busy = false;
            this.#discarded++; // the message the handler failed to take is not stored either
            this.#stopHandling();
            this.fail(err);
            this.#maybeEmitClose();
          },
        );
        return;
      }
    }
    this.#maybeEmitClose();
    if (this.#closing && !this.#busy && !this.#ended && this.#pending.length === 0 && this.#reader.idle) {
      this.#finish(this.#closing.code, this.#closing.message, this.#closing.readOnMs);
      return;
    }
    if (!this.#busy && !this.#discarding && this.#readEnded && this.#pending.length === 0) {
      if (this.#truncated !== undefined) {
        this.fail(this.#truncated);
        return;
      }
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

  /** Ends the call with a status; idempotent. What the client still sends is discarded. */
  end(code: StatusCode, message = ''): void {
    this.#finish(code, message, 0);
  }

  /**
   * Sends the status; with `readOnMs` > 0, messages the client sent before it saw the status are
   * still read and handled until it half-closes or `readOnMs` passes (then RST_STREAM NO_ERROR).
   */
  #finish(code: StatusCode, message: string, readOnMs: number): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#end = { code, message, cancelled: false, discarded: 0 };
    if (this.#deadline) clearTimeout(this.#deadline);
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    const status: Record<string, string> = { 'grpc-status': String(code) };
    if (message) status['grpc-message'] = encodeGrpcMessage(message);
    if (!this.#readEnded) {
      if (readOnMs > 0 && this.#onMessage) this.#readOn(readOnMs);
      else this.#stopHandling();
    }
    if (!this.#headersSent) {
      // Trailers-only response: one HEADERS frame with END_STREAM.
      this.#headersSent = true;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...status }, { endStream: true });
      if (!this.#readEnded && this.#readingOn === undefined) this.#resetAfterStatus();
    } else {
      this.#trailers = status;
      stream.end();
    }
  }

  /**
   * Keeps reading after the status until the client half-closes or the grace ends; then the
   * client is told to stop (RST_STREAM NO_ERROR). Everything received until then — including
   * what waits in the stream's buffer while the sink is slow — is still handled, in order: the
   * receive window bounds it.
   */
  #readOn(ms: number): void {
    this.#readingOn = setTimeout(() => this.#resetAfterStatus(), ms);
    this.#readingOn.unref();
  }

  #resetAfterStatus(): void {
    const stream = this.stream;
    setImmediate(() => {
      if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_NO_ERROR);
    });
  }

  /**
   * From now on received messages are counted as discarded instead of handled, and the stream
   * keeps flowing so it can close. A message being handled finishes.
   */
  #stopHandling(): void {
    if (this.#discarding) return;
    this.#discarding = true;
    this.#discarded += this.#pending.length;
    this.#pending = [];
    if (!this.stream.destroyed) this.stream.resume();
  }

  /**
   * Ends the call once every message already received has been handed to the handler (graceful
   * drain): nothing the client has sent and we have read is left unprocessed. A message cut in
   * the middle of its frame cannot be processed and is not acknowledged to anyone.
   */
  endAfterPending(code: StatusCode, message = '', readOnMs = READ_AFTER_STATUS_MS): void {
    if (this.#ended || this.#closing) return;
    this.#closing = { code, message, readOnMs };
    if (!this.#busy && this.#pending.length === 0) this.#finish(code, message, readOnMs);
  }

  /**
   * Gives up on the messages received and not yet handled (a drain whose grace ended while the
   * sink still held this call back): they are counted as discarded, so the close listeners report
   * them, instead of vanishing with the process. A message being handled finishes.
   */
  abandon(): void {
    this.#stopHandling();
    this.#maybeEmitClose();
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
    if (this.#readingOn) clearTimeout(this.#readingOn);
    if (!this.#ended) {
      this.#ended = true;
      this.#end = {
        code: Status.CANCELLED,
        message: 'client cancelled or connection lost',
        cancelled: true,
        discarded: 0,
      };
    }
    this.#takeBuffered();
    this.#streamClosed = true;
    this.#maybeEmitClose();
  }

  /**
   * A stream can be destroyed with data still in its read buffer: the agent's connection closed
   * (after a GOAWAY, once its last stream ended) while this call was paused on a slow sink. That
   * data arrived before the close and is handled like the rest, or counted when discarding. It
   * is taken from read() itself: once 'close' has been emitted, a Readable's read() still returns
   * what is buffered but no longer emits 'data', so a read() loop alone dropped it silently.
   */
  #takeBuffered(): void {
    if (!this.#onMessage || this.#readEnded) return;
    this.stream.off('data', this.#onData);
    for (let chunk = this.stream.read(); chunk !== null; chunk = this.stream.read()) this.#onData(chunk);
    this.#finishReading();
  }

  /** No more bytes will come: the last complete messages are handled, a cut-off one counted. */
  #finishReading(): void {
    this.#readEnded = true;
    try {
      this.#reader.finish();
    } catch (err) {
      // A cut-off last message (e.g. the client reset its stream mid-write after our status):
      // the complete messages before it are still handled; the error comes after them.
      this.#truncated = err;
      this.#discarded++;
    }
    this.#drain();
  }

  /**
   * Tells the close listeners once the stream has closed and every message it delivered has been
   * handled (or discarded): a drain that waits for the listeners waits for the records too.
   */
  #maybeEmitClose(): void {
    if (!this.#streamClosed || this.#closeEmitted || this.#busy) return;
    if (this.#pending.length > 0 && !this.#discarding) return;
    this.#closeEmitted = true;
    const end = { ...this.#end!, discarded: this.#discarded + this.#pending.length };
    this.#pending = [];
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
