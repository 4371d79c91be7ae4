/**
 * Baseline for the gateway benchmark: the same Transfer service on @grpc/grpc-js, the way a
 * Node team would write it first. Mutual TLS through `ServerCredentials.createSsl(ca, pairs,
 * true)` (client certificate required), `/grpc.Transfer/Transfer` from proto/elkeid.proto via
 * @grpc/proto-loader, and per call the work our gateway does before its sink: decode each
 * RawData, register the agent by its AgentID on the first message, decode heartbeats
 * (data_type 1000) into the agent's detail, count records.
 *
 * grpc-js has no snappy codec (it speaks identity, deflate and gzip), so this baseline can only
 * be fed identity-encoded messages; a stock Elkeid agent could not talk to it at all.
 *
 *   node --expose-gc --import tsx loadtest/baselines/grpcjs-gateway.ts --pki DIR [--port 0]
 *
 * Same child protocol as loadtest/bench/gateway-server.ts: `{"port":N}` first, then `stats`/`gc`
 * on stdin; closing stdin exits. For bench:fleet also `command {agent_ids, command}`: writes the
 * Command (`{Task: {...}}`) to each listed agent's call, as our control API's /command/batch does.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpcjs from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import {
  loopLagMeter,
  openFileLimit,
  processStats,
  reply,
  requiredPkiDir,
  SERVER_CHILD_OPTIONS,
  type ServerStats,
  serveServerCommands,
} from '../bench/child-protocol.js';
import { acceptAgentId, listenTransfer, onCallClosed } from './grpcjs-server.js';

const { values } = parseArgs({ options: SERVER_CHILD_OPTIONS });
const pkiDir = requiredPkiDir(values.pki);

const here = path.dirname(fileURLToPath(import.meta.url));
const protoPath = path.join(here, '..', '..', 'proto', 'elkeid.proto');
const packageDefinition = protoLoader.loadSync(protoPath, {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
});
const loaded = grpcjs.loadPackageDefinition(packageDefinition);
const transferService = ((loaded.grpc as grpcjs.GrpcObject).Transfer as grpcjs.ServiceClientConstructor)
  .service;
const Item = protobuf.loadSync(protoPath).lookupType('grpc.Item');

interface RecordObject {
  DataType?: number;
  Timestamp?: string;
  Body?: Buffer;
}
interface RawDataObject {
  Data?: RecordObject[];
  AgentID?: string;
  IntranetIPv4?: string[];
  ExtranetIPv4?: string[];
  IntranetIPv6?: string[];
  ExtranetIPv6?: string[];
  Hostname?: string;
  Version?: string;
  Product?: string;
}
interface Agent {
  agentId: string;
  peer: string;
  connectedAt: number;
  header: Omit<RawDataObject, 'Data' | 'AgentID'>;
  detail: Record<string, unknown>;
  records: number;
  call: grpcjs.ServerDuplexStream<RawDataObject, unknown>;
}

const agents = new Map<string, Agent>();
let records = 0;
let calls = 0;
let openCalls = 0;

function transfer(call: grpcjs.ServerDuplexStream<RawDataObject, unknown>): void {
  calls++;
  openCalls++;
  let agent: Agent | undefined;
  const cleanup = () => {
    openCalls--;
    if (agent && agents.get(agent.agentId) === agent) agents.delete(agent.agentId);
  };
  call.on('data', (raw: RawDataObject) => {
    if (!agent) {
      const agentId = raw.AgentID ?? '';
      if (!acceptAgentId(call, agentId)) return;
      const { Data: _data, AgentID: _id, ...header } = raw;
      agent = {
        agentId,
        peer: call.getPeer(),
        connectedAt: Date.now(),
        header,
        detail: {},
        records: 0,
        call,
      };
      agents.set(agentId, agent);
    }
    const data = raw.Data ?? [];
    for (const r of data) {
      if (r.DataType === 1000 && r.Body) {
        try {
          const fields =
            (Item.toObject(Item.decode(r.Body)) as { Fields?: Record<string, string> }).Fields ?? {};
          agent.detail = {
            ...fields,
            agent_id: agent.agentId,
            last_heartbeat_time: Math.floor(Date.now() / 1000),
          };
        } catch {
          // forwarded anyway, as ours does
        }
      }
    }
    agent.records += data.length;
    records += data.length;
  });
  onCallClosed(call, cleanup);
}

const { server, port } = await listenTransfer(transferService, transfer, {
  pkiDir,
  host: values.host,
  port: values.port,
});
const loopLag = loopLagMeter();

function stats(): ServerStats & { loopLagP99Ms: number; loopLagMaxMs: number } {
  return { records, calls, openCalls, agents: agents.size, ...loopLag(), ...processStats() };
}

/** Writes one Command to each listed agent's open call (bench:fleet's command delivery). */
function command(c: Record<string, unknown>): { counts: Record<string, number> } {
  const ids = Array.isArray(c.agent_ids) ? (c.agent_ids as string[]) : [];
  const counts: Record<string, number> = { sent: 0, not_connected: 0 };
  for (const id of ids) {
    const agent = agents.get(id);
    if (!agent) {
      counts.not_connected!++;
      continue;
    }
    agent.call.write(c.command);
    counts.sent!++;
  }
  return { counts };
}

serveServerCommands(stats, () => server.forceShutdown(), { command });
const version = (createRequire(import.meta.url)('@grpc/grpc-js/package.json') as { version: string }).version;
reply({ port, pid: process.pid, nofile: openFileLimit() ?? null, impl: `@grpc/grpc-js ${version}` });
