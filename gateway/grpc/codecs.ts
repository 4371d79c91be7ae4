/**
 * Message decompression by `grpc-encoding`. Every codec bounds the decoded size, so the 10 MiB
 * limit holds after decompression as well as on the wire (docs/hardening.md §1, test 7).
 */
import { gunzipSync } from 'node:zlib';
import { decodeSnappyFrames } from './snappy-framing.js';
import { GrpcError, Status } from './status.js';

export type Encoding = 'identity' | 'gzip' | 'snappy';
export const SUPPORTED_ENCODINGS: readonly Encoding[] = ['identity', 'gzip', 'snappy'];
export const ACCEPT_ENCODING_HEADER = SUPPORTED_ENCODINGS.join(',');

export function parseEncoding(header: string | undefined): Encoding | undefined {
  if (header === undefined || header === '' || header === 'identity') return 'identity';
  if (header === 'gzip' || header === 'snappy') return header;
  return undefined;
}

export function decompress(encoding: Encoding, payload: Buffer, maxBytes: number): Buffer {
  switch (encoding) {
    case 'snappy':
      return decodeSnappyFrames(payload, maxBytes);
    case 'gzip':
      try {
        // maxOutputLength makes zlib stop (and throw RangeError) instead of inflating a bomb.
        return gunzipSync(payload, { maxOutputLength: maxBytes });
      } catch (err) {
        if (err instanceof RangeError || (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
          throw new GrpcError(
            Status.RESOURCE_EXHAUSTED,
            `received message after decompression larger than max (${maxBytes})`,
          );
        }
        throw new GrpcError(
          Status.INTERNAL,
          `grpc: failed to decompress the received message: ${(err as Error).message}`,
        );
      }
    case 'identity':
      // PROTOCOL-HTTP2.md: a compressed flag with identity (or no) encoding is a protocol error.
      throw new GrpcError(Status.INTERNAL, 'compressed flag set on a message without grpc-encoding');
  }
}
