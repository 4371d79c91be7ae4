/** `fleetgate spool stat|tail|replay`: inspect the spool, print records as JSON, ship them to Kafka. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { decodeItem } from '../gateway/agent/item.js';
import { kafkaOptionsFrom } from '../gateway/ingest/default-sink.js';
import { openSpoolExclusive } from '../gateway/ingest/spool-lock.js';
import { loadConfig } from '../platform/config/env.js';
import { grpc } from '../proto/gen/elkeid.js';
import { createRecordProducer } from '../workers/kafka/producer.js';
import { decodeEnvelope, HEADER_GW, HEADER_SEQ } from '../workers/spool-entry.js';

const HELP = `usage:
  fleetgate spool stat   [--dir D]
      segments, bytes, records not yet shipped, ack position.
  fleetgate spool tail   [--dir D] [-n N] [--from SEQ]
      prints records as JSON lines (the last N pending, default 10, or N from SEQ):
      spool seq, Kafka key, acceptance headers, the MQData fields, the body's Item fields.
  fleetgate spool replay [--dir D] [--brokers host:port,...] [--topic T]
      ships every pending record to Kafka in order (acks=all), with progress, and marks it shipped.
      Brokers and topic default to FLEETGATE_KAFKA_BROKERS / FLEETGATE_KAFKA_TOPIC.
The spool is locked by the gateway that writes it: stop the gateway first (or let a gateway with
FLEETGATE_KAFKA_BROKERS set ship it by itself). --dir defaults to $FLEETGATE_DATA_DIR/spool.`;

function mqJson(key: string, seq: number, envelope: Uint8Array) {
  const r = decodeEnvelope(key, envelope);
  const mq = grpc.MQData.decode(r.value);
  let body: unknown;
  try {
    body = { ...decodeItem(mq.Body) };
  } catch {
    body = { base64: Buffer.from(mq.Body).toString('base64') };
  }
  return {
    seq,
    key,
    headers: { [HEADER_GW]: r.gw, [HEADER_SEQ]: r.seq },
    DataType: mq.DataType,
    AgentTime: Number(mq.AgentTime),
    SvrTime: Number(mq.SvrTime),
    AgentID: mq.AgentID,
    Hostname: mq.Hostname,
    Version: mq.Version,
    Product: mq.Product,
    IntranetIPv4: mq.IntranetIPv4,
    ExtranetIPv4: mq.ExtranetIPv4,
    IntranetIPv6: mq.IntranetIPv6,
    ExtranetIPv6: mq.ExtranetIPv6,
    Tag: mq.Tag,
    Body: body,
  };
}

export async function runSpool(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    console.log(HELP);
    return sub === undefined ? 2 : 0;
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        dir: { type: 'string' },
        n: { type: 'string', short: 'n' },
        from: { type: 'string' },
        brokers: { type: 'string' },
        topic: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(`fleetgate spool: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const config = loadConfig();
  const dir = path.resolve(String(values.dir ?? path.join(config.dataDir, 'spool')));
  const spool = await openSpoolExclusive(dir);
  try {
    if (sub === 'stat') {
      const s = spool.stats();
      console.log(
        JSON.stringify({ dir, ...s, pendingFrom: spool.pendingFrom(), recovery: spool.recovery }, null, 2),
      );
      return 0;
    }
    if (sub === 'tail') {
      const n = Number(values.n ?? 10);
      if (!Number.isInteger(n) || n < 1) throw new Error('-n must be a positive integer');
      const from =
        values.from !== undefined ? Number(values.from) : Math.max(spool.pendingFrom(), spool.nextSeq() - n);
      for (const e of await spool.read(from, n)) console.log(JSON.stringify(mqJson(e.key, e.seq, e.value)));
      return 0;
    }
    if (sub === 'replay') {
      const brokers = String(values.brokers ?? config.kafkaBrokers.join(','))
        .split(',')
        .filter(Boolean);
      if (brokers.length === 0) {
        console.error('fleetgate spool replay: no brokers (--brokers or FLEETGATE_KAFKA_BROKERS)');
        return 2;
      }
      const opts = kafkaOptionsFrom({
        ...config,
        kafkaBrokers: brokers,
        kafkaTopic: String(values.topic ?? config.kafkaTopic),
      });
      const producer = createRecordProducer(opts);
      await producer.connect();
      const total = spool.nextSeq() - spool.pendingFrom();
      let shipped = 0;
      let lastPrint = 0;
      try {
        for (;;) {
          const entries = await spool.read(spool.pendingFrom(), 2000, 4 * 1024 * 1024);
          if (entries.length === 0) break;
          await producer.send(
            entries.map((e) => {
              const r = decodeEnvelope(e.key, e.value);
              return {
                key: r.key,
                value: r.value,
                headers: { [HEADER_GW]: r.gw, [HEADER_SEQ]: String(r.seq) },
              };
            }),
          );
          await spool.ack(entries[entries.length - 1]!.seq);
          shipped += entries.length;
          if (Date.now() - lastPrint > 1000) {
            lastPrint = Date.now();
            console.error(`shipped ${shipped}/${total} records to ${opts.topic}`);
          }
        }
      } finally {
        await producer.disconnect();
      }
      console.log(`replay done: ${shipped} records shipped to ${brokers.join(',')} topic ${opts.topic}`);
      return 0;
    }
    console.error(`fleetgate spool: unknown sub-command "${sub}"\n\n${HELP}`);
    return 2;
  } finally {
    await spool.close();
  }
}
