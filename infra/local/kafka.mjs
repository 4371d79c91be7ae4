#!/usr/bin/env node
// Local single-node Apache Kafka broker on 127.0.0.1:9092: node infra/local/kafka.mjs up|down|status
// (npm run kafka:up / kafka:down). The work is done by kafka-control.mjs; see README.md here.
// --port/--controller-port/--state-dir select a disposable instance instead (by hand, for debugging).

import fs from 'node:fs';
import path from 'node:path';
import {
  ensureKafka,
  KAFKA_BROKER,
  KafkaSetupError,
  kafkaPaths,
  kafkaStatus,
  killKafka,
  startKafka,
  stopKafka,
} from './kafka-control.mjs';

const USAGE = `usage: node infra/local/kafka.mjs <command>

Local single-node Apache Kafka broker (KRaft) on ${KAFKA_BROKER}, from Maven Central jars.

commands:
  up       start the broker and wait until it serves (no-op when Kafka already serves there);
           the first run resolves the jars with Maven into infra/local/cache/
  down     stop the broker started by 'up' (SIGTERM, then SIGKILL after 30 s); idempotent
  status   print whether Kafka serves on ${KAFKA_BROKER}; exit 0 if it does, 1 if not

commands for a disposable instance only (needs --state-dir):
  start    restart a stopped or killed instance on its existing storage
  kill     send --signal (default SIGKILL) to its broker and wait until its ports are closed

options (all commands; without them: the default broker on ${KAFKA_BROKER}):
  --state-dir DIR        the instance's state dir (default: the default broker's)
  --port N               its PLAINTEXT port (default 9092)
  --controller-port N    its controller port (default port + 1)
  --signal SIG           for kill (default SIGKILL)

environment:
  FLEETGATE_KAFKA_STATE_DIR  config, data, pid and log (default infra/local/state/)
  FLEETGATE_KAFKA_JVM_OPTS   extra JVM options for the broker (default heap -Xms256m -Xmx512m)
  JAVA_HOME                  Java 17+ to use (default: java on PATH)
`;

const FLAGS = { '--port': 'port', '--controller-port': 'controllerPort', '--state-dir': 'stateDir' };

/** { cmd, instance, signal } of the command line; instance is undefined for the default broker. */
function parseArgs(argv) {
  let cmd;
  let instance;
  let signal = 'SIGKILL';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith('--') ? arg.split(/=(.*)/s, 2) : [arg];
    if (FLAGS[flag] || flag === '--signal') {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new KafkaSetupError(`${flag} needs a value`);
      if (flag === '--signal') {
        signal = value.toUpperCase();
      } else if (flag === '--state-dir') {
        instance = { ...instance, stateDir: value };
      } else {
        if (!/^\d+$/.test(value)) throw new KafkaSetupError(`${flag} needs a port number, got '${value}'`);
        instance = { ...instance, [FLAGS[flag]]: Number(value) };
      }
    } else if (cmd === undefined && !arg.startsWith('--')) {
      cmd = arg;
    } else if (!['--help', '-h'].includes(arg)) {
      throw new KafkaSetupError(`unexpected argument: ${arg} (see --help)`);
    } else {
      cmd ??= arg;
    }
  }
  return { cmd, instance, signal };
}

function isDefaultStateDir(dir) {
  const real = (p) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  return real(dir) === real(kafkaPaths().stateDir);
}

async function main(argv) {
  const { cmd, instance, signal } = parseArgs(argv);
  const log = (msg) => console.log(msg);
  if ((cmd === 'start' || cmd === 'kill') && (!instance?.stateDir || isDefaultStateDir(instance.stateDir))) {
    throw new KafkaSetupError(
      `'${cmd}' is for disposable instances: give the --state-dir (and --port) of one, not the default broker's`,
    );
  }
  switch (cmd) {
    case 'up':
      await ensureKafka({ log }, instance);
      return 0;
    case 'down':
      await stopKafka({ log }, instance);
      return 0;
    case 'start':
      await startKafka(instance, { log });
      return 0;
    case 'kill':
      await killKafka(instance, signal, { log });
      return 0;
    case 'status': {
      const s = await kafkaStatus(instance);
      const who = s.pid ? `pid ${s.pid}` : 'not started by these scripts';
      console.log(s.serving ? `Kafka serves on ${s.broker} (${who})` : `Kafka does not serve on ${s.broker}`);
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
