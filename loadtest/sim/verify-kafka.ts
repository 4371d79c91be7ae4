/**
 * Reads a Kafka topic back from offset 0 and counts one simulator run's numbered records
 * (sequence.ts): sent / stored / missing / duplicated / out-of-order. It reads up to the
 * partitions' end offsets; with a known sent count it keeps reading newer records for up to
 * `waitMs` while some are still missing (a gateway may still be shipping its spool).
 */
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { grpc } from '../../proto/gen/elkeid.js';
import { registerCodecs } from '../../workers/kafka/codecs.js';
import { fixKafkajsIdleTimer } from '../../workers/kafka/kafkajs-request-queue.js';
import { SequenceCheck, type SequenceReport } from './sequence.js';

/**
 * The fetch long poll of a consumer that reads a topic to its end and disconnects: disconnect()
 * waits for the fetch in flight, and with kafkajs's 5 s default every read ended ~4.5 s after the
 * last record. Also the tests' consumers (test/helpers/kafka.ts and the integration tests' own).
 */
export const SHORT_FETCH_WAIT_MS = 100;

export interface VerifyOptions {
  brokers: string[];
  topic: string;
  /** The run id (the simulator's id seed) whose records are counted. */
  run: string;
  /** Records the simulator sent, when known: then tails never stored count as missing. */
  sent?: number;
  /** How long to wait for missing records to arrive after the first read reached the end (default 0). */
  waitMs?: number;
  ssl?: boolean;
  log?: (line: string) => void;
}

export interface VerifyReport extends SequenceReport {
  topic: string;
  run: string;
  /** Records of the topic read (every run's). */
  read: number;
  /** Records read whose value is not an MQData (counted, skipped). */
  undecodable: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function verifyTopic(o: VerifyOptions): Promise<VerifyReport> {
  registerCodecs();
  fixKafkajsIdleTimer();
  const kafka = new Kafka({
    clientId: `fleetgate-verify-${randomBytes(3).toString('hex')}`,
    brokers: o.brokers,
    logLevel: logLevel.NOTHING,
    ...(o.ssl ? { ssl: true } : {}),
  });
  const admin = kafka.admin();
  const consumer = kafka.consumer({
    groupId: `fleetgate-verify-${randomBytes(6).toString('hex')}`,
    maxWaitTimeInMs: SHORT_FETCH_WAIT_MS,
  });
  const check = new SequenceCheck(o.run);
  const next = new Map<number, bigint>(); // partition -> next offset to read
  let read = 0;
  let undecodable = 0;
  try {
    await admin.connect();
    await consumer.connect();
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        read++;
        next.set(partition, BigInt(message.offset) + 1n);
        let mq: grpc.MQData;
        try {
          mq = grpc.MQData.decode(message.value ?? Buffer.alloc(0));
        } catch {
          undecodable++;
          return;
        }
        check.add(mq.AgentID, mq.Body);
      },
    });
    const deadline = () => Date.now() + (o.waitMs ?? 0);
    let waitUntil = Number.POSITIVE_INFINITY;
    for (;;) {
      const ends = await admin.fetchTopicOffsets(o.topic);
      const caughtUp = ends.every((p) => (next.get(p.partition) ?? 0n) >= BigInt(p.high));
      if (caughtUp) {
        const r = check.report(o.sent);
        if (o.sent === undefined || r.missing === 0) break;
        if (waitUntil === Number.POSITIVE_INFINITY) waitUntil = deadline();
        if (Date.now() >= waitUntil) break;
        o.log?.(`verify: ${r.missing} of ${r.sent} records not in ${o.topic} yet; reading on`);
      }
      await sleep(500);
    }
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
  return { topic: o.topic, run: o.run, read, undecodable, ...check.report(o.sent) };
}
