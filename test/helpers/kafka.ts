/**
 * Real Kafka for tests: the broker of FLEETGATE_TEST_KAFKA (scripts/run-tests.mjs starts a
 * disposable one for the run when it is unset), or, for a test file run on its own, a disposable
 * broker of this process on a free port. Unique topics per test; consumes them back.
 */

import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { brokerFromEnv, kafkaFor } from '../../infra/local/disposable-kafka.mjs';
import { SHORT_FETCH_WAIT_MS } from '../../loadtest/sim/verify-kafka.js';
import { retryWithBackoff } from '../../platform/backoff.js';
import { registerCodecs } from '../../workers/kafka/codecs.js';
import { fixKafkajsIdleTimer } from '../../workers/kafka/kafkajs-request-queue.js';
import { startFleetgateProcess } from './gateway.js';

export const TEST_KAFKA_ENV = 'FLEETGATE_TEST_KAFKA';

/** The test broker's host:port; final once kafkaReady() resolved (a live binding). */
export let BROKER = brokerFromEnv(TEST_KAFKA_ENV) ?? '127.0.0.1:0';

// The consumers below must read what the gateway produced with any codec.
registerCodecs();

let ready: Promise<void> | undefined;

/** Makes sure the test broker serves and BROKER names it. */
export function kafkaReady(): Promise<void> {
  ready ??= (async () => {
    const kafka = await kafkaFor(TEST_KAFKA_ENV);
    BROKER = kafka.broker;
    // A broker of this process goes with it (the runner's outlives every test file).
    if (kafka.disposable) process.once('exit', () => kafka.stopSync());
  })();
  return ready;
}

export function kafkaClient(brokers = [BROKER]) {
  fixKafkajsIdleTimer(); // the tests' consumers share the machine with the gateways under test
  return new Kafka({
    clientId: `test-${randomBytes(3).toString('hex')}`,
    brokers,
    logLevel: logLevel.NOTHING,
  });
}

export async function createTopic(t: TestContext, partitions = 4, brokers = [BROKER]): Promise<string> {
  const topic = `test-${Date.now()}-${randomBytes(4).toString('hex')}`;
  // A broker that has just started can answer "does not host this topic-partition" while its
  // metadata settles (a retriable error): retried, and the admin client always disconnected, so a
  // failed attempt never leaves a connection that keeps the test process alive.
  await retryWithBackoff(
    async () => {
      const admin = kafkaClient(brokers).admin();
      try {
        await admin.connect();
        await admin.createTopics({
          topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
          waitForLeaders: true,
        });
      } finally {
        await admin.disconnect().catch(() => {});
      }
    },
    {
      attempts: 5,
      baseMs: 250,
      capMs: 2000,
      retryable: (err) => (err as { retriable?: boolean }).retriable === true,
    },
  );
  t.after(async () => {
    const a = kafkaClient(brokers).admin();
    await a.connect();
    await a.deleteTopics({ topics: [topic] }).catch(() => {});
    await a.disconnect();
  });
  return topic;
}

export interface ConsumedRecord {
  partition: number;
  offset: string;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

/** Reads the topic from the beginning until `count` records arrived or `timeoutMs` passed. */
export async function consumeAll(
  topic: string,
  count: number,
  timeoutMs = 30_000,
  brokers = [BROKER],
): Promise<ConsumedRecord[]> {
  const consumer = kafkaClient(brokers).consumer({
    groupId: `g-${randomBytes(4).toString('hex')}`,
    maxWaitTimeInMs: SHORT_FETCH_WAIT_MS,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const out: ConsumedRecord[] = [];
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        out.push({
          partition,
          offset: message.offset,
          key: String(message.key),
          value: message.value!,
          headers,
        });
        if (out.length >= count) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return out;
}

/**
 * `fleetgate gateway` as its own process (startFleetgateProcess) producing to a new topic of the
 * test broker (`partitions`, default 4); `env` adds to or overrides its environment.
 */
export async function startKafkaGateway(
  t: TestContext,
  o: { partitions?: number; env?: Record<string, string> } = {},
): Promise<Awaited<ReturnType<typeof startFleetgateProcess>> & { topic: string }> {
  await kafkaReady();
  const topic = await createTopic(t, o.partitions ?? 4);
  const gw = await startFleetgateProcess(t, 'gateway', {
    FLEETGATE_KAFKA_BROKERS: BROKER,
    FLEETGATE_KAFKA_TOPIC: topic,
    ...o.env,
  });
  return { ...gw, topic };
}
