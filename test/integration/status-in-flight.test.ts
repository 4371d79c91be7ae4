/**
 * Records in flight when the gateway ends a stream gracefully: an agent keeps
 * writing until it sees the status, so some of its records reach the gateway after the status
 * went out. Each record whose bytes the agent had handed to its socket before it saw the status
 * (its write callback ran) must be stored: on SIGTERM (real process, real Kafka), on newest-wins
 * replacement and on an operator's or the load shedder's close. As grpc-go does, the agent resets
 * its stream (NO_ERROR) as soon as it has the status.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeItem } from '../../gateway/agent/item.js';
import { Status } from '../../gateway/grpc/status.js';
import { connectAgent, openTransfer, type TransferStream } from '../../loadtest/agent/raw-agent.js';
import { numberBody } from '../../loadtest/sim/sequence.js';
import { verifyTopic } from '../../loadtest/sim/verify-kafka.js';
import { grpc } from '../../proto/gen/elkeid.js';
import { startTestGateway, waitFor } from '../helpers/gateway.js';
import { BROKER, startKafkaGateway } from '../helpers/kafka.js';

const RUN = 'in-flight';
const PAD = encodeItem({ pad: 'x'.repeat(200) });

/**
 * Writes numbered records as fast as the stream takes them until the status arrives; resolves
 * with the status and the highest number whose write had completed before it.
 */
async function streamUntilStatus(
  s: TransferStream,
  agentId: string,
  progress: { completed: number } = { completed: 0 },
): Promise<{ code: number; completedBeforeStatus: number; written: number }> {
  let seq = 0;
  let completed = 0;
  let statusSeen = false;
  let completedAtStatus = -1;
  const status = s.status.then((st) => {
    statusSeen = true;
    completedAtStatus = completed;
    return st;
  });
  while (!statusSeen) {
    const n = ++seq;
    const raw = grpc.RawData.encode({
      AgentID: agentId,
      Data: [{ DataType: 59, Timestamp: n, Body: numberBody(PAD, RUN, n) }],
    }).finish();
    const frame = Buffer.alloc(5 + raw.length);
    frame.writeUInt32BE(raw.length, 1);
    frame.set(raw, 5);
    const more = s.stream.write(frame, (err) => {
      if (!err && !statusSeen) completed = Math.max(completed, n);
      progress.completed = completed;
    });
    // Keep a little ahead of the socket, not megabytes: yield to let the status in.
    if (!more) await new Promise((r) => setTimeout(r, 1));
    else if (n % 8 === 0) await new Promise((r) => setImmediate(r));
  }
  const st = await status;
  return { code: st.code, completedBeforeStatus: completedAtStatus, written: seq };
}

/** Sequence numbers of one agent the sink received. */
function storedOf(batches: Array<{ agentId: string; raw: grpc.RawData }>, agentId: string): Set<number> {
  const seen = new Set<number>();
  for (const b of batches) {
    if (b.agentId !== agentId) continue;
    for (const r of b.raw.Data) seen.add(Number(r.Timestamp));
  }
  return seen;
}

function assertAllUpTo(stored: Set<number>, upTo: number, what: string): void {
  const missing: number[] = [];
  for (let n = 1; n <= upTo; n++) if (!stored.has(n)) missing.push(n);
  assert.deepEqual(
    missing.slice(0, 10),
    [],
    `${what}: ${missing.length} of ${upTo} records written before the status are missing`,
  );
}

test('newest-wins replacement: every record the old stream wrote before its ABORTED is stored', async (t) => {
  const g = await startTestGateway(t);
  for (let round = 0; round < 3; round++) {
    const agentId = `replace-${round}`;
    const first = openTransfer(await connectAgent(g.address, g.tls));
    const writing = streamUntilStatus(first, agentId);
    await waitFor(() => g.gateway.sessions.get(agentId) !== undefined, 5000, 'first stream attached');
    await new Promise((r) => setTimeout(r, 100));
    const second = openTransfer(await connectAgent(g.address, g.tls));
    second.send({ AgentID: agentId, Data: [] });
    const r = await writing;
    assert.equal(r.code, Status.ABORTED);
    assert.ok(r.completedBeforeStatus > 0);
    await waitFor(() => first.stream.closed || first.stream.destroyed, 5000, 'old stream closed');
    await new Promise((res) => setTimeout(res, 300));
    assertAllUpTo(storedOf(g.sink.batches, agentId), r.completedBeforeStatus, `round ${round}`);
    t.diagnostic(`round ${round}: ${r.completedBeforeStatus} completed before ABORTED, ${r.written} written`);
    first.stream.session?.destroy();
    second.stream.session?.destroy();
  }
});

test('an operator close (and load shedding, the same path) stores what the agent wrote before the status', async (t) => {
  const g = await startTestGateway(t);
  const agentId = 'closed-by-operator';
  const s = openTransfer(await connectAgent(g.address, g.tls));
  const writing = streamUntilStatus(s, agentId);
  await waitFor(() => g.gateway.sessions.get(agentId) !== undefined, 5000, 'attached');
  await new Promise((r) => setTimeout(r, 100));
  g.gateway.sessions.get(agentId)!.close(Status.OK, 'connection limit lowered', { goaway: true });
  const r = await writing;
  assert.equal(r.code, Status.OK);
  await waitFor(() => s.stream.closed || s.stream.destroyed, 5000, 'closed');
  await new Promise((res) => setTimeout(res, 300));
  assertAllUpTo(storedOf(g.sink.batches, agentId), r.completedBeforeStatus, 'operator close');
  s.stream.session?.destroy();
});

test('SIGTERM of the gateway process: every record written before the agent saw UNAVAILABLE is in Kafka', {
  timeout: 120_000,
}, async (t) => {
  const gw = await startKafkaGateway(t);
  const { topic } = gw;
  const AGENTS = 6;
  const streams = await Promise.all(
    Array.from({ length: AGENTS }, async (_, i) => {
      const session = await connectAgent({ host: '127.0.0.1', port: gw.port }, gw.tls);
      t.after(() => session.destroy());
      const id = `sigterm-${i}`;
      const progress = { completed: 0 };
      return { id, progress, run: streamUntilStatus(openTransfer(session), id, progress) };
    }),
  );
  // Signalled while records flow (the gateway reads as fast as the agents write), not while
  // the first Kafka connection still holds the first message.
  await waitFor(() => streams.every((s) => s.progress.completed > 2000), 60_000, 'records flowing');
  const exited = new Promise<number | null>((resolve) => gw.child.once('exit', (c) => resolve(c)));
  const signalledAt = Date.now();
  gw.child.kill('SIGTERM');
  const results = await Promise.all(streams.map(async (s) => ({ id: s.id, ...(await s.run) })));
  assert.equal(await exited, 0, gw.output());
  t.diagnostic(`exited ${Date.now() - signalledAt} ms after SIGTERM`);
  for (const r of results) assert.equal(r.code, Status.UNAVAILABLE, `${r.id} told UNAVAILABLE`);

  const v = await verifyTopic({ brokers: [BROKER], topic, run: RUN, waitMs: 0 });
  // Per agent, the Timestamp carries the number too: read the topic's stored numbers per agent.
  const stored = new Map<string, Set<number>>();
  const { kafkaClient } = await import('../helpers/kafka.js');
  const consumer = kafkaClient().consumer({ groupId: `g-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let read = 0;
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        const mq = grpc.MQData.decode(message.value!);
        const set = stored.get(mq.AgentID) ?? new Set<number>();
        stored.set(mq.AgentID, set);
        set.add(Number(mq.AgentTime));
        if (++read === v.read) resolve();
      },
    });
  });
  await consumer.disconnect();
  for (const r of results) {
    assert.ok(r.completedBeforeStatus > 0, `${r.id} wrote records`);
    assertAllUpTo(stored.get(r.id) ?? new Set(), r.completedBeforeStatus, r.id);
  }
  const late = results.reduce((n, r) => n + Math.max(0, r.written - r.completedBeforeStatus), 0);
  t.diagnostic(
    `stored ${v.stored} (duplicated ${v.duplicated}); completed before the status ${results.map((r) => r.completedBeforeStatus).join(', ')}; written after ${late}`,
  );
  assert.equal(v.duplicated, 0);
  assert.ok(v.stored > 0, 'the numbered records were read back');
});
