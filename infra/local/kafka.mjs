#!/usr/bin/env node
// Local single-node Apache Kafka broker on 127.0.0.1:9092: node infra/local/kafka.mjs up|down|status
// (npm run kafka:up / kafka:down). The work is done by kafka-control.mjs; see README.md here.

import { ensureKafka, KAFKA_BROKER, KafkaSetupError, kafkaStatus, stopKafka } from './kafka-control.mjs';

const USAGE = `usage: node infra/local/kafka.mjs <command>

Local single-node Apache Kafka broker (KRaft) on ${KAFKA_BROKER}, from Maven Central jars.

commands:
  up       start the broker and wait until it serves (no-op when Kafka already serves there);
           the first run resolves the jars with Maven into infra/local/cache/
  down     stop the broker started by 'up' (SIGTERM, then SIGKILL after 30 s); idempotent
  status   print whether Kafka serves on ${KAFKA_BROKER}; exit 0 if it does, 1 if not

environment:
  FLEETGATE_KAFKA_STATE_DIR  config, data, pid and log (default infra/local/state/)
  FLEETGATE_KAFKA_JVM_OPTS   extra JVM options for the broker (default heap -Xms256m -Xmx512m)
  JAVA_HOME                  Java 17+ to use (default: java on PATH)
`;

async function main(argv) {
  const cmd = argv[0];
  switch (cmd) {
    case 'up':
      await ensureKafka({ log: (msg) => console.log(msg) });
      return 0;
    case 'down':
      await stopKafka({ log: (msg) => console.log(msg) });
      return 0;
    case 'status': {
      const s = await kafkaStatus();
      const who = s.pid ? `pid ${s.pid}` : 'not started by these scripts';
      console.log(
        s.serving ? `Kafka serves on ${KAFKA_BROKER} (${who})` : `Kafka does not serve on ${KAFKA_BROKER}`,
      );
      if (!s.serving && s.pid) console.log(`broker process pid ${s.pid} runs but does not answer yet`);
      console.log(`jars: Apache Kafka ${s.version ?? '(not cached yet)'}`);
      console.log(`state dir: ${s.stateDir}`);
      console.log(`broker log: ${s.logFile}`);
      return s.serving ? 0 : 1;
    }
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(cmd ? `unknown command: ${cmd}\n\n${USAGE}` : USAGE);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof KafkaSetupError) console.error(`kafka: ${err.message}`);
  else console.error(err);
  process.exitCode = 1;
}
