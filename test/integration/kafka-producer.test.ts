/**
 * The record producer against a real Apache Kafka broker (infra/local, started if needed):
 * partitioning, per-key order, linger batching, bounded failure on dead, silent and frozen
 * brokers, and the snappy/lz4/zstd codecs proven against Kafka's own Java client both ways
 * (Java consumer reads what kafkajs wrote through our codecs; kafkajs reads through our codecs
 * what the Java producer compressed). The Java side is the single-file program below, run with
 * `java` on the jars of infra/local/cache/kafka/ (Java 17 and the jar cache are required: the
 * check fails, never skips, without them).
 */

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import type { Kafka as KafkaClient, Producer } from 'kafkajs';
import kafkajs from 'kafkajs';
import { pino } from 'pino';
import snappy from 'snappy';
import { ensureKafka, findFreePortPair, kafkaPaths, stopKafka } from '../../infra/local/kafka-control.mjs';
import { SHORT_FETCH_WAIT_MS } from '../../loadtest/sim/verify-kafka.js';
import { retryWithBackoff } from '../../platform/backoff.js';
import {
  codecs,
  type KafkaCodec,
  xerialSnappyCompress,
  xerialSnappyDecompress,
} from '../../workers/kafka/codecs.js';
import { kafkajsRequestQueue } from '../../workers/kafka/kafkajs-request-queue.js';
import { partitionFunction } from '../../workers/kafka/partitioners.js';
import {
  type CompressionName,
  createRecordProducer,
  KafkaDeliveryTimeoutError,
  type ProducerRecord,
  type RecordProducer,
} from '../../workers/kafka/producer.js';
import { BROKER, kafkaReady } from '../helpers/kafka.js';

const { CompressionTypes, Kafka, logLevel } = kafkajs;

let brokers: string[] = [];
let client: KafkaClient;
const topics: string[] = [];
const producers: RecordProducer[] = [];

/** A second, disposable broker for the frozen-broker test, started in `before` and awaited there. */
let spare: Promise<{ port: number; stateDir: string; pid: number }> | undefined;
let spareDir: string | undefined;

before(
  async () => {
    await kafkaReady();
    brokers = [BROKER];
    client = new Kafka({ clientId: 'producer-test', brokers, logLevel: logLevel.NOTHING });
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetgate-kafka-'));
    spareDir = stateDir;
    spare = (async () => {
      const port = await findFreePortPair();
      const { pid } = await ensureKafka({ log: () => {} }, { port, stateDir });
      if (!pid) throw new Error(`the spare broker on port ${port} reports no pid`);
      return { port, stateDir, pid };
    })();
    spare.catch(() => {}); // awaited (and its failure reported) by the test that uses it
  },
  { timeout: 180_000 },
);

after(async () => {
  await Promise.allSettled(producers.map((p) => p.disconnect()));
  if (spare) {
    const s = await spare.catch(() => undefined);
    if (s) {
      try {
        process.kill(s.pid, 'SIGCONT');
      } catch {}
      await stopKafka({ log: () => {} }, { port: s.port, stateDir: s.stateDir }).catch(() => {});
    }
  }
  if (spareDir) fs.rmSync(spareDir, { recursive: true, force: true });
  if (topics.length > 0) {
    const admin = client.admin();
    await admin.connect();
    await admin.deleteTopics({ topics, timeout: 10_000 }).catch(() => {});
    await admin.disconnect();
  }
});

/** Lateness allowed to timers on a loaded 2-core machine when checking the delivery bound. */
const SLACK_MS = 1000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Creates `n` topics of 4 partitions and waits until every partition's leader serves it.
 * Metadata names the leaders a moment before they take requests (seconds on a loaded 2-core
 * machine): a first batch can meet NOT_LEADER_OR_FOLLOWER on some partitions, and kafkajs then
 * re-sends the whole request, duplicating the partitions that had succeeded. ListOffsets
 * answers only once the leader serves the partition, so it is polled until it does.
 */
async function createTopics(n: number, kafka = client): Promise<string[]> {
  const names = Array.from({ length: n }, () => `test-${randomBytes(6).toString('hex')}`);
  if (kafka === client) topics.push(...names);
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: names.map((topic) => ({ topic, numPartitions: 4, replicationFactor: 1 })),
    });
    const deadline = Date.now() + 30_000;
    for (const topic of names) {
      for (;;) {
        let last: unknown;
        try {
          if ((await admin.fetchTopicOffsets(topic)).length === 4) break;
        } catch (err) {
          last = err;
        }
        if (Date.now() > deadline) throw new Error(`topic ${topic} not served after 30 s`, { cause: last });
        await sleep(100);
      }
    }
  } finally {
    await admin.disconnect();
  }
  return names;
}

function producerFor(
  opts: Partial<Parameters<typeof createRecordProducer>[0]> & { topic: string },
): RecordProducer {
  const p = createRecordProducer({
    brokers,
    clientId: 'producer-test',
    compression: 'none',
    partitioner: 'murmur2',
    ...opts,
  });
  producers.push(p);
  return p;
}

interface Consumed {
  topic: string;
  partition: number;
  offset: bigint;
  key: Buffer;
  value: Buffer;
}

/** Reads `counts[topic]` records of each topic from the beginning with a kafkajs consumer. */
async function consume(
  counts: Record<string, number>,
  { timeoutMs = 20_000, kafka = client }: { timeoutMs?: number; kafka?: KafkaClient } = {},
): Promise<Consumed[]> {
  const consumer = kafka.consumer({
    groupId: `g-${randomBytes(6).toString('hex')}`,
    maxWaitTimeInMs: SHORT_FETCH_WAIT_MS,
    sessionTimeout: 10_000,
    heartbeatInterval: 1000,
  });
  await consumer.connect();
  // By position: a consumer group may deliver a record again after a rebalance.
  const out = new Map<string, Consumed>();
  const want = Object.values(counts).reduce((a, b) => a + b, 0);
  try {
    await consumer.subscribe({ topics: Object.keys(counts), fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`consumed ${out.size} of ${want} records in ${timeoutMs} ms`)),
        timeoutMs,
      );
      consumer
        .run({
          eachMessage: async ({ topic, partition, message }) => {
            const r = {
              topic,
              partition,
              offset: BigInt(message.offset),
              key: message.key!,
              value: message.value!,
            };
            out.set(`${topic}/${partition}/${r.offset}`, r);
            if (out.size >= want) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return [...out.values()];
}

/** Records of one key in the order they were written (their partition's offset order). */
function byKeyInOffsetOrder(records: Consumed[]): Map<string, Consumed[]> {
  const sorted = [...records].sort((a, b) => a.partition - b.partition || (a.offset < b.offset ? -1 : 1));
  const out = new Map<string, Consumed[]>();
  for (const r of sorted) {
    const k = r.key.toString();
    if (!out.has(k)) out.set(k, []);
    out.get(k)!.push(r);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------

test('each partitioner: 1,000 records, all present, per-key order kept, partition = our function', async () => {
  const kinds = ['murmur2', 'fnv1a'] as const;
  const names = await createTopics(kinds.length);
  const agents = Array.from({ length: 40 }, () => randomUUID());
  const counts: Record<string, number> = {};
  await Promise.all(
    kinds.map(async (kind, i) => {
      const topic = names[i]!;
      // Small batches so that one key's records span many Produce requests.
      const p = producerFor({
        topic,
        partitioner: kind,
        compression: i === 0 ? 'zstd' : 'lz4',
        maxBatchBytes: 8192,
      });
      await p.connect();
      assert.equal(p.connected, true);
      const seq = new Map<string, number>();
      const calls: Promise<void>[] = [];
      for (let c = 0; c < 50; c++) {
        const records: ProducerRecord[] = [];
        for (let j = 0; j < 20; j++) {
          const key = agents[(c * 20 + j) % agents.length]!;
          const n = seq.get(key) ?? 0;
          seq.set(key, n + 1);
          records.push({
            key,
            value: Buffer.from(JSON.stringify({ key, n, pad: 'x'.repeat(100) })),
            headers: { seq: String(n) },
          });
        }
        calls.push(p.send(records)); // 50 concurrent calls, queued in this order
      }
      await Promise.all(calls);
      counts[topic] = 1000;
    }),
  );

  const records = await consume(counts);
  for (const [i, kind] of kinds.entries()) {
    const mine = records.filter((r) => r.topic === names[i]);
    assert.equal(mine.length, 1000, kind);
    const partitionOf = partitionFunction(kind);
    const perKey = byKeyInOffsetOrder(mine);
    assert.equal(perKey.size, agents.length);
    const used = new Set<number>();
    for (const [key, list] of perKey) {
      assert.deepEqual(
        list.map((r) => (JSON.parse(r.value.toString()) as { n: number }).n),
        Array.from({ length: 25 }, (_, n) => n),
        `${kind}: ${key} complete and in order`,
      );
      for (const r of list) assert.equal(r.partition, partitionOf(key, 4), `${kind}: partition of ${key}`);
      used.add(list[0]!.partition);
    }
    assert.equal(used.size, 4, `${kind}: 40 agents use all 4 partitions`);
  }
});

test('linger batching: 500 concurrent sends go out in a few Produce requests', async (t) => {
  const [topic] = await createTopics(1);
  const count = async (send: (i: number) => Promise<unknown>, producer: Producer) => {
    let requests = 0;
    const off = producer.on(producer.events.REQUEST, (e) => {
      if (e.payload.apiName === 'Produce') requests++;
    });
    await Promise.all(Array.from({ length: 500 }, (_, i) => send(i)));
    off();
    return requests;
  };

  const p = producerFor({ topic: topic!, lingerMs: 20 });
  await p.connect();
  const ours = await count(
    (i) => p.send([{ key: `agent-${i % 13}`, value: Buffer.from(`record ${i}`) }]),
    p.kafkajsProducer,
  );

  const raw = client.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
  await raw.connect();
  const plain = await count(
    (i) =>
      raw.send({ topic: topic!, acks: -1, messages: [{ key: `agent-${i % 13}`, value: `record ${i}` }] }),
    raw,
  );
  await raw.disconnect();

  t.diagnostic(
    `500 concurrent sends: ${ours} Produce requests with linger, ${plain} with plain kafkajs send`,
  );
  assert.ok(ours >= 1 && ours <= 5, `linger: ${ours} Produce requests for 500 sends`);
  assert.ok(plain >= 100, `plain kafkajs: ${plain} Produce requests for 500 sends`);
  const got = await consume({ [topic!]: 1000 });
  assert.equal(got.length, 1000);
});

test('an idle connected producer arms no request-queue timer (kafkajs re-arms a 1 ms one for ever)', async (t) => {
  const [topic] = await createTopics(1);
  const p = producerFor({ topic: topic! });
  await p.connect();
  await p.send([{ key: 'agent-1', value: Buffer.from('one') }]);
  // Count the check timers kafkajs' request queues arm while the producer idles.
  const proto = kafkajsRequestQueue().prototype as unknown as {
    scheduleCheckPendingRequests(this: { throttleCheckTimeoutId: unknown }): void;
  };
  const schedule = proto.scheduleCheckPendingRequests;
  let armed = 0;
  proto.scheduleCheckPendingRequests = function (this: { throttleCheckTimeoutId: unknown }) {
    const had = this.throttleCheckTimeoutId;
    schedule.call(this);
    if (!had && this.throttleCheckTimeoutId) armed++;
  };
  t.after(() => {
    proto.scheduleCheckPendingRequests = schedule;
  });
  await p.send([{ key: 'agent-2', value: Buffer.from('two') }]);
  await sleep(300);
  // Stock kafkajs: one per millisecond and connection (hundreds here).
  assert.equal(armed, 0, `${armed} timers armed by an idle producer`);
  assert.equal((await consume({ [topic!]: 2 })).length, 2);
});

test('a broker that is not there: connect and send reject within deliveryTimeoutMs', async (t) => {
  const lines: Array<{ level: number; msg: string; kafkajs?: string }> = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    }),
  );
  const p = producerFor({ topic: 'hids_svr', brokers: ['127.0.0.1:1'], logger });
  assert.equal(p.deliveryTimeoutMs, 5 + 10_000 + 2000);
  let t0 = Date.now();
  await assert.rejects(p.connect());
  const connectMs = Date.now() - t0;
  t0 = Date.now();
  await assert.rejects(p.send([{ key: 'agent', value: Buffer.from('x') }]));
  const sendMs = Date.now() - t0;
  t.diagnostic(`refused connection: connect rejected after ${connectMs} ms, send after ${sendMs} ms`);
  assert.ok(connectMs < p.deliveryTimeoutMs && sendMs < p.deliveryTimeoutMs);
  assert.ok(sendMs < 5000, 'kafkajs itself gives up on a refused connection within seconds');
  assert.equal(p.connected, false);
  // kafkajs' logs reach the pino logger at their own level, our own line too.
  assert.ok(lines.some((l) => l.level === 50 && l.kafkajs === 'Connection' && /ECONNREFUSED/.test(l.msg)));
  assert.ok(lines.some((l) => l.level === 40 && l.msg === 'Kafka send failed'));
});

test('a broker that accepts and never answers: send rejects at the delivery deadline', async (t) => {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const { port } = server.address() as net.AddressInfo;
  const p = producerFor({ topic: 'hids_svr', brokers: [`127.0.0.1:${port}`], requestTimeoutMs: 1500 });
  const t0 = Date.now();
  const results = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) => p.send([{ key: `agent-${i}`, value: Buffer.from('x') }])),
  );
  const ms = Date.now() - t0;
  t.diagnostic(`silent broker: 20 sends rejected after ${ms} ms (deliveryTimeoutMs ${p.deliveryTimeoutMs})`);
  assert.ok(results.every((r) => r.status === 'rejected'));
  assert.ok(ms <= p.deliveryTimeoutMs + SLACK_MS, `${ms} ms`);
  assert.equal(p.connected, false);
});

test('a broker frozen mid-stream (SIGSTOP): pending sends all fail at the first deadline, then recover', async (t) => {
  assert.ok(spare, 'the spare broker was started in before()');
  const { port, pid } = await spare;
  const spareBrokers = [`127.0.0.1:${port}`];
  const spareClient = new Kafka({
    clientId: 'producer-test',
    brokers: spareBrokers,
    logLevel: logLevel.NOTHING,
  });
  const [topic] = await createTopics(1, spareClient);
  const p = producerFor({ topic: topic!, brokers: spareBrokers, requestTimeoutMs: 1500 });
  const agents = ['agent-0', 'agent-1', 'agent-2', 'agent-3', 'agent-4'];
  await p.send(agents.map((key) => ({ key, value: Buffer.from('before') })));

  process.kill(pid, 'SIGSTOP');
  let resumed = false;
  const resume = () => {
    if (!resumed) process.kill(pid, 'SIGCONT');
    resumed = true;
  };
  t.after(resume);
  // A goes out and hangs; B, sent a second later, waits behind it.
  const t0 = Date.now();
  const a = p.send(agents.map((key) => ({ key, value: Buffer.from('A') })));
  await sleep(1000);
  const b = p.send(agents.map((key) => ({ key, value: Buffer.from('B') })));
  const [ra, rb] = await Promise.allSettled([a, b]);
  const ms = Date.now() - t0;
  t.diagnostic(
    `frozen broker: both sends rejected ${ms} ms after the first (deliveryTimeoutMs ${p.deliveryTimeoutMs})`,
  );
  for (const r of [ra, rb]) {
    assert.equal(r!.status, 'rejected');
    assert.ok((r as PromiseRejectedResult).reason instanceof KafkaDeliveryTimeoutError);
  }
  assert.ok(ms >= p.deliveryTimeoutMs - 50 && ms <= p.deliveryTimeoutMs + SLACK_MS, `${ms} ms`);
  assert.equal(p.connected, false);

  // Still frozen: the next send is bounded too.
  const t1 = Date.now();
  await assert.rejects(p.send([{ key: 'agent-0', value: Buffer.from('C') }]));
  assert.ok(Date.now() - t1 <= p.deliveryTimeoutMs + SLACK_MS);

  resume();
  const t2 = Date.now();
  for (;;) {
    // The caller's pattern: reconnect when not connected, then send.
    try {
      if (!p.connected) await p.connect();
      await p.send(agents.map((key) => ({ key, value: Buffer.from('after') })));
      break;
    } catch (err) {
      if (Date.now() - t2 > 20_000) throw err;
    }
  }
  t.diagnostic(`recovered ${Date.now() - t2} ms after SIGCONT`);
  assert.equal(p.connected, true);

  // B was queued behind the failed A and C never got a connection: neither may have been
  // written. A's request was in the frozen broker's socket buffer when it timed out: its outcome
  // is unknown to any client, and the broker may still append it when it wakes, even after
  // 'after' (the caller re-sends A from its spool; consumers see it twice).
  // Just after SIGCONT the broker may still be re-electing the partition's leader ("not the
  // leader", a retriable answer): the read-back is retried, never the assertions below.
  const offsets = await retryWithBackoff(
    async () => {
      const admin = spareClient.admin();
      await admin.connect();
      return admin.fetchTopicOffsets(topic!).finally(() => admin.disconnect());
    },
    {
      attempts: 8,
      baseMs: 250,
      capMs: 2000,
      retryable: (err) => (err as { retriable?: boolean }).retriable === true,
    },
  );
  const total = offsets.reduce((sum, o) => sum + Number(o.high), 0);
  const records = await consume({ [topic!]: total }, { kafka: spareClient, timeoutMs: 30_000 });
  for (const [key, list] of byKeyInOffsetOrder(records)) {
    const values = list.map((r) => r.value.toString());
    assert.ok(!values.includes('B') && !values.includes('C'), `${key}: ${values.join(',')}`);
    assert.equal(values[0], 'before');
    assert.ok(values.includes('after'), `${key}: ${values.join(',')}`);
  }
  t.diagnostic(
    `spare topic: ${total} records (${records.filter((r) => r.value.toString() === 'A').length} of A landed)`,
  );
});

// ------------------------------------------------------------------------------------------------
// Java interop of the codecs

/** Run as `java -cp '<cache>/*' Interop.java <bootstrap> <task>...` (Java 17 single-file source). */
const JAVA_INTEROP = `
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

/**
 * Tasks:
 *   consume:<topic>:<count>                  prints "C <topic> <partition> <offset> <key b64> <value b64>"
 *   produce:<topic>:<compression>:<count>    prints "P <topic> <partition> <offset> <key b64> <value b64>"
 * Prints "DONE" at the end; any failure is an exception (exit status 1).
 */
public class Interop {
  static final Base64.Encoder B64 = Base64.getEncoder();

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    for (int i = 1; i < args.length; i++) {
      String[] t = args[i].split(":");
      if (t[0].equals("consume")) consume(bootstrap, t[1], Integer.parseInt(t[2]));
      else if (t[0].equals("produce")) produce(bootstrap, t[1], t[2], Integer.parseInt(t[3]));
      else throw new IllegalArgumentException("unknown task " + args[i]);
    }
    System.out.println("DONE");
  }

  static void consume(String bootstrap, String topic, int count) {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
    try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      List<TopicPartition> tps = new ArrayList<>();
      for (PartitionInfo pi : c.partitionsFor(topic, Duration.ofSeconds(10))) tps.add(new TopicPartition(topic, pi.partition()));
      c.assign(tps);
      c.seekToBeginning(tps);
      int got = 0;
      long deadline = System.currentTimeMillis() + 20_000;
      while (got < count) {
        if (System.currentTimeMillis() > deadline) throw new IllegalStateException("consumed " + got + " of " + count + " from " + topic);
        for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
          System.out.println("C " + topic + " " + r.partition() + " " + r.offset() + " " + B64.encodeToString(r.key()) + " " + B64.encodeToString(r.value()));
          got++;
        }
      }
    }
  }

  /** Values: small and large (up to 200 KB: several snappy and lz4 blocks), random and compressible. */
  static byte[] value(int i) {
    Random rnd = new Random(i * 7919L + 17);
    int size = i % 10 == 0 ? 150_000 + rnd.nextInt(50_000) : 10 + rnd.nextInt(5_000);
    byte[] v = new byte[size];
    if (i % 2 == 0) rnd.nextBytes(v);
    else {
      byte[] text = ("record " + i + " of the interop check; ").getBytes(StandardCharsets.UTF_8);
      for (int j = 0; j < size; j++) v[j] = text[j % text.length];
    }
    return v;
  }

  static void produce(String bootstrap, String topic, String compression, int count) throws Exception {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
    p.put(ProducerConfig.LINGER_MS_CONFIG, "20");
    p.put(ProducerConfig.BATCH_SIZE_CONFIG, "262144");
    List<Future<RecordMetadata>> futures = new ArrayList<>();
    List<byte[][]> sent = new ArrayList<>();
    try (KafkaProducer<byte[], byte[]> pr = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
      for (int i = 0; i < count; i++) {
        byte[] k = ("agent-" + (i % 7)).getBytes(StandardCharsets.UTF_8);
        byte[] v = value(i);
        sent.add(new byte[][] { k, v });
        futures.add(pr.send(new ProducerRecord<>(topic, k, v)));
      }
      pr.flush();
      for (int i = 0; i < count; i++) {
        RecordMetadata m = futures.get(i).get();
        System.out.println("P " + topic + " " + m.partition() + " " + m.offset() + " " + B64.encodeToString(sent.get(i)[0]) + " " + B64.encodeToString(sent.get(i)[1]));
      }
    }
  }
}
`;

function javaCommand(): string {
  const home = process.env.JAVA_HOME;
  return home && fs.existsSync(path.join(home, 'bin', 'java')) ? path.join(home, 'bin', 'java') : 'java';
}

/** Java 17+ and the Kafka client jars, or a failure that says what is missing. */
function javaAndJars(): { java: string; classpath: string } {
  const java = javaCommand();
  const v = spawnSync(java, ['-version'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) {
    assert.fail(
      `the Kafka interop check needs Java 17+ ('${java} -version' failed: ${v.error?.message ?? v.stderr}); ` +
        'install it (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME',
    );
  }
  const major = Number(/version "(\d+)/.exec(v.stderr)?.[1] ?? 0);
  assert.ok(
    major >= 17,
    `the Kafka interop check needs Java 17+ (single-file source launch), found: ${v.stderr}`,
  );
  const { cacheDir } = kafkaPaths();
  const jars = fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : [];
  if (!jars.some((f) => /^kafka-clients-.*\.jar$/.test(f))) {
    assert.fail(
      `no kafka-clients jar in ${cacheDir}: run 'npm run kafka:up' once (it fills the jar cache), then re-run this test`,
    );
  }
  return { java, classpath: path.join(cacheDir, '*') };
}

async function runJava(
  { java, classpath }: { java: string; classpath: string },
  tasks: string[],
): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetgate-interop-'));
  try {
    const source = path.join(dir, 'Interop.java');
    fs.writeFileSync(source, JAVA_INTEROP);
    const child = spawn(java, ['-Xmx256m', '-cp', classpath, source, brokers[0]!, ...tasks], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    }).finally(() => clearTimeout(killer));
    const lines = stdout.split('\n').filter(Boolean);
    assert.equal(code, 0, `java exited ${code}:\n${stderr.slice(-4000)}`);
    assert.equal(lines.at(-1), 'DONE', stderr.slice(-4000));
    return lines.slice(0, -1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Counts the calls of a codec's functions while the test runs (registerCodecs hands out these objects). */
function spy(codec: KafkaCodec) {
  const n = { compress: 0, decompress: 0 };
  const { compress, decompress } = codec;
  codec.compress = (e) => {
    n.compress++;
    return compress(e);
  };
  codec.decompress = (b) => {
    n.decompress++;
    return decompress(b);
  };
  return { n, restore: () => Object.assign(codec, { compress, decompress }) };
}

function interopValue(i: number): Buffer {
  if (i % 10 === 0) return randomBytes(150_000 + (i % 7) * 7000); // several snappy / lz4 blocks, incompressible
  if (i % 10 === 5) return Buffer.from(`compressible ${i} `.repeat(12_000)); // ~200 KB of text
  return i % 2 ? Buffer.from(`record ${i} `.repeat(1 + i * 3)) : randomBytes(10 + i * 31);
}

test('xerial snappy framing: header, 32 KiB blocks, bare-block and concatenated-stream input', async () => {
  const input = randomBytes(100_000);
  const framed = await xerialSnappyCompress(input);
  // 82 'SNAPPY' 00, version 1, compatible version 1 (snappy-java SnappyCodec), then 4 blocks.
  assert.equal(framed.subarray(0, 16).toString('hex'), '82534e415050590000000001' + '00000001');
  let at = 16;
  const sizes: number[] = [];
  while (at < framed.length) {
    const n = framed.readInt32BE(at);
    sizes.push(
      ((await snappy.uncompress(framed.subarray(at + 4, at + 4 + n), { asBuffer: true })) as Buffer).length,
    );
    at += 4 + n;
  }
  assert.deepEqual(sizes, [32768, 32768, 32768, 100_000 - 3 * 32768]);
  assert.ok((await xerialSnappyDecompress(framed)).equals(input));
  // What sarama and kafkajs-snappy write: one bare snappy block.
  assert.ok((await xerialSnappyDecompress((await snappy.compress(input)) as Buffer)).equals(input));
  // Two streams back to back (snappy-java reads on past a second header).
  const second = await xerialSnappyCompress(Buffer.from('tail'));
  assert.ok(
    (await xerialSnappyDecompress(Buffer.concat([framed, second]))).equals(
      Buffer.concat([input, Buffer.from('tail')]),
    ),
  );
  assert.equal((await xerialSnappyDecompress(await xerialSnappyCompress(Buffer.alloc(0)))).length, 0);
  await assert.rejects(
    xerialSnappyDecompress(framed.subarray(0, framed.length - 10)),
    /bad xerial block length/,
  );
});

test('codecs interoperate with the Java client: kafkajs → Java consumer, Java producer → kafkajs', async (t) => {
  const javaSetup = javaAndJars(); // fails (not skips) here when Java or the jars are missing
  const kinds = ['snappy', 'lz4', 'zstd', 'gzip'] as const satisfies readonly CompressionName[];
  const type = {
    snappy: CompressionTypes.Snappy,
    lz4: CompressionTypes.LZ4,
    zstd: CompressionTypes.ZSTD,
  } as const;
  const spies = {
    snappy: spy(codecs[type.snappy]),
    lz4: spy(codecs[type.lz4]),
    zstd: spy(codecs[type.zstd]),
  };
  t.after(() => {
    for (const s of Object.values(spies)) s.restore();
  });
  const N = 30;
  const names = await createTopics(kinds.length * 2);
  const ours = kinds.map((_, i) => names[i]!);
  const javas = kinds.map((_, i) => names[kinds.length + i]!);

  // 1. kafkajs writes through our codecs (the broker decompresses every batch to validate it).
  const sent = new Map<string, ProducerRecord[]>();
  await Promise.all(
    kinds.map(async (kind, i) => {
      const p = producerFor({ topic: ours[i]!, compression: kind, partitioner: 'fnv1a' });
      const records = Array.from({ length: N }, (_, j) => ({
        key: `agent-${j % 5}`,
        value: interopValue(j),
      }));
      sent.set(ours[i]!, records);
      // Several calls, so that a batch holds records of several keys and several partitions.
      await Promise.all([
        p.send(records.slice(0, 10)),
        p.send(records.slice(10, 20)),
        p.send(records.slice(20)),
      ]);
    }),
  );
  for (const kind of ['snappy', 'lz4', 'zstd'] as const) {
    assert.ok(spies[kind].n.compress > 0, `our ${kind} codec compressed the batches`);
  }
  const admin = client.admin();
  await admin.connect();
  try {
    for (const [i, kind] of kinds.entries()) {
      const offsets = await admin.fetchTopicOffsets(ours[i]!);
      const written = offsets.reduce((sum, o) => sum + Number(o.high) - Number(o.low), 0);
      assert.equal(
        written,
        N,
        `${kind}: ${written} records in the topic (${offsets.map((o) => o.high).join(',')})`,
      );
    }
  } finally {
    await admin.disconnect();
  }

  // 2. One JVM: read our topics with KafkaConsumer, and write the Java topics with KafkaProducer.
  const t0 = Date.now();
  const lines = await runJava(javaSetup, [
    ...ours.map((topic) => `consume:${topic}:${N}`),
    ...kinds.map((kind, i) => `produce:${javas[i]}:${kind}:${N}`),
  ]);
  t.diagnostic(`java ran for ${Date.now() - t0} ms`);
  const parsed = lines.map((l) => {
    const [what, topic, partition, offset, key, value] = l.split(' ');
    return {
      what: what!,
      topic: topic!,
      partition: Number(partition),
      offset: BigInt(offset!),
      key: Buffer.from(key!, 'base64'),
      value: Buffer.from(value!, 'base64'),
    };
  });

  for (const [i, kind] of kinds.entries()) {
    const got = parsed.filter((r) => r.what === 'C' && r.topic === ours[i]);
    assert.equal(got.length, N, `Java consumer read ${got.length} of ${N} ${kind} records`);
    // Per key in offset order = per key in send order, byte for byte.
    const perKey = byKeyInOffsetOrder(got);
    for (const [key, list] of perKey) {
      const expected = sent.get(ours[i]!)!.filter((r) => r.key === key);
      assert.equal(list.length, expected.length, `${kind} ${key}`);
      for (const [j, r] of list.entries()) {
        assert.ok(r.value.equals(Buffer.from(expected[j]!.value)), `${kind} ${key} #${j}`);
      }
      for (const r of list) assert.equal(r.partition, partitionFunction('fnv1a')(key, 4));
    }
  }

  // 3. kafkajs reads what Java compressed, through our codecs.
  const before = {
    snappy: spies.snappy.n.decompress,
    lz4: spies.lz4.n.decompress,
    zstd: spies.zstd.n.decompress,
  };
  const consumed = await consume(Object.fromEntries(javas.map((topic) => [topic, N])));
  for (const [i, kind] of kinds.entries()) {
    const produced = parsed.filter((r) => r.what === 'P' && r.topic === javas[i]);
    assert.equal(produced.length, N);
    const at = new Map(
      consumed.filter((r) => r.topic === javas[i]).map((r) => [`${r.partition}/${r.offset}`, r] as const),
    );
    assert.equal(at.size, N, `kafkajs read ${at.size} of ${N} Java ${kind} records`);
    for (const r of produced) {
      const c = at.get(`${r.partition}/${r.offset}`);
      assert.ok(c, `${kind}: record at ${r.partition}/${r.offset}`);
      assert.ok(
        c.key.equals(r.key) && c.value.equals(r.value),
        `${kind}: record at ${r.partition}/${r.offset} equal`,
      );
    }
  }
  for (const kind of ['snappy', 'lz4', 'zstd'] as const) {
    assert.ok(spies[kind].n.decompress > before[kind], `our ${kind} codec decompressed the Java batches`);
  }
});
