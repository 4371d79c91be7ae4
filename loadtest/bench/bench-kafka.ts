/**
 * The Kafka broker of a benchmark run and its topics, for the drivers that need one (bench:ingest
 * always; bench:gateway when an external gateway such as Elkeid's AC needs a broker to start):
 * `--brokers` when given, else $FLEETGATE_BENCH_KAFKA, else a disposable broker of this run on a
 * free port (never a shared 9092), stopped with the run.
 */
import kafkajs from 'kafkajs';
import { kafkaFor } from '../../infra/local/disposable-kafka.mjs';
import { fixKafkajsIdleTimer } from '../../workers/kafka/kafkajs-request-queue.js';

const { Kafka, logLevel } = kafkajs;

export interface BenchKafka {
  brokers: string[];
  /** The broker's pid when this run started it (its CPU can be read), else null. */
  pid: number | null;
  /** Stops a broker this run started; nothing for a given one. */
  stop(): Promise<void>;
}

/** The run's broker: `given` (comma-separated host:port), else the environment's, else a disposable one. */
export async function benchKafka(given: string | undefined, log: (msg: string) => void): Promise<BenchKafka> {
  if (given) return { brokers: given.split(','), pid: null, stop: async () => {} };
  const kafka = await kafkaFor('FLEETGATE_BENCH_KAFKA', { log });
  return { brokers: [kafka.broker], pid: kafka.pid, stop: () => kafka.stop() };
}

/** A kafkajs client of the bench (silent: the drivers report what matters themselves). */
export function benchKafkaClient(brokers: string[]) {
  fixKafkajsIdleTimer(); // the bench's clients share the machine: no 1 ms timer loop per connection
  return new Kafka({ clientId: `fleetgate-bench-${process.pid}`, brokers, logLevel: logLevel.NOTHING });
}

/** Creates `names` with `partitions` partitions each and waits for their leaders. */
export async function createBenchTopics(
  brokers: string[],
  names: string[],
  partitions: number,
): Promise<void> {
  const admin = benchKafkaClient(brokers).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: names.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}

/** Deletes `names`; the admin client is disconnected whatever happens. */
export async function deleteBenchTopics(brokers: string[], names: string[]): Promise<void> {
  const admin = benchKafkaClient(brokers).admin();
  try {
    await admin.connect();
    await admin.deleteTopics({ topics: names });
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
