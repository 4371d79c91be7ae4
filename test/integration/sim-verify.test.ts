/**
 * Numbered simulator records and reading them back: `fleetgate sim
 * --verify-kafka` through a real gateway process and a real broker counts every record sent as
 * stored once; `fleetgate sim verify` on a topic with a gap, a copy and a swap reports exactly those.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runSim } from '../../loadtest/sim/command.js';
import { numberBody } from '../../loadtest/sim/sequence.js';
import type { VerifyReport } from '../../loadtest/sim/verify-kafka.js';
import { grpc } from '../../proto/gen/elkeid.js';
import { captureErrors } from '../helpers/console.js';
import { BROKER, createTopic, kafkaClient, kafkaReady, startKafkaGateway } from '../helpers/kafka.js';

function tmp(t: import('node:test').TestContext): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fg-simv-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('fleetgate sim --verify-kafka: every record sent through a gateway is in the topic once, in order', {
  timeout: 120_000,
}, async (t) => {
  const gw = await startKafkaGateway(t);
  const { topic } = gw;
  const pki = tmp(t);
  writeFileSync(path.join(pki, 'ca.crt'), gw.tls.ca);
  writeFileSync(path.join(pki, 'client.crt'), gw.tls.cert);
  writeFileSync(path.join(pki, 'client.key'), gw.tls.key);
  const json = path.join(pki, 'report.json');
  const { value: code } = await captureErrors(() =>
    runSim([
      ...['--agents', '5', '--duration', '3', '--ramp', '0', '--rate', '40'],
      ...['--gateway', `127.0.0.1:${gw.port}`, '--pki', pki, '--json', json],
      ...['--verify-kafka', BROKER, '--verify-topic', topic, '--verify-wait', '30'],
    ]),
  );
  const report = JSON.parse(readFileSync(json, 'utf8')) as { recordsSent: number; verify: VerifyReport };
  const v = report.verify;
  assert.ok(report.recordsSent > 300, `records sent ${report.recordsSent}`);
  assert.equal(v.sent, report.recordsSent);
  assert.equal(v.agents, 5);
  assert.deepEqual(
    {
      stored: v.stored,
      distinct: v.distinct,
      missing: v.missing,
      duplicated: v.duplicated,
      outOfOrder: v.outOfOrder,
    },
    { stored: v.sent, distinct: v.sent, missing: 0, duplicated: 0, outOfOrder: 0 },
  );
  assert.equal(code, 0);
});

test('fleetgate sim verify counts a gap, a copy and a swap exactly, and ignores other runs', {
  timeout: 60_000,
}, async (t) => {
  await kafkaReady();
  const topic = await createTopic(t, 2);
  const producer = kafkaClient().producer();
  await producer.connect();
  const record = (agent: string, run: string, seq: number) => ({
    key: agent,
    value: Buffer.from(
      grpc.MQData.encode({ DataType: 59, AgentID: agent, Body: numberBody(undefined, run, seq) }).finish(),
    ),
  });
  // Agent a: 1 2 4 3 3 (of 6 sent): 5 and 6 missing, one copy of 3, 3 after 4 is out of order.
  // Agent b: 1 2 3, all there. Another run's records are not counted.
  await producer.send({
    topic,
    messages: [
      ...[1, 2, 4, 3, 3].map((n) => record('a', 'run-1', n)),
      ...[1, 2, 3].map((n) => record('b', 'run-1', n)),
      record('a', 'run-2', 5),
      { key: 'x', value: Buffer.from('not an MQData at all \xff') },
    ],
  });
  await producer.disconnect();
  const json = path.join(tmp(t), 'verify.json');
  const { value: code, lines } = await captureErrors(() =>
    runSimVerifyQuiet(['--kafka', BROKER, '--topic', topic, '--run', 'run-1', '--sent', '9', '--json', json]),
  );
  const r = JSON.parse(readFileSync(json, 'utf8')) as VerifyReport;
  assert.deepEqual(
    {
      sent: r.sent,
      stored: r.stored,
      distinct: r.distinct,
      missing: r.missing,
      duplicated: r.duplicated,
      outOfOrder: r.outOfOrder,
      agents: r.agents,
    },
    { sent: 9, stored: 8, distinct: 7, missing: 2, duplicated: 1, outOfOrder: 1, agents: 2 },
    lines.join('\n'),
  );
  assert.equal(r.read, 10);
  assert.equal(code, 1, 'a missing record is exit status 1');
  // Without --sent only gaps inside a sequence can be seen: none here (5, 6 were the tail).
  const { value: noSent } = await captureErrors(() =>
    runSimVerifyQuiet(['--kafka', BROKER, '--topic', topic, '--run', 'run-1', '--json', json]),
  );
  assert.equal(noSent, 0);
  assert.equal((JSON.parse(readFileSync(json, 'utf8')) as VerifyReport).missing, 0);
  // Bad arguments are refused with the usage.
  const { value: bad, lines: badLines } = await captureErrors(() => runSim(['verify', '--topic', topic]));
  assert.equal(bad, 2);
  assert.match(badLines.join('\n'), /--kafka is required/);
});

/** `fleetgate sim verify` with its JSON on stdout kept off the test output. */
async function runSimVerifyQuiet(args: string[]): Promise<number> {
  const log = console.log;
  console.log = () => {};
  try {
    return await runSim(['verify', ...args]);
  } finally {
    console.log = log;
  }
}
