/**
 * The disposable Kafka instances of infra/local/kafka-control.mjs: a second, real broker on its own
 * ports and state dir that a test can SIGKILL and restart. Records acknowledged with acks=-1 before
 * the crash must still be there after the restart (same storage, same cluster), producing must fail
 * while it is down and work again after. The run's test broker is never touched.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import {
  ensureKafka,
  findFreePortPair,
  kafkaStatus,
  killKafka,
  probeKafka,
  startKafka,
  stopKafka,
} from '../../infra/local/kafka-control.mjs';
import { SHORT_FETCH_WAIT_MS } from '../../loadtest/sim/verify-kafka.js';
import { BROKER, kafkaReady } from '../helpers/kafka.js';

const COUNT = 20;

async function clusterIdOf(broker: string): Promise<string> {
  const admin = client(broker).admin();
  await admin.connect();
  try {
    return (await admin.describeCluster()).clusterId;
  } finally {
    await admin.disconnect();
  }
}
const quiet = () => {};

function client(broker: string) {
  return new Kafka({
    clientId: `kafka-control-test-${randomBytes(3).toString('hex')}`,
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 5000,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
  });
}

async function totalRecords(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}

async function clusterId(kafka: Kafka): Promise<string> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.describeCluster()).clusterId;
  } finally {
    await admin.disconnect();
  }
}

/** Reads the topic from the beginning with a new group until `count` values arrived (or 30 s passed). */
async function consumeValues(kafka: Kafka, topic: string, count: number): Promise<string[]> {
  const consumer = kafka.consumer({
    groupId: `g-${randomBytes(4).toString('hex')}`,
    maxWaitTimeInMs: SHORT_FETCH_WAIT_MS,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const values: string[] = [];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 30_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          values.push(String(message.value));
          if (values.length >= count) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    return values;
  } finally {
    await consumer.disconnect();
  }
}

test('a disposable Kafka instance keeps acknowledged records across SIGKILL and restart', {
  timeout: 90_000,
}, async (t) => {
  // The run's test broker (helpers/kafka.ts): never stopped or restarted by this test.
  await kafkaReady();
  const sharedCluster = await clusterIdOf(BROKER);

  const port: number = await findFreePortPair();
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'fleetgate-kafka-instance-'));
  const instance = { port, stateDir };
  const broker = `127.0.0.1:${port}`;
  let producer: Producer | undefined;
  t.after(async () => {
    await producer?.disconnect().catch(() => {});
    await killKafka(instance, 'SIGKILL').catch(() => {}); // no-op once stopKafka ran
    await rm(stateDir, { recursive: true, force: true });
  });

  let t0 = Date.now();
  const first = await ensureKafka({ log: quiet }, instance);
  t.diagnostic(`first start (format + start) on ${broker}: ${Date.now() - t0} ms`);
  assert.deepEqual(first.brokers, [broker]);
  assert.equal(first.started, true);
  assert.equal(typeof first.pid, 'number');
  assert.notEqual(first.brokers[0], BROKER);

  const kafka = client(broker);
  const cluster = await clusterId(kafka);
  const topic = `kafka-control-${randomBytes(4).toString('hex')}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [{ topic, numPartitions: 4, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  await admin.disconnect();

  producer = kafka.producer({ retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 } });
  await producer.connect();
  const sent = Array.from({ length: COUNT }, (_, i) => `record-${i}`);
  for (let i = 0; i < COUNT; i += 5) {
    await producer.send({
      topic,
      acks: -1,
      messages: sent.slice(i, i + 5).map((value, j) => ({ key: `k${i + j}`, value })),
    });
  }
  assert.equal(await totalRecords(kafka, topic), COUNT);

  // Crash.
  t0 = Date.now();
  const killed = await killKafka(instance, 'SIGKILL');
  t.diagnostic(`SIGKILL until the ports are closed: ${Date.now() - t0} ms`);
  assert.equal(killed.killed, first.pid);
  assert.equal(await probeKafka({}, instance), 'closed');
  assert.equal((await kafkaStatus(instance)).pid, null);

  t0 = Date.now();
  await assert.rejects(producer.send({ topic, acks: -1, messages: [{ key: 'down', value: 'never-acked' }] }));
  const failMs = Date.now() - t0;
  t.diagnostic(`produce while down failed after ${failMs} ms`);
  assert.ok(failMs < 10_000, `producing while the broker is down took ${failMs} ms to fail`);

  // Restart on the same storage.
  t0 = Date.now();
  const again = await startKafka(instance, { log: quiet });
  t.diagnostic(`restart after SIGKILL: ${Date.now() - t0} ms`);
  assert.equal(again.started, true);
  assert.notEqual(again.pid, first.pid);
  assert.equal(await clusterId(kafka), cluster, 'the restarted broker must be the same cluster');

  const values = await consumeValues(kafka, topic, COUNT);
  assert.deepEqual([...values].sort(), [...sent].sort(), 'every record acknowledged before the crash');
  assert.equal(await totalRecords(kafka, topic), COUNT, 'nothing but the acknowledged records');

  await producer.send({ topic, acks: -1, messages: [{ key: 'after', value: 'after-restart' }] });
  assert.equal(await totalRecords(kafka, topic), COUNT + 1);
  await producer.disconnect();
  producer = undefined;

  // Clean stop (SIGTERM).
  t0 = Date.now();
  const stopped = await stopKafka({ log: quiet }, instance);
  t.diagnostic(`SIGTERM stop: ${Date.now() - t0} ms`);
  assert.equal(stopped.stopped, again.pid);
  assert.equal(await probeKafka({}, instance), 'closed');

  // The test broker served all along and is the same cluster.
  assert.equal(await clusterIdOf(BROKER), sharedCluster);
});
