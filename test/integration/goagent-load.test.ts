/**
 * The Go load client of the benchmarks (loadtest/goagent `goagent load`, driven through
 * loadtest/bench/go-load.ts) against the real gateway over mTLS: every record it reports sent
 * arrives, each data record carries its send stamp (CLOCK_MONOTONIC µs, message seq, index:
 * loadtest/bench/stamp.ts) numbered without gaps per agent, each agent's first message holds one
 * heartbeat, and every stream ends with status OK after the half-close.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { startGoLoad } from '../../loadtest/bench/go-load.js';
import { monotonicUs, readStamp } from '../../loadtest/bench/stamp.js';
import { startTestGateway, type TestGateway, tempDir, waitFor } from '../helpers/gateway.js';

function pkiDirFor(t: TestContext, g: TestGateway): string {
  const dir = tempDir(t, 'fg-goload-');
  writeFileSync(path.join(dir, 'ca.crt'), g.tls.ca);
  writeFileSync(path.join(dir, 'client.crt'), g.tls.cert);
  writeFileSync(path.join(dir, 'client.key'), g.tls.key, { mode: 0o600 });
  return dir;
}

/** Per AgentID: heartbeats, and the (seq, index) stamps of its data records. */
function received(g: TestGateway) {
  const byAgent = new Map<string, { heartbeats: number; stamps: Set<string>; maxSeq: number }>();
  let records = 0;
  const nowUs = monotonicUs();
  for (const b of g.sink.batches) {
    const a = byAgent.get(b.agentId) ?? { heartbeats: 0, stamps: new Set<string>(), maxSeq: -1 };
    byAgent.set(b.agentId, a);
    for (const r of b.raw.Data) {
      records++;
      if (r.DataType === 1000) {
        a.heartbeats++;
        continue;
      }
      const stamp = readStamp(Buffer.from(r.Body!));
      assert.ok(stamp, 'every data record is stamped');
      assert.ok(stamp.us <= nowUs && nowUs - stamp.us < 120e6, 'the stamp is this machine’s monotonic clock');
      a.stamps.add(`${stamp.seq}:${stamp.index}`);
      a.maxSeq = Math.max(a.maxSeq, stamp.seq);
    }
  }
  return { byAgent, records };
}

test('goagent load, paced: every record sent arrives, numbered per agent without gaps, streams end OK', async (t) => {
  const g = await startTestGateway(t);
  const load = await startGoLoad({
    pkiDir: pkiDirFor(t, g),
    target: g.address,
    mode: 'paced',
    agents: 3,
    records: 5,
    recordBytes: 300,
    intervalMs: 50,
    compression: 'snappy',
  });
  t.after(() => load.kill());
  assert.equal(load.ready.connected, 3);
  assert.ok(load.ready.body_bytes_per_record >= 300);
  await waitFor(() => g.sink.records >= 3 * (1 + 5 * 5), 15_000, 'five messages per agent');
  const done = await load.stop();
  assert.deepEqual(done.statuses, { '0': 3 });
  assert.equal(done.records_confirmed, done.records_sent);
  const { byAgent, records } = received(g);
  assert.equal(records, done.records_sent);
  assert.equal(byAgent.size, 3);
  for (const [id, a] of byAgent) {
    assert.equal(a.heartbeats, 1, `${id}: one heartbeat`);
    assert.equal(a.stamps.size, (a.maxSeq + 1) * 5, `${id}: seq 0..${a.maxSeq} × 5 records, no gap`);
  }
});

test('goagent load, saturated and idle: closed-loop records all arrive; idle agents register and hold', async (t) => {
  const g = await startTestGateway(t);
  const pkiDir = pkiDirFor(t, g);
  const common = { pkiDir, target: g.address, records: 20, recordBytes: 600, intervalMs: 100 } as const;
  const sat = await startGoLoad({ ...common, mode: 'saturated', agents: 2, compression: 'snappy' });
  t.after(() => sat.kill());
  await waitFor(() => g.sink.records >= 2000, 20_000, '2000 records');
  const done = await sat.stop();
  assert.deepEqual(done.statuses, { '0': 2 });
  assert.equal(received(g).records, done.records_sent);

  const before = g.sink.records;
  const idle = await startGoLoad({ ...common, mode: 'idle', agents: 4, compression: 'none', indexBase: 10 });
  t.after(() => idle.kill());
  await waitFor(() => g.sink.records >= before + 4, 15_000, "4 idle agents' first messages");
  await new Promise((r) => setTimeout(r, 500));
  const end = await idle.stop();
  assert.equal(end.records_sent, 4, 'one heartbeat each, nothing else');
  assert.deepEqual(end.statuses, { '0': 4 });
  assert.equal(g.sink.records - before, 4, 'idle agents sent nothing after their first message');
});
