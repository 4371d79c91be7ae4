/**
 * Records in flight when the gateway ends a stream gracefully: an agent keeps
 * writing until it sees the status, so some of its records reach the gateway after the status
 * went out. Each record whose bytes the agent had handed to its socket before it saw the status
 * (its write callback ran) must be stored: on SIGTERM (real process, real Kafka), on newest-wins
 * replacement and on an operator's or the load shedder's close. As grpc-go does, the agent resets
 * its stream (NO_ERROR) as soon as it has the status.
 *
 * Two kinds of agent: one that floods (its writes wait on HTTP/2 flow control), and paced ones
 * behind a return path held back while the stream ends (holding-relay.ts), so that they write for
 * a known while after the gateway's status and before they see it. A flooding agent alone cannot
 * show the loss on SIGTERM: its writes complete in large batches, and the records the gateway
 * received but dropped after its status were never counted as written before the status.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { encodeItem } from '../../gateway/agent/item.js';
import { createLoadShedder } from '../../gateway/agent/load-shedder.js';
import { Status } from '../../gateway/grpc/status.js';
import {
  type AgentTls,
  connectAgent,
  encodeAgentMessage,
  openTransfer,
  type TransferStream,
} from '../../loadtest/agent/raw-agent.js';
import { numberBody } from '../../loadtest/sim/sequence.js';
import { verifyTopic } from '../../loadtest/sim/verify-kafka.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { grpc } from '../../proto/gen/elkeid.js';
import { startFleetgateProcess, startTestGateway, waitFor } from '../helpers/gateway.js';
import { type HoldingRelay, startHoldingRelay } from '../helpers/holding-relay.js';
import { BROKER, consumeAll, createTopic, kafkaReady } from '../helpers/kafka.js';
import { metricValue } from '../helpers/metrics.js';

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

// ---------------------------------------------------------------------------------------------
// Agents that write at a steady pace, as a stock agent does (it never waits for the gateway),
// behind a return path that is held for HOLD_MS when the stream is ended: the agent goes on
// writing for that long without seeing the status, like an agent on a slow or distant link (the
// issue's losses were records written 3-42 ms after the signal). Records the gateway receives
// after it sent the status are exactly the ones a gateway that stops reading at its status loses.

const HOLD_MS = 300;
const PACE_MS = 2;

interface PacedAgent {
  id: string;
  /** Highest number whose write had completed (handed to the socket) so far. */
  completed(): number;
  /** Resolves once the agent saw the status. */
  result: Promise<{ code: number; completedBeforeStatus: number; written: number }>;
}

/** One agent writing a numbered record every PACE_MS until it sees the status. */
async function pacedAgent(
  address: { host: string; port: number },
  tls: AgentTls,
  id: string,
  t: TestContext,
) {
  const session = await connectAgent(address, tls);
  t.after(() => session.destroy());
  const s = openTransfer(session);
  let completed = 0;
  let statusSeen = false;
  const result = (async () => {
    let completedAtStatus = -1;
    const status = s.status.then((st) => {
      statusSeen = true;
      completedAtStatus = completed;
      return st;
    });
    let n = 0;
    while (!statusSeen && !s.stream.destroyed) {
      const seq = ++n;
      const frame = encodeAgentMessage({
        AgentID: id,
        Data: [{ DataType: 59, Timestamp: seq, Body: numberBody(PAD, RUN, seq) }],
      });
      s.stream.write(frame, (err) => {
        if (!err && !statusSeen) completed = Math.max(completed, seq);
      });
      await new Promise((r) => setTimeout(r, PACE_MS));
    }
    const st = await status;
    return { code: st.code, completedBeforeStatus: completedAtStatus, written: n };
  })();
  return { id, completed: () => completed, result } satisfies PacedAgent;
}

/**
 * Holds the return path, ends streams with `end` (which returns the ids of the agents it ended),
 * and releases the return path HOLD_MS later; resolves with how each ended agent saw its end.
 */
async function endWhileHeld(
  relay: HoldingRelay,
  agents: PacedAgent[],
  end: () => string[],
): Promise<Array<{ id: string; code: number; completedBeforeStatus: number; writtenAfterEnd: number }>> {
  relay.hold();
  const atEnd = new Map(agents.map((a) => [a.id, a.completed()]));
  const ended = new Set(end());
  await new Promise((r) => setTimeout(r, HOLD_MS));
  relay.release();
  return Promise.all(
    agents
      .filter((a) => ended.has(a.id))
      .map(async (a) => {
        const r = await a.result;
        return {
          id: a.id,
          code: r.code,
          completedBeforeStatus: r.completedBeforeStatus,
          writtenAfterEnd: r.completedBeforeStatus - atEnd.get(a.id)!,
        };
      }),
  );
}

test('load shedding (the real shedder) with a slow return path: what agents wrote before they saw the status is stored', async (t) => {
  const g = await startTestGateway(t);
  const relay = await startHoldingRelay(t, g.address);
  const agents = await Promise.all(
    Array.from({ length: 4 }, (_, i) => pacedAgent(relay.address, g.tls, `shed-${i}`, t)),
  );
  await waitFor(() => g.gateway.sessions.size === 4, 5000, 'four agents attached');
  await waitFor(() => agents.every((a) => a.completed() > 50), 10_000, 'records flowing');
  let clock = 0;
  let limit: number | undefined;
  const shedIds: string[] = [];
  const shedder = createLoadShedder({
    sessions: g.gateway.sessions,
    desiredLimit: () => limit,
    ratePerSecond: 100,
    order: 'oldest',
    logger: silentLogger(),
    now: () => clock,
    onShed: (id) => shedIds.push(id),
  });
  shedder.tick();
  const results = await endWhileHeld(relay, agents, () => {
    limit = 1;
    clock += 1000; // a full bucket: the three excess streams go in this tick
    assert.equal(shedder.tick(), 3);
    return shedIds;
  });
  const shed = results.filter((r) => r.code === Status.OK);
  assert.equal(shed.length, 3, JSON.stringify(results));
  // The one stream left is ended by the test's teardown; the shed ones must have lost nothing.
  await waitFor(() => g.gateway.sessions.size === 1, 5000, 'shed streams closed');
  for (const r of shed) {
    assert.ok(r.writtenAfterEnd > 0, `${r.id} wrote while its status was held back`);
    assertAllUpTo(storedOf(g.sink.batches, r.id), r.completedBeforeStatus, r.id);
  }
  t.diagnostic(
    `records written after the shed, before the status was seen: ${shed.map((r) => r.writtenAfterEnd).join(', ')}`,
  );
  assert.equal(await metricValue(g.gateway.metrics.registry, 'fleetgate_grpc_messages_discarded_total'), 0);
});

test('newest-wins replacement with a slow return path: what the old stream wrote before it saw ABORTED is stored', async (t) => {
  const g = await startTestGateway(t);
  const relay = await startHoldingRelay(t, g.address);
  const old = await pacedAgent(relay.address, g.tls, 'replaced-slow', t);
  await waitFor(() => old.completed() > 50, 10_000, 'records flowing');
  const newer = openTransfer(await connectAgent(g.address, g.tls)); // not through the relay
  t.after(() => newer.stream.session?.destroy());
  const [r] = await endWhileHeld(relay, [old], () => {
    newer.send({ AgentID: 'replaced-slow', Data: [] });
    return [old.id];
  });
  assert.equal(r!.code, Status.ABORTED);
  assert.ok(r!.writtenAfterEnd > 0, 'the old stream wrote while its status was held back');
  await waitFor(() => g.gateway.sessions.get('replaced-slow') !== undefined, 5000, 'newer attached');
  await new Promise((res) => setTimeout(res, 300));
  assertAllUpTo(storedOf(g.sink.batches, 'replaced-slow'), r!.completedBeforeStatus, 'replaced');
  t.diagnostic(`written after the replacement, before ABORTED was seen: ${r!.writtenAfterEnd}`);
});

/** Every agent's stored numbers in `topic` (the record Timestamp carries the number). */
async function storedNumbers(
  topic: string,
): Promise<{ byAgent: Map<string, Set<number>>; duplicated: number }> {
  const v = await verifyTopic({ brokers: [BROKER], topic, run: RUN, waitMs: 0 });
  const byAgent = new Map<string, Set<number>>();
  for (const rec of await consumeAll(topic, v.read)) {
    const mq = grpc.MQData.decode(rec.value);
    const set = byAgent.get(mq.AgentID) ?? new Set<number>();
    byAgent.set(mq.AgentID, set);
    set.add(Number(mq.AgentTime));
  }
  return { byAgent, duplicated: v.duplicated };
}

test('SIGTERM of the gateway process: every record written before the agent saw UNAVAILABLE is in Kafka', {
  timeout: 120_000,
}, async (t) => {
  await kafkaReady();
  const topic = await createTopic(t);
  const gw = await startFleetgateProcess(t, 'gateway', {
    FLEETGATE_KAFKA_BROKERS: BROKER,
    FLEETGATE_KAFKA_TOPIC: topic,
  });
  const relay = await startHoldingRelay(t, { host: '127.0.0.1', port: gw.port });
  const agents = await Promise.all(
    Array.from({ length: 6 }, (_, i) => pacedAgent(relay.address, gw.tls, `sigterm-${i}`, t)),
  );
  // Signalled while records flow (past the first Kafka connection, which holds the first batch).
  await waitFor(() => agents.every((a) => a.completed() > 200), 60_000, 'records flowing');
  const exited = new Promise<number | null>((resolve) => gw.child.once('exit', (c) => resolve(c)));
  const signalledAt = Date.now();
  const results = await endWhileHeld(relay, agents, () => {
    gw.child.kill('SIGTERM');
    return agents.map((a) => a.id);
  });
  assert.equal(await exited, 0, gw.output());
  t.diagnostic(`exited ${Date.now() - signalledAt} ms after SIGTERM (return path held ${HOLD_MS} ms)`);
  for (const r of results) assert.equal(r.code, Status.UNAVAILABLE, `${r.id} told UNAVAILABLE`);

  const { byAgent, duplicated } = await storedNumbers(topic);
  for (const r of results) {
    assert.ok(r.writtenAfterEnd > 0, `${r.id} wrote after the signal, before it saw the status`);
    assertAllUpTo(byAgent.get(r.id) ?? new Set(), r.completedBeforeStatus, r.id);
  }
  t.diagnostic(
    `written after SIGTERM, before UNAVAILABLE was seen: ${results.map((r) => r.writtenAfterEnd).join(', ')}`,
  );
  assert.equal(duplicated, 0);
  assert.doesNotMatch(gw.output(), /were not stored/);
});
