/**
 * gRPC status codes and the error that carries one to the wire.
 * https://github.com/grpc/grpc/blob/master/doc/statuscodes.md
 */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type StatusCode = (typeof Status)[keyof typeof Status];

const names = new Map<number, string>(Object.entries(Status).map(([k, v]) => [v, k]));
export function statusName(code: number): string {
  return names.get(code) ?? `CODE_${code}`;
}

/** An error that ends a call with a specific status; `message` goes on the wire, `cause` only to logs. */
export class GrpcError extends Error {
  readonly code: StatusCode;
  constructor(code: StatusCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GrpcError';
    this.code = code;
  }
}

/**
 * Percent-encodes grpc-message as PROTOCOL-HTTP2.md requires: every byte outside
 * 0x20..0x7E, and '%' itself, becomes %XX of its UTF-8 encoding.
 */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    if (byte >= 0x20 && byte <= 0x7e && byte !== 0x25) out += String.fromCharCode(byte);
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Inverse of encodeGrpcMessage; a malformed escape is kept verbatim (clients must not fail on it). */
export function decodeGrpcMessage(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return encoded;
  }
}
