/**
 * A stream that ends while the sink is slow (a cold Kafka connection, a spool fsync): the agent's
 * records wait in the stream's read buffer, the agent sees the status and resets its stream, the
 * connection (already sent GOAWAY) closes, and node:http2 destroys the stream with those records
 * still buffered. They were read from the agent's socket, so each must reach the sink, or be
 * counted and logged as discarded: never dropped silently. (Before the fix they were dropped: once
 * a stream has emitted 'close', read() returns its buffer without emitting 'data'.)
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Status } from '../../gateway/grpc/status.js';
import type { IngestBatch, IngestSink } from '../../gateway/ingest/sink.js';
import {
  connectAgent,
  encodeAgentMessage,
  openTransfer,
  type TransferStream,
} from '../../loadtest/agent/raw-agent.js';
import { startTestGateway, waitFor } from '../helpers/gateway.js';
import { startHoldingRelay } from '../helpers/holding-relay.js';
import { metricValue } from '../helpers/metrics.js';

/**
 * A sink that holds each write until the test lets it through (a slow store, under the test's
 * control); with `failWrite`, that write (1-based) is refused when let through.
 */
class GatedSink implements IngestSink {
  readonly name = 'gated';
  /** Batches the sink took (their write resolved). */
  readonly batches: IngestBatch[] = [];
  /** Calls of hurry(): the gateway saw more from an agent behind a held write. */
  hurries = 0;
  #writes = 0;
  #open = false;
  #waiting: Array<() => void> = [];

  constructor(readonly failWrite?: number) {}

  get waiting(): number {
    return this.#waiting.length;
  }

  write(batch: IngestBatch): Promise<void> {
    const n = ++this.#writes;
    const settle = (resolve: () => void, reject: (e: Error) => void) => {
      if (n === this.failWrite) return reject(new Error('store refused the batch'));
      this.batches.push(batch);
      resolve();
    };
    return new Promise((resolve, reject) => {
      if (this.#open) settle(resolve, reject);
      else this.#waiting.push(() => settle(resolve, reject));
    });
  }

  hurry(): void {
    this.hurries++;
  }

  /** Lets the oldest held write through. */
  passOne(): void {
    this.#waiting.shift()?.();
  }

  /** Lets every held write and all later ones through. */
  open(): void {
    this.#open = true;
    for (const w of this.#waiting.splice(0)) w();
  }

  async flush(): Promise<void> {}
  async close(): Promise<void> {
    this.open();
  }
}

/** Numbers (record Timestamps) the sink took. */
function storedNumbers(sink: GatedSink): Set<number> {
  return new Set(sink.batches.flatMap((b) => b.raw.Data.map((r) => Number(r.Timestamp))));
}

/** Writes records 1..n, one message each, and resolves once every write reached the socket. */
async function writeNumbered(s: TransferStream, id: string, n: number): Promise<void> {
  let completed = 0;
  for (let seq = 1; seq <= n; seq++) {
    const message = encodeAgentMessage({
      AgentID: id,
      Data: [{ DataType: 59, Timestamp: seq, Body: randomBytes(240) }],
    });
    s.stream.write(message, (err) => {
      if (!err) completed++;
    });
  }
  await waitFor(() => completed === n, 10_000, 'all records written');
}

// 200 records of ~270 bytes: several HTTP/2 DATA frames (chunks of the stream), within the
// stream's 64 KiB receive window, so all are written before the gateway reads past the first.
const RECORDS = 200;

test('records buffered behind a slow sink when the stream is destroyed are all stored (none silently lost)', async (t) => {
  const sink = new GatedSink();
  const g = await startTestGateway(t, { sink });
  const id = 'slow-sink-end';
  const relay = await startHoldingRelay(t, g.address);
  const session = await connectAgent(relay.address, g.tls);
  t.after(() => session.destroy());
  const s = openTransfer(session);
  // Every record is written (handed to the socket) before the gateway ends the stream.
  await writeNumbered(s, id, RECORDS);
  await waitFor(() => sink.waiting === 1, 5000, 'the first record held by the sink');

  // Load control ends the stream (GOAWAY first); the status goes out once the held record is in.
  g.gateway.sessions.get(id)!.close(Status.OK, 'connection limit lowered', { goaway: true });
  sink.passOne();
  // The gateway reads on after its status: the next record is held by the sink again, the rest
  // waits in the stream's buffer while the agent sees the status and resets, and the connection
  // (no stream left after its GOAWAY) closes under the paused stream.
  const status = await s.status;
  assert.equal(status.code, Status.OK);
  relay.reset(); // the agent's connection goes away (it had its status)
  await waitFor(() => g.gateway.grpc.sessions.size === 0, 5000, 'the connection closed at the gateway');
  assert.equal(sink.waiting, 1, 'a later record is held by the sink');
  assert.ok(sink.batches.length < RECORDS, 'records still wait behind the sink');
  sink.open();
  await waitFor(() => g.gateway.sessions.get(id) === undefined, 5000, 'the call closed');

  const stored = storedNumbers(sink);
  const discarded = await metricValue(g.gateway.metrics.registry, 'fleetgate_grpc_messages_discarded_total');
  const missing = [...Array(RECORDS).keys()].map((i) => i + 1).filter((n) => !stored.has(n));
  assert.deepEqual(
    missing.slice(0, 10),
    [],
    `${missing.length} of ${RECORDS} records read from the agent are not stored (${discarded} counted as discarded)`,
  );
  assert.equal(discarded, 0);
});

test('a sink that refuses a batch: the stream ends INTERNAL and every record read is stored or counted as discarded', async (t) => {
  const sink = new GatedSink(3);
  const g = await startTestGateway(t, { sink });
  const id = 'sink-refuses';
  const session = await connectAgent(g.address, g.tls);
  t.after(() => session.destroy());
  const s = openTransfer(session);
  await writeNumbered(s, id, 20);
  await waitFor(() => sink.waiting === 1, 5000, 'the first record held by the sink');
  sink.open(); // 1 and 2 are taken, 3 is refused
  assert.equal((await s.status).code, Status.INTERNAL);
  await waitFor(() => g.gateway.sessions.get(id) === undefined, 5000, 'the call closed');
  const discarded = await metricValue(g.gateway.metrics.registry, 'fleetgate_grpc_messages_discarded_total');
  assert.deepEqual([...storedNumbers(sink)], [1, 2]);
  assert.equal(discarded, 18, 'the refused record and the 17 read after it are counted');
});

test('a drain whose grace ends while the sink holds a stream back counts what it gives up (and hands nothing to the sink after)', async (t) => {
  const sink = new GatedSink();
  const g = await startTestGateway(t, { sink });
  const id = 'drain-gives-up';
  const session = await connectAgent(g.address, g.tls);
  t.after(() => session.destroy());
  const s = openTransfer(session);
  await writeNumbered(s, id, 20);
  await waitFor(() => sink.waiting === 1, 5000, 'the first record held by the sink');
  await g.gateway.shutdown(300); // the sink takes nothing during the grace
  // The record the sink holds is its own (a flush waits for it); the 19 read behind it are given
  // up: counted, never handed to a sink that is being closed.
  sink.open();
  await waitFor(() => g.gateway.sessions.get(id) === undefined, 5000, 'the call closed');
  const discarded = await metricValue(g.gateway.metrics.registry, 'fleetgate_grpc_messages_discarded_total');
  assert.deepEqual([...storedNumbers(sink)], [1]);
  assert.equal(discarded, 19);
});

test('a call asks the sink to hurry when its client has sent more behind the message it hands over', async (t) => {
  const sink = new GatedSink();
  const g = await startTestGateway(t, { sink });
  const session = await connectAgent(g.address, g.tls);
  t.after(() => session.destroy());
  const s = openTransfer(session);
  const send = (seq: number) =>
    s.send({ AgentID: 'hurry', Data: [{ DataType: 59, Timestamp: seq, Body: randomBytes(64) }] });
  send(1);
  await waitFor(() => sink.waiting === 1, 5000, 'the first write held');
  assert.equal(sink.hurries, 0, 'nothing behind it: the sink may wait for other agents');
  send(2);
  send(3);
  await waitFor(() => g.gateway.grpc.sessions.size === 1, 5000, 'connected');
  // 2 and 3 wait at the gateway behind the held write; when 2 is handed over, 3 is behind it.
  await new Promise((r) => setTimeout(r, 500));
  sink.passOne();
  await waitFor(() => sink.waiting === 1, 5000, 'the second write held');
  assert.equal(sink.hurries, 1, 'the third message was behind the second');
  sink.passOne();
  await waitFor(() => sink.waiting === 1, 5000, 'the third write held');
  assert.equal(sink.hurries, 1, 'nothing behind the third');
  sink.open();
  await waitFor(() => storedNumbers(sink).size === 3, 5000, 'all three stored');
});
