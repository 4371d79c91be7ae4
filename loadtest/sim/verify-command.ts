/**
 * `fleetgate sim verify` and `fleetgate sim --verify-kafka`: read a topic back and count one
 * simulator run's numbered records (loadtest/sim/sequence.ts, verify-kafka.ts).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type VerifyReport, verifyTopic } from './verify-kafka.js';

const HELP = `usage: fleetgate sim verify --kafka BROKERS --topic TOPIC --run ID [options]

Reads TOPIC back from offset 0 and counts the records of one simulator run (every record
\`fleetgate sim\` sends carries the run id it prints at start and a sequence number per agent):
sent, stored (every copy), distinct, missing (numbers never stored), duplicated (copies beyond
the first) and out-of-order (a record stored after a higher number of the same agent). Prints
the counts as JSON; exit status 1 when a record is missing, 0 otherwise.

options:
  --kafka BROKERS   comma-separated bootstrap brokers, e.g. 127.0.0.1:9092
  --kafka-tls       connect to the brokers with TLS (Node's default CAs)
  --topic TOPIC     the topic the gateways produce to (FLEETGATE_KAFKA_TOPIC)
  --run ID          the run id \`fleetgate sim\` printed (and wrote as "run" in its --json report)
  --sent N          records the run sent (the report's recordsSent): then records never stored at
                    the end of an agent's sequence count as missing too; without it, only gaps
  --wait S          with --sent: keep reading up to S seconds while records are missing (default 0)
  --json FILE       also write the counts to FILE
  --help`;

function brokersOf(list: string): string[] {
  return list
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
}

export async function runSimVerify(argv: string[]): Promise<number> {
  let v: Record<string, string | boolean | undefined>;
  try {
    ({ values: v } = parseArgs({
      args: argv,
      options: {
        kafka: { type: 'string' },
        'kafka-tls': { type: 'boolean' },
        topic: { type: 'string' },
        run: { type: 'string' },
        sent: { type: 'string' },
        wait: { type: 'string' },
        json: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(`fleetgate sim verify: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  const problem = verifyArgsProblem(v);
  if (problem) {
    console.error(`fleetgate sim verify: ${problem}\n\n${HELP}`);
    return 2;
  }
  const report = await verifyTopic({
    brokers: brokersOf(String(v.kafka)),
    topic: String(v.topic),
    run: String(v.run),
    ...(v.sent !== undefined ? { sent: Number(v.sent) } : {}),
    waitMs: Number(v.wait ?? 0) * 1000,
    ...(v['kafka-tls'] ? { ssl: true } : {}),
    log: (line) => console.error(line),
  });
  console.log(JSON.stringify(report, null, 2));
  if (typeof v.json === 'string') writeFileSync(v.json, `${JSON.stringify(report, null, 2)}\n`);
  return report.missing > 0 ? 1 : 0;
}

function verifyArgsProblem(v: Record<string, string | boolean | undefined>): string | undefined {
  for (const name of ['kafka', 'topic', 'run']) {
    if (typeof v[name] !== 'string' || v[name] === '') return `--${name} is required`;
  }
  if (brokersOf(String(v.kafka)).length === 0) return '--kafka names no broker';
  for (const name of ['sent', 'wait']) {
    const raw = v[name];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0 || (name === 'sent' && !Number.isInteger(n)))
      return `--${name} must be a non-negative ${name === 'sent' ? 'integer' : 'number'}, got ${String(raw)}`;
  }
  return undefined;
}

/** `fleetgate sim --verify-kafka`: the run just finished, with its own sent count. */
export async function verifyAfterRun(o: {
  brokers: string;
  topic: string;
  run: string;
  sent: number;
  waitS: number;
}): Promise<VerifyReport> {
  console.error(`verifying ${o.sent} records of run ${o.run} in ${o.topic}`);
  return verifyTopic({
    brokers: brokersOf(o.brokers),
    topic: o.topic,
    run: o.run,
    sent: o.sent,
    waitMs: o.waitS * 1000,
    log: (line) => console.error(line),
  });
}
