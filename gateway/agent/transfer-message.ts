/**
 * One RawData of a Transfer stream: scanned, not decoded (the ingest workers decode the records,
 * raw-scan.ts), its header decoded only when it differs from the previous message's, counted
 * once per data type, its special records inspected, then handed to the ingest sink.
 * This is the hot path: no allocation per message beyond the sink's item.
 */

import type { Metrics } from '../../platform/obs/metrics.js';
import { grpc } from '../../proto/gen/elkeid.js';
import { GrpcError, Status } from '../grpc/status.js';
import type { IngestBatch } from '../ingest/sink.js';
import { decodeHeader, type RawScan, scanRawData } from './raw-scan.js';
import type { AgentSession } from './sessions.js';
import { isSpecialRecord } from './special-records.js';
import { TRANSFER_METHOD, type TransferContext, type TransferStream } from './transfer-context.js';
import { headerOf, identifyAgent } from './transfer-identify.js';

/** Data types with a label of their own in metrics; everything else is `other` (bounded labels). */
const KNOWN_DATA_TYPES = new Set([1000, 1001, 1010, 1011, 2001, 2003, 5100, 5101, 6000, 8010]);

/** One counter update per data type per message, not per record (prom-client labels cost). */
function countRecords(metrics: Metrics, dataTypes: readonly number[]): void {
  let other = 0;
  let known: Map<number, number> | undefined;
  for (const dt of dataTypes) {
    if (!KNOWN_DATA_TYPES.has(dt)) {
      other++;
      continue;
    }
    known ??= new Map();
    known.set(dt, (known.get(dt) ?? 0) + 1);
  }
  if (other > 0) metrics.recordsIn.inc({ data_type: 'other' }, other);
  if (known) for (const [dt, n] of known) metrics.recordsIn.inc({ data_type: String(dt) }, n);
}

function unmarshalError(metrics: Metrics, err: unknown): GrpcError {
  metrics.agentRefusals.inc({ reason: 'bad_protobuf' });
  return new GrpcError(Status.INTERNAL, 'grpc: failed to unmarshal the received message', { cause: err });
}

/** Reads one message of `stream`; a promise when the sink applies backpressure. */
export function handleTransferMessage(
  ctx: TransferContext,
  stream: TransferStream,
  message: Buffer,
): void | Promise<void> {
  const { metrics } = ctx;
  let scan: RawScan;
  let header: grpc.RawData | undefined;
  try {
    scan = scanRawData(message, isSpecialRecord);
    if (stream.lastHeader === undefined || !scan.header.equals(stream.lastHeader)) {
      header = decodeHeader(scan.header);
      stream.lastHeader = Buffer.from(scan.header);
    }
  } catch (err) {
    throw unmarshalError(metrics, err);
  }
  metrics.grpcMessagesIn.inc({ method: TRANSFER_METHOD });
  metrics.grpcBytesIn.inc({ method: TRANSFER_METHOD }, message.length);
  const now = Date.now();
  // The first message always has its header decoded (lastHeader was unset).
  if (!stream.session) stream.session = identifyAgent(ctx, stream, header!, now);
  else if (header && (header.Hostname || header.Version)) stream.session.header = headerOf(header);
  const session = stream.session;
  session.lastMessageAt = now;
  countRecords(metrics, scan.dataTypes);
  ctx.inspect(session, scan.special, now);
  session.records += scan.count;
  return writeToSink(ctx, session, message, scan.count, now);
}

/**
 * A message as the sink gets it. A class, not an object literal with a `raw` getter: a literal
 * with an accessor costs ~0.7 µs to create against ~25 ns (Node 24), once per message.
 */
class TransferBatch implements IngestBatch {
  #decoded: grpc.RawData | undefined;

  constructor(
    readonly agentId: string,
    readonly peer: string,
    readonly receivedAt: number,
    readonly message: Buffer,
    readonly records: number,
  ) {}

  /** Decoded on first access: the Kafka pipeline never asks, test sinks do. */
  get raw(): grpc.RawData {
    this.#decoded ??= grpc.RawData.decode(this.message);
    return this.#decoded;
  }
}

function writeToSink(
  ctx: TransferContext,
  session: AgentSession,
  message: Buffer,
  records: number,
  now: number,
): void | Promise<void> {
  const { metrics } = ctx;
  const started = performance.now();
  const accepted = ctx.sink.write(new TransferBatch(session.agentId, session.peer, now, message, records));
  if (accepted instanceof Promise) {
    return accepted.then(
      () => metrics.sinkWriteSeconds.observe((performance.now() - started) / 1000),
      (err: unknown) => {
        // The stream ends with INTERNAL; this message is counted as discarded with the rest.
        ctx.log.error({ agentId: session.agentId, records, err }, 'the sink failed to take records');
        throw err;
      },
    );
  }
  metrics.sinkWriteSeconds.observe((performance.now() - started) / 1000);
}
