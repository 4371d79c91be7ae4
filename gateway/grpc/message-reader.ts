import { GrpcError, Status } from './status.js';

/** One gRPC message as it arrived: the compressed flag and the (possibly compressed) payload. */
export interface FramedMessage {
  compressed: boolean;
  payload: Buffer;
}

/** 1 byte compressed flag + 4 bytes big-endian length (PROTOCOL-HTTP2.md "Length-Prefixed-Message"). */
export const PREFIX_BYTES = 5;

/**
 * Incremental reader of length-prefixed gRPC messages from HTTP/2 DATA chunks.
 *
 * The declared length is checked against `maxMessageBytes` as soon as the 5-byte prefix is
 * complete, before a byte of the body is buffered, so a hostile prefix cannot make us allocate.
 * Body chunks are collected as slices and joined once, so a message arriving in many small frames
 * costs one copy.
 */
export class MessageReader {
  readonly #max: number;
  readonly #prefix = Buffer.alloc(PREFIX_BYTES);
  #prefixFill = 0;
  #compressed = false;
  #remaining = -1; // body bytes still expected; -1 while reading a prefix
  #parts: Buffer[] = [];
  #partsLength = 0;

  constructor(maxMessageBytes: number) {
    this.#max = maxMessageBytes;
  }

  /** True when no partial message is buffered (a clean end of stream is allowed here). */
  get idle(): boolean {
    return this.#prefixFill === 0 && this.#remaining === -1;
  }

  /** Feeds one chunk; returns every message completed by it. Throws GrpcError on a bad prefix. */
  push(chunk: Buffer): FramedMessage[] {
    const out: FramedMessage[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#remaining === -1) {
        const take = Math.min(PREFIX_BYTES - this.#prefixFill, chunk.length - offset);
        chunk.copy(this.#prefix, this.#prefixFill, offset, offset + take);
        this.#prefixFill += take;
        offset += take;
        if (this.#prefixFill < PREFIX_BYTES) break;
        const flag = this.#prefix[0]!;
        if (flag > 1) {
          throw new GrpcError(Status.INTERNAL, `invalid compressed flag ${flag} in message prefix`);
        }
        const length = this.#prefix.readUInt32BE(1);
        if (length > this.#max) {
          throw new GrpcError(
            Status.RESOURCE_EXHAUSTED,
            `received message larger than max (${length} vs. ${this.#max})`,
          );
        }
        this.#compressed = flag === 1;
        this.#prefixFill = 0;
        this.#remaining = length;
        if (length === 0) {
          out.push({ compressed: this.#compressed, payload: Buffer.alloc(0) });
          this.#remaining = -1;
        }
        continue;
      }
      const take = Math.min(this.#remaining, chunk.length - offset);
      this.#parts.push(chunk.subarray(offset, offset + take));
      this.#partsLength += take;
      this.#remaining -= take;
      offset += take;
      if (this.#remaining === 0) {
        const payload =
          this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#partsLength);
        out.push({ compressed: this.#compressed, payload });
        this.#parts = [];
        this.#partsLength = 0;
        this.#remaining = -1;
      }
    }
    return out;
  }

  /** Called at END_STREAM: a partial message means the peer truncated it. */
  finish(): void {
    if (!this.idle) throw new GrpcError(Status.INTERNAL, 'stream ended inside a message (truncated frame)');
  }
}

/** Encodes one message with its 5-byte prefix (uncompressed unless told otherwise). */
export function frameMessage(payload: Uint8Array, compressed = false): Buffer {
  const out = Buffer.allocUnsafe(PREFIX_BYTES + payload.length);
  out[0] = compressed ? 1 : 0;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, PREFIX_BYTES);
  return out;
}
