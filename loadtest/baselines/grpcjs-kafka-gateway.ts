/**
 * Baseline of the ingest benchmark: the agent gateway as a Node team would write it first, on
 * @grpc/grpc-js and kafkajs. Mutual TLS through `ServerCredentials.createSsl(ca, pairs, true)`
 * (client certificate required), `/grpc.Transfer/Transfer` with RawData decoded by protobufjs
 * (the generated static module proto/gen/elkeid.js: faster than @grpc/proto-loader's reflection
 * and toObject conversion, so this baseline is the stronger of the two obvious choices), then per
 * RawData: register the agent on its first message, decode heartbeats (data_type 1000) into the
 * agent's detail, build one MQData per record the obvious way (`grpc.MQData.create({...})`, the
 * record's Body as Body, `encode().finish()`), and `producer.send({ topic, acks: -1, messages })`
 * with kafkajs — one send per RawData, no batching of our own — awaited before the call reads
 * more (`call.pause()` / `call.resume()`), so a slow Kafka pushes back on the agent instead of
 * piling up in memory. A failed send ends the call with UNAVAILABLE (the agent reconnects).
 *
 * grpc-js has no snappy codec (it speaks identity, deflate and gzip), so this baseline can only be
 * fed identity-encoded messages; a stock Elkeid agent could not talk to it at all.
 *
 *   node --expose-gc --import tsx loadtest/baselines/grpcjs-kafka-gateway.ts --pki DIR --topic T
 *        [--brokers 127.0.0.1:9092] [--compression none] [--port 0] [--host 127.0.0.1]
 *
 * Same child protocol as loadtest/bench/gateway-server.ts: `{"port":N}` first, then `stats`/`gc`
 * on stdin (`records`: records Kafka acknowledged); closing stdin disconnects and exits.
 */
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import * as grpcjs from '@grpc/grpc-js';
import kafkajs from 'kafkajs';
import { grpc } from '../../proto/gen/elkeid.js';
import { registerCodecs } from '../../workers/kafka/codecs.js';
import {
  openFileLimit,
  processStats,
  reply,
  requiredPkiDir,
  SERVER_CHILD_OPTIONS,
  type ServerStats,
  serveServerCommands,
  threadCpu,
} from '../bench/child-protocol.js';
import { acceptAgentId, listenTransfer, onCallClosed } from './grpcjs-server.js';

const { CompressionTypes, Kafka, logLevel, Partitioners } = kafkajs;

const { values } = parseArgs({
  options: {
    ...SERVER_CHILD_OPTIONS,
    topic: { type: 'string' },
    brokers: { type: 'string', default: '127.0.0.1:9092' },
    compression: { type: 'string', default: 'none' },
  },
});
const pkiDir = requiredPkiDir(values.pki);
if (!values.topic) throw new Error('--topic NAME is required');
const topic = values.topic;

const COMPRESSION: Record<string, kafkajs.CompressionTypes> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};
if (!(values.compression in COMPRESSION)) throw new Error(`unknown --compression ${values.compression}`);
const compression = COMPRESSION[values.compression]!;
// kafkajs ships gzip only; the others need a codec (the same ones our gateway uses).
if (compression !== CompressionTypes.None && compression !== CompressionTypes.GZIP) registerCodecs();

const kafka = new Kafka({
  clientId: 'grpcjs-baseline',
  brokers: values.brokers.split(','),
  logLevel: logLevel.WARN,
});
const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
await producer.connect();

// The service definition grpc-js builds from a .proto, with protobufjs' static codec.
const transferService: grpcjs.ServiceDefinition = {
  Transfer: {
    path: '/grpc.Transfer/Transfer',
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: grpc.RawData) => Buffer.from(grpc.RawData.encode(m).finish()),
    requestDeserialize: (b: Buffer) => grpc.RawData.decode(b),
    responseSerialize: (m: grpc.Command) => Buffer.from(grpc.Command.encode(m).finish()),
    responseDeserialize: (b: Buffer) => grpc.Command.decode(b),
  },
};

interface Agent {
  agentId: string;
  peer: string;
  connectedAt: number;
  hostname: string;
  detail: Record<string, unknown>;
  records: number;
}

const agents = new Map<string, Agent>();
let records = 0;
let failedSends = 0;
let calls = 0;
let openCalls = 0;

function fieldsOf(body: Uint8Array): Record<string, string> {
  return { ...grpc.Item.decode(body).Fields };
}

async function forward(raw: grpc.RawData): Promise<void> {
  const svrTime = Math.floor(Date.now() / 1000);
  const messages = raw.Data.map((r) => ({
    key: raw.AgentID,
    value: Buffer.from(
      grpc.MQData.encode(
        grpc.MQData.create({
          DataType: r.DataType ?? 0,
          AgentTime: r.Timestamp ?? 0,
          Body: r.Body ?? new Uint8Array(),
          AgentID: raw.AgentID,
          IntranetIPv4: raw.IntranetIPv4.join(','),
          ExtranetIPv4: raw.ExtranetIPv4.join(','),
          IntranetIPv6: raw.IntranetIPv6.join(','),
          ExtranetIPv6: raw.ExtranetIPv6.join(','),
          Hostname: raw.Hostname,
          Version: raw.Version,
          Product: raw.Product,
          SvrTime: svrTime,
          Tag: '',
        }),
      ).finish(),
    ),
  }));
  await producer.send({ topic, acks: -1, compression, messages });
}

function transfer(call: grpcjs.ServerDuplexStream<grpc.RawData, grpc.Command>): void {
  calls++;
  openCalls++;
  let agent: Agent | undefined;
  const cleanup = () => {
    openCalls--;
    if (agent && agents.get(agent.agentId) === agent) agents.delete(agent.agentId);
  };
  call.on('data', (raw: grpc.RawData) => {
    if (!agent) {
      if (!acceptAgentId(call, raw.AgentID)) return;
      agent = {
        agentId: raw.AgentID,
        peer: call.getPeer(),
        connectedAt: Date.now(),
        hostname: raw.Hostname,
        detail: {},
        records: 0,
      };
      agents.set(agent.agentId, agent);
    }
    const a = agent;
    for (const r of raw.Data) {
      if (r.DataType === 1000 && r.Body) {
        try {
          a.detail = {
            ...fieldsOf(r.Body),
            agent_id: a.agentId,
            last_heartbeat_time: Math.floor(Date.now() / 1000),
          };
        } catch {
          // forwarded anyway, as Elkeid does
        }
      }
    }
    if (raw.Data.length === 0) return;
    // One batch in flight per agent: read more only once Kafka has acknowledged this one.
    call.pause();
    forward(raw).then(
      () => {
        a.records += raw.Data.length;
        records += raw.Data.length;
        call.resume();
      },
      (err: unknown) => {
        failedSends++;
        call.emit('error', {
          code: grpcjs.status.UNAVAILABLE,
          details: `Kafka: ${err instanceof Error ? err.message : String(err)}`,
        });
      },
    );
  });
  onCallClosed(call, cleanup);
}

const { server, port } = await listenTransfer(transferService, transfer, {
  pkiDir,
  host: values.host,
  port: values.port,
});

function stats(): ServerStats & { failedSends: number; threads: ReturnType<typeof threadCpu> | null } {
  return {
    records,
    calls,
    openCalls,
    agents: agents.size,
    failedSends,
    threads: threadCpu() ?? null,
    ...processStats(),
  };
}

serveServerCommands(stats, () => {
  server.forceShutdown();
  return producer.disconnect();
});
const require = createRequire(import.meta.url);
const grpcVersion = (require('@grpc/grpc-js/package.json') as { version: string }).version;
const kafkajsVersion = (require('kafkajs/package.json') as { version: string }).version;
reply({
  port,
  pid: process.pid,
  nofile: openFileLimit() ?? null,
  impl: `@grpc/grpc-js ${grpcVersion} + kafkajs ${kafkajsVersion}`,
  compression: values.compression,
});
