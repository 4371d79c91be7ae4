/**
 * Where accepted agent records go. The gateway hands each decoded RawData message to a sink
 * and does not read the agent's stream further until the sink has accepted it (the returned
 * promise settles), so a slow sink pushes back through HTTP/2 flow control instead of growing
 * a queue or dropping. The Kafka/spool pipeline (pipeline.ts) implements this interface.
 */
import type { grpc } from '../../proto/gen/elkeid.js';

export interface IngestBatch {
  /** The AgentID that owns the stream (from its first message). */
  agentId: string;
  /** `ip:port` of the agent. */
  peer: string;
  /** Gateway receive time, ms since the epoch (SvrTime is derived from it). */
  receivedAt: number;
  /** The decompressed RawData message as the agent sent it (bodies are spliced from it, never re-encoded). */
  message: Buffer;
  /** The same message decoded (the gateway's batches decode it on first access). */
  readonly raw: grpc.RawData;
  /** Records in the message, when known without decoding it. */
  records?: number;
}

/** Whether a sink takes records now; not ready means discovery and load balancers should send no new agents. */
export interface SinkHealth {
  ready: boolean;
  /** Why not ready, or what is degraded, in words for /readyz. */
  reasons: string[];
}

export interface IngestSink {
  readonly name: string;
  /** Absent: always ready. */
  health?(): SinkHealth;
  /** Accepts one batch; a returned promise means "wait before reading more from this agent". */
  write(batch: IngestBatch): void | Promise<void>;
  /**
   * An agent has sent more behind a write that has not settled: a sink that holds writes to
   * batch them across agents sends what it holds now. Absent: the sink does not hold writes.
   */
  hurry?(): void;
  /** Resolves when everything accepted so far is durable or delivered. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
