/**
 * Admission of one HTTP/2 stream as a gRPC call: method, content-type, route by `:path`,
 * `grpc-encoding`, `grpc-timeout`; a refused stream gets a trailers-only answer, an admitted one
 * becomes a ServerCall handed to its handler.
 */
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { ACCEPT_ENCODING_HEADER, parseEncoding } from './codecs.js';
import { parseGrpcTimeout, ServerCall } from './server-call.js';
import type { GrpcServerContext } from './server-context.js';
import type { SessionInfo } from './session-info.js';
import { encodeGrpcMessage, type GrpcError, Status } from './status.js';

const { NGHTTP2_NO_ERROR } = http2.constants;

/** Checks the request headers of `stream` and starts its call, or answers it with an error. */
export function admitStream(
  context: GrpcServerContext,
  info: SessionInfo,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
): void {
  const { metrics, limits } = context;
  const path = String(headers[':path'] ?? '');
  if (headers[':method'] !== 'POST') {
    earlyReply(stream, 405, Status.UNIMPLEMENTED, 'gRPC requires POST');
    return;
  }
  const contentType = String(headers['content-type'] ?? '');
  if (!contentType.startsWith('application/grpc')) {
    // PROTOCOL-HTTP2.md: a non-gRPC content type gets HTTP 415.
    earlyReply(stream, 415, Status.INTERNAL, `invalid gRPC request content-type "${contentType}"`);
    return;
  }
  const handler = context.handlers.get(path);
  if (!handler) {
    metrics.grpcCalls.inc({ method: 'unknown', code: String(Status.UNIMPLEMENTED) });
    earlyReply(stream, 200, Status.UNIMPLEMENTED, `unknown method ${path}`);
    return;
  }
  const encodingHeader = headers['grpc-encoding'];
  const encoding = parseEncoding(typeof encodingHeader === 'string' ? encodingHeader : undefined);
  if (!encoding) {
    earlyReply(stream, 200, Status.UNIMPLEMENTED, `unsupported grpc-encoding "${String(encodingHeader)}"`);
    return;
  }
  let deadlineMs: number | undefined;
  try {
    deadlineMs = parseGrpcTimeout(headers['grpc-timeout']);
  } catch (err) {
    earlyReply(stream, 200, Status.INTERNAL, (err as GrpcError).message);
    return;
  }
  const call = new ServerCall(stream, headers, {
    maxMessageBytes: limits.maxMessageBytes,
    encoding,
    onSend: () => {
      info.resetPingStrikes = true;
    },
    ...(deadlineMs !== undefined ? { deadlineMs } : {}),
  });
  call.onClose((end) => metrics.grpcCalls.inc({ method: path, code: String(end.code) }));
  try {
    handler(call, info);
  } catch (err) {
    context.log.error({ err, method: path }, 'handler threw');
    call.fail(err);
  }
}

/** An error before any message: one HEADERS frame with END_STREAM (trailers-only). */
function earlyReply(stream: ServerHttp2Stream, httpStatus: number, code: number, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond(
    {
      ':status': httpStatus,
      'content-type': 'application/grpc',
      'grpc-status': String(code),
      'grpc-message': encodeGrpcMessage(message),
      'grpc-accept-encoding': ACCEPT_ENCODING_HEADER,
    },
    { endStream: true },
  );
  setImmediate(() => {
    if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_NO_ERROR);
  });
}
