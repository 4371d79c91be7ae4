/**
 * Behaviour of `/grpc.Transfer/Transfer` and `/grpc.FileExt/Upload` against a started gateway,
 * driven by the raw Elkeid-agent client (and grpc-js for uploads): duplicate IDs, the connection
 * limit, command delivery results, heartbeats, config push, backpressure, graceful shutdown.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { ClientHttp2Session } from 'node:http2';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as grpcjs from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { decodeItem, encodeItem } from '../../gateway/agent/item.js';
import { Status } from '../../gateway/grpc/status.js';
import { MemorySink } from '../../gateway/ingest/memory-sink.js';
import { connectAgent, openTransfer, type TransferStream } from '../../loadtest/agent/raw-agent.js';
import type { grpc } from '../../proto/gen/elkeid.js';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { metricValue } from '../helpers/metrics.js';
import { sleep, within } from '../helpers/time.js';

async function session(t: TestContext, g: TestGateway): Promise<ClientHttp2Session> {
  const s = await connectAgent(g.address, g.tls);
  t.after(() => s.destroy());
  return s;
}

function rec(dataType: number, fields: Record<string, string>, ts = 1_700_000_000): grpc.Record.$Properties {
  return { DataType: dataType, Timestamp: ts, Body: encodeItem(fields) };
}

/** Opens a Transfer and sends a first message; resolves once the gateway has the session. */
async function agent(
  g: TestGateway,
  s: ClientHttp2Session,
  agentId: string,
  first: grpc.RawData.$Properties = {},
): Promise<TransferStream> {
  const t = openTransfer(s);
  t.send({ AgentID: agentId, Data: [rec(5003, { hello: agentId })], ...first });
  await waitFor(() => g.gateway.sessions.get(agentId)?.live === true, 3000, `${agentId} attached`);
  return t;
}

test('duplicate AgentID: the newest stream wins, the old one ends with ABORTED within 1 s', async (t) => {
  const g = await startTestGateway(t);
  const s1 = await session(t, g);
  const s2 = await session(t, g);
  const old = await agent(g, s1, 'dup-agent');
  const replacedAt = Date.now();
  const fresh = await agent(g, s2, 'dup-agent', { Hostname: 'new-host' });
  const st = await within(old.status, 1000, 'old stream status');
  assert.ok(Date.now() - replacedAt < 1000);
  assert.equal(st.code, Status.ABORTED, st.message);
  const current = g.gateway.sessions.get('dup-agent');
  assert.equal(current?.peer, `127.0.0.1:${s2.socket.localPort}`, 'the session is the new connection');
  assert.equal(current?.header.hostname, 'new-host');
  assert.equal(g.gateway.sessions.size, 1);
  assert.equal(await metricValue(g.gateway.metrics.registry, 'fleetgate_agent_replaced_total'), 1);
  // The new stream keeps working, and commands go to it.
  fresh.send({ AgentID: 'dup-agent', Data: [rec(5003, { n: 'after' })] });
  await waitFor(() => g.sink.records === 3, 3000, 'record after replacement');
  assert.equal(
    await g.gateway.sessions.send('dup-agent', { Task: { Name: 'p', Token: 'after-replace' } }),
    'sent',
  );
  await waitFor(() => fresh.commands.length === 1, 3000, 'command on the new stream');
  assert.equal(old.commands.length, 0);
  fresh.stream.end();
});

test('connection limit: the third Transfer gets RESOURCE_EXHAUSTED before sending anything', async (t) => {
  const g = await startTestGateway(t, { config: { maxConnections: 2 } });
  const s = await session(t, g);
  const a = await agent(g, s, 'limit-a');
  // The second slot is taken by a stream that has not sent its first message yet.
  const b = openTransfer(s);
  await waitFor(() => g.gateway.sessions.reserved === 2, 3000, 'two slots reserved');
  const c = openTransfer(s);
  const st = await within(c.status, 2000, 'third stream status');
  assert.equal(st.code, Status.RESOURCE_EXHAUSTED);
  assert.equal(st.message, 'out of max connection limit');
  assert.equal(st.httpStatus, 200);
  assert.equal(
    await metricValue(g.gateway.metrics.registry, 'fleetgate_agent_refusals_total', {
      reason: 'connection_limit',
    }),
    1,
  );
  // A freed slot is usable again.
  a.stream.end();
  assert.equal((await a.status).code, Status.OK);
  await waitFor(() => g.gateway.sessions.reserved === 1, 3000, 'slot released');
  await agent(g, s, 'limit-d');
  b.send({ AgentID: 'limit-b', Data: [] });
  await waitFor(() => g.gateway.sessions.get('limit-b') !== undefined, 3000, 'b attached');
});

test('command delivery: sent, not_connected, close on request', async (t) => {
  const g = await startTestGateway(t);
  const s = await session(t, g);
  const a = await agent(g, s, 'cmd-agent');
  const task = { Task: { DataType: 1051, Name: 'elkeid-agent', Data: '{"idc":"x"}', Token: 'tok-9' } };
  assert.equal(await g.gateway.sessions.send('cmd-agent', task), 'sent');
  await waitFor(() => a.commands.length === 1, 3000, 'command decoded by the agent');
  assert.equal(a.commands[0]?.Task?.Token, 'tok-9');
  assert.equal(a.commands[0]?.Task?.DataType, 1051);
  assert.equal(await g.gateway.sessions.send('nobody', task), 'not_connected');
  assert.equal(
    await metricValue(g.gateway.metrics.registry, 'fleetgate_commands_total', { result: 'sent' }),
    1,
  );
  assert.equal(
    await metricValue(g.gateway.metrics.registry, 'fleetgate_commands_total', { result: 'not_connected' }),
    1,
  );

  assert.equal(g.gateway.sessions.close('nobody'), false);
  assert.equal(g.gateway.sessions.close('cmd-agent'), true);
  const st = await within(a.status, 2000, 'status after close');
  assert.equal(st.code, Status.OK, st.message);
  await waitFor(() => g.gateway.sessions.get('cmd-agent') === undefined, 2000, 'session removed');
  assert.equal(await g.gateway.sessions.send('cmd-agent', task), 'not_connected');
});

// Regression: the final status was lost when a RST_STREAM was queued before the trailers
// (gateway/grpc/server-call.ts now resets only after the trailers are sent).
test('the final status reaches an agent that has already received a command', async (t) => {
  const g = await startTestGateway(t);
  const s1 = await session(t, g);
  const s2 = await session(t, g);
  const s3 = await session(t, g);
  const cmd = { Task: { DataType: 1051, Name: 'elkeid-agent', Data: '{}', Token: 't' } };

  const old = await agent(g, s1, 'replaced-after-cmd');
  assert.equal(await g.gateway.sessions.send('replaced-after-cmd', cmd), 'sent');
  await waitFor(() => old.commands.length === 1, 3000, 'command received');
  const fresh = await agent(g, s2, 'replaced-after-cmd');
  const replaced = await within(old.status, 2000, 'replaced stream status');
  assert.equal(replaced.code, Status.ABORTED, `replacement: ${replaced.message}`);

  const other = await agent(g, s3, 'drained-after-cmd');
  assert.equal(await g.gateway.sessions.send('drained-after-cmd', cmd), 'sent');
  await waitFor(() => other.commands.length === 1, 3000, 'command received');
  await g.gateway.shutdown(1000);
  for (const [name, a] of [
    ['drained-after-cmd', other],
    ['replaced-after-cmd (new)', fresh],
  ] as const) {
    const st = await within(a.status, 2000, `${name} status`);
    assert.equal(st.code, Status.UNAVAILABLE, `shutdown of ${name}: ${st.message}`);
  }
});

/** A Config whose Detail is far larger than the agent's 64 KiB HTTP/2 stream window. */
function bigConfig(tag: string): grpc.Command.$Properties {
  return { Config: [{ Name: 'collector', Version: tag, Detail: 'x'.repeat(1024 * 1024) }] };
}

test('command delivery: queue_full when the agent stops reading', async (t) => {
  const g = await startTestGateway(t, { sessionLimits: { commandQueue: 1, commandTimeoutMs: 2000 } });
  const s = await session(t, g);
  const a = await agent(g, s, 'slow-reader');
  a.stream.pause();
  const first = g.gateway.sessions.send('slow-reader', bigConfig('1'));
  assert.equal(await g.gateway.sessions.send('slow-reader', bigConfig('2')), 'queue_full');
  // The agent reads again: the first command flushes and is delivered whole.
  a.stream.resume();
  assert.equal(await first, 'sent');
  await waitFor(() => a.commands.length === 1, 3000, 'big command received');
  assert.equal(a.commands[0]?.Config[0]?.Detail?.length, 1024 * 1024);
  assert.equal(a.commands[0]?.Config[0]?.Version, '1');
  assert.equal(await g.gateway.sessions.send('slow-reader', bigConfig('3')), 'sent');
});

test('command delivery: timed_out when the agent stops reading', async (t) => {
  const g = await startTestGateway(t, { sessionLimits: { commandQueue: 1, commandTimeoutMs: 300 } });
  const s = await session(t, g);
  const a = await agent(g, s, 'stalled');
  a.stream.pause();
  const started = Date.now();
  assert.equal(await g.gateway.sessions.send('stalled', bigConfig('1')), 'timed_out');
  assert.ok(Date.now() - started >= 290);
  assert.equal(
    await metricValue(g.gateway.metrics.registry, 'fleetgate_commands_total', { result: 'timed_out' }),
    1,
  );
  // Like Elkeid's "sent but get results timed out": the frame is still queued, not withdrawn,
  // and reaches the agent once it reads again.
  a.stream.resume();
  await waitFor(() => a.commands.length === 1, 3000, 'command eventually received');
});

/** The 40 fields of an Elkeid agent heartbeat (docs/elkeid-protocol.md §1.9), as the agent formats them. */
const HEARTBEAT: Record<string, string> = {
  kernel_version: '5.15.0-91-generic',
  arch: 'x86_64',
  platform: 'ubuntu',
  platform_family: 'debian',
  platform_version: '22.04',
  state: 'running',
  state_detail: '[]',
  idc: 'default',
  region: 'default',
  net_mode: 'sd',
  rx_speed: '1234.56789012',
  tx_speed: '987.65432100',
  cpu: '0.01234567',
  rss: '45678592',
  read_speed: '0.00000000',
  write_speed: '4096.00000000',
  pid: '1234',
  nfd: '37',
  start_time: '1700000000',
  tx_tps: '1.50000000',
  rx_tps: '0.75000000',
  du: '10485760',
  ngr: '42',
  nproc: '8',
  total_mem: '16777216000',
  load_1: '0.12000000',
  load_5: '0.08000000',
  load_15: '0.05000000',
  running_procs: '3',
  total_procs: '250',
  host_serial: '00123456789',
  host_id: '20240101',
  host_model: '7920',
  host_vendor: 'Dell Inc.',
  dns: '8.8.8.8,1.1.1.1',
  gateway: '10.0.0.1',
  cpu_name: 'Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz',
  boot_time: '1699990000',
  cpu_usage: '0.05123456',
  mem_usage: '0.41234567',
};
const STRING_FIELDS = new Set([
  'kernel_version',
  'arch',
  'platform',
  'platform_family',
  'platform_version',
  'state',
  'state_detail',
  'idc',
  'region',
  'net_mode',
  'host_serial',
  'host_id',
  'host_model',
  'host_vendor',
  'dns',
  'gateway',
  'cpu_name',
]);

test('agent heartbeat 1000 fills the session detail: numbers for numeric fields, strings kept', async (t) => {
  assert.equal(Object.keys(HEARTBEAT).length, 40);
  const g = await startTestGateway(t);
  const s = await session(t, g);
  const a = await agent(g, s, 'hb-agent', {
    Hostname: 'web-01',
    Version: '1.9.1.0',
    Product: 'elkeid-agent',
    IntranetIPv4: ['10.0.0.5'],
    Data: [rec(1000, HEARTBEAT)],
  });
  const session0 = g.gateway.sessions.get('hb-agent')!;
  await waitFor(() => session0.detail !== undefined, 3000, 'detail');
  const d = session0.detail!;
  for (const [k, v] of Object.entries(HEARTBEAT)) {
    if (STRING_FIELDS.has(k)) assert.equal(d[k], v, `${k} stays the string ${v}`);
    else {
      assert.equal(typeof d[k], 'number', `${k} is a number`);
      assert.equal(d[k], Number(v), k);
    }
  }
  assert.equal(d.agent_id, 'hb-agent');
  assert.equal(d.agent_addr, `127.0.0.1:${s.socket.localPort}`);
  assert.equal(typeof d.create_at, 'number');
  assert.equal(typeof d.last_heartbeat_time, 'number');
  assert.equal(d.version, '1.9.1.0');
  assert.equal(d.hostname, 'web-01');
  assert.equal(d.product, 'elkeid-agent');
  assert.deepEqual(d.intranet_ipv4, ['10.0.0.5']);
  assert.deepEqual(d.extranet_ipv4, [], 'absent lists are []');
  assert.deepEqual(d.intranet_ipv6, []);
  assert.deepEqual(d.extranet_ipv6, []);
  // JSON shape as /conn/stat returns it.
  assert.deepEqual(JSON.parse(JSON.stringify(session0.stat().agent_info)).platform_version, '22.04');
  a.stream.end();
});

test('plugin heartbeat 1001: without name it is counted undecodable and not stored; with name it is', async (t) => {
  const g = await startTestGateway(t);
  const s = await session(t, g);
  const a = await agent(g, s, 'plugin-agent');
  const registry = g.gateway.metrics.registry;
  a.send({ AgentID: 'plugin-agent', Data: [rec(1001, { pversion: '1.0.0', cpu: '0.5' })] });
  await waitFor(() => g.sink.records === 2, 3000, 'nameless plugin heartbeat');
  assert.equal(await metricValue(registry, 'fleetgate_records_undecodable_total', { data_type: '1001' }), 1);
  const sess = g.gateway.sessions.get('plugin-agent')!;
  assert.equal(sess.plugins.size, 0);
  assert.deepEqual(sess.stat().plugins_info, []);

  a.send({
    AgentID: 'plugin-agent',
    Data: [rec(1001, { name: 'collector', pversion: '1.0', cpu: '0.25', rss: '1024', pid: '77' })],
  });
  await waitFor(() => sess.plugins.size === 1, 3000, 'plugin stored');
  const p = sess.plugins.get('collector')!;
  assert.equal(p.pversion, '1.0', 'pversion stays a string');
  assert.equal(p.cpu, 0.25);
  assert.equal(p.rss, 1024);
  assert.equal(typeof p.last_heartbeat_time, 'number');
  assert.equal(await metricValue(registry, 'fleetgate_records_undecodable_total', { data_type: '1001' }), 1);
  a.stream.end();
});

test('config push on the first heartbeat, once per connection', async (t) => {
  const items: grpc.ConfigItem.$Properties[] = [
    {
      Name: 'collector',
      Type: 'exec',
      Version: '1.0',
      SHA256: 'a'.repeat(64),
      Signature: 'a'.repeat(64),
      DownloadURL: ['http://x/collector'],
      Detail: '{}',
    },
  ];
  const asked: Array<Record<string, unknown>> = [];
  const g = await startTestGateway(t, {
    configSource: {
      configFor: async (detail) => {
        asked.push(detail);
        return items;
      },
    },
  });
  const s = await session(t, g);
  // The first message carries no heartbeat: no push yet (Elkeid pushes on the first 1000).
  const a = await agent(g, s, 'cfg-agent');
  await sleep(150);
  assert.equal(a.commands.length, 0);
  assert.equal(asked.length, 0);

  a.send({ AgentID: 'cfg-agent', Data: [rec(1000, HEARTBEAT)] });
  await waitFor(() => a.commands.length === 1, 3000, 'config command');
  const cmd = a.commands[0]!;
  assert.equal(cmd.Task, null, 'no Task (a Task would make the agent ignore Config)');
  assert.equal(cmd.Config.length, 1);
  assert.equal(cmd.Config[0]?.Name, 'collector');
  assert.equal(cmd.Config[0]?.Version, '1.0');
  assert.deepEqual(cmd.Config[0]?.DownloadURL, ['http://x/collector']);
  assert.equal(asked[0]?.agent_id, 'cfg-agent');
  assert.equal(asked[0]?.kernel_version, HEARTBEAT.kernel_version);

  a.send({ AgentID: 'cfg-agent', Data: [rec(1000, HEARTBEAT)] });
  await waitFor(() => g.sink.records === 3, 3000, 'second heartbeat');
  await sleep(200);
  assert.equal(a.commands.length, 1, 'not pushed again on the second heartbeat');
  assert.equal(asked.length, 1);
  a.stream.end();
});

test('backpressure: a full sink stalls the stream, nothing is lost once it drains', async (t) => {
  const sink = new MemorySink(1);
  const g = await startTestGateway(t, { sink });
  const s = await session(t, g);
  const stream = openTransfer(s);
  const MESSAGES = 100;
  const PER_MESSAGE = 10;
  // A distinct random body per record (snappy would shrink repeats to nothing): ~1 MB on the
  // wire, far more than the 64 KiB HTTP/2 stream window plus Node's buffers.
  const body = () => randomBytes(750).toString('base64');
  for (let m = 0; m < MESSAGES; m++) {
    stream.send({
      AgentID: 'bp-agent',
      Data: Array.from({ length: PER_MESSAGE }, (_, i) =>
        rec(5003, { seq: String(m * PER_MESSAGE + i), body: body() }),
      ),
    });
  }
  await waitFor(() => sink.stalls === 1, 3000, 'sink stalled');
  const registry = g.gateway.metrics.registry;
  const method = { method: '/grpc.Transfer/Transfer' };
  const readAtStall = await metricValue(registry, 'fleetgate_grpc_messages_received_total', method);
  await sleep(400);
  // The gateway decodes nothing more while the sink holds its write ...
  assert.equal(await metricValue(registry, 'fleetgate_grpc_messages_received_total', method), readAtStall);
  assert.equal(sink.batches.length, 1, 'one batch handed to the sink, then the stall');
  // ... and HTTP/2 flow control keeps the rest on the agent's side.
  assert.ok(
    stream.stream.writableLength > 500_000,
    `agent still holds ${stream.stream.writableLength} bytes`,
  );

  const seen: string[] = [];
  while (seen.length < MESSAGES * PER_MESSAGE) {
    for (const b of sink.take()) {
      for (const r of b.raw.Data) {
        seen.push(decodeItem(r.Body ?? new Uint8Array()).seq ?? '?');
      }
    }
    await sleep(2);
    if (stream.stream.closed) break;
  }
  assert.equal(seen.length, MESSAGES * PER_MESSAGE, 'every record arrived');
  assert.deepEqual(
    seen.map(Number),
    Array.from({ length: MESSAGES * PER_MESSAGE }, (_, i) => i),
    'in order, no duplicates',
  );
  assert.equal(stream.stream.writableLength, 0, 'the agent flushed everything');
  assert.ok(sink.stalls >= MESSAGES - 1);
  stream.stream.end();
  assert.equal((await stream.status).code, Status.OK);
});

test('graceful shutdown with live agents: UNAVAILABLE, nothing read is lost, new connections refused', async (t) => {
  const g = await startTestGateway(t);
  const AGENTS = 5;
  const agents: Array<{ id: string; t: TransferStream; sent: number; timer?: NodeJS.Timeout }> = [];
  for (let i = 0; i < AGENTS; i++) {
    const s = await session(t, g);
    const id = `drain-${i}`;
    const a = { id, t: openTransfer(s), sent: 0 } as (typeof agents)[number];
    agents.push(a);
    const tick = () => {
      if (a.t.stream.closed || a.t.stream.destroyed) return;
      a.t.send({ AgentID: id, Data: [rec(5003, { seq: String(a.sent) })] });
      a.sent++;
      a.timer = setTimeout(tick, 5);
    };
    tick();
  }
  t.after(() => {
    for (const a of agents) clearTimeout(a.timer);
  });
  const received = (id: string) => g.sink.batches.filter((b) => b.agentId === id).length;
  await waitFor(() => agents.every((a) => received(a.id) >= 20), 5000, 'agents streaming');

  // Each agent keeps writing while the gateway drains.
  const sentAtShutdown = agents.map((a) => a.sent);
  const shutdown = g.gateway.shutdown(2000);
  // New connections are refused as soon as the drain has begun.
  await assert.rejects(connectAgent(g.address, g.tls), 'a new connection after shutdown began');
  await shutdown;

  const statuses = await Promise.all(agents.map((a) => within(a.t.status, 3000, `${a.id} status`)));
  for (const st of statuses) {
    assert.equal(st.code, Status.UNAVAILABLE, st.message);
    assert.equal(st.message, 'server shutting down');
  }
  // "Read" = the gateway decoded the message from the stream (counted in
  // fleetgate_grpc_messages_received_total). Every message read is in the sink: the gateway ends
  // each stream only after the messages it has read are handed over. Messages still in flight on
  // the wire (written by the agent, not yet read) are not acknowledged and are lost, as in Elkeid.
  const read = await metricValue(g.gateway.metrics.registry, 'fleetgate_grpc_messages_received_total', {
    method: '/grpc.Transfer/Transfer',
  });
  assert.equal(g.sink.batches.length, read, 'every message read reached the sink');
  agents.forEach((a, i) => {
    const seqs = g.sink.batches
      .filter((b) => b.agentId === a.id)
      .map((b) => Number(decodeItem(b.raw.Data[0]!.Body!).seq));
    // What arrived is exactly the first N records the agent wrote: no gap, no duplicate.
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, k) => k),
      `${a.id}: a prefix of what it sent`,
    );
    assert.ok(seqs.length <= a.sent);
    // Everything written well before the drain (more than the in-flight margin) had been read.
    assert.ok(seqs.length >= (sentAtShutdown[i] ?? 0) - 5, `${a.id}: ${seqs.length} of ${sentAtShutdown[i]}`);
  });
});

// --- FileExt.Upload with an independent client (grpc-js) --------------------------------------

const protoPath = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../proto/elkeid.proto');
const def = protoLoader.loadSync(protoPath, { keepCase: true, longs: Number, enums: String, defaults: true });
// biome-ignore lint/suspicious/noExplicitAny: grpc-js service constructors are untyped
const pkg = grpcjs.loadPackageDefinition(def).grpc as any;

function upload(
  t: TestContext,
  g: TestGateway,
  chunks: Array<{ Token: string; Data: Buffer }>,
): Promise<{ err: grpcjs.ServiceError | null; status: string | undefined }> {
  const creds = grpcjs.credentials.createSsl(
    Buffer.from(g.tls.ca),
    Buffer.from(g.tls.key),
    Buffer.from(g.tls.cert),
  );
  const client = new pkg.FileExt(`127.0.0.1:${g.address.port}`, creds, {
    'grpc.ssl_target_name_override': 'elkeid.com',
  });
  t.after(() => client.close());
  return new Promise((resolve) => {
    const call = client.Upload((err: grpcjs.ServiceError | null, res?: { Status: string }) =>
      resolve({ err, status: res?.Status }),
    );
    for (const c of chunks) call.write(c);
    call.end();
  });
}

test('FileExt Upload: three chunks are stored under uploads/<token>', async (t) => {
  const g = await startTestGateway(t);
  const token = 'c5mej1rc77ubvhrfifkg';
  const parts = [Buffer.from('first chunk\n'), Buffer.alloc(70_000, 0x42), Buffer.from('last\n')];
  const r = await upload(
    t,
    g,
    parts.map((Data, i) => ({ Token: i === 0 ? token : '', Data })),
  );
  assert.equal(r.err, null);
  assert.equal(r.status, 'SUCCESS');
  const file = path.join(g.dataDir, 'uploads', token);
  assert.deepEqual(readFileSync(file), Buffer.concat(parts));
  const result = g.gateway.uploads.get(token);
  assert.equal(result?.status, 'succeed');
  assert.equal(result?.size, 12 + 70_000 + 5);
  assert.equal(result?.data_type, '5100');
  assert.ok(!existsSync(`${file}.part`));
});

test('FileExt Upload over the size limit answers FAILED and keeps nothing', async (t) => {
  const g = await startTestGateway(t, { maxUploadBytes: 1000 });
  const token = 'too-big-1';
  const r = await upload(t, g, [
    { Token: token, Data: Buffer.alloc(600, 1) },
    { Token: token, Data: Buffer.alloc(600, 2) },
    { Token: token, Data: Buffer.alloc(600, 3) },
  ]);
  assert.equal(r.err, null);
  assert.equal(r.status, 'FAILED');
  assert.equal(g.gateway.uploads.get(token)?.status, 'failed');
  const dir = path.join(g.dataDir, 'uploads');
  assert.deepEqual(
    readdirSync(dir).filter((f) => f !== 'results.jsonl'),
    [],
    'no file or .part left',
  );
});

test('FileExt Upload with token ../evil is INVALID_ARGUMENT and writes nothing outside', async (t) => {
  const g = await startTestGateway(t);
  const before = readdirSync(g.dataDir).sort();
  const r = await upload(t, g, [{ Token: '../evil', Data: Buffer.from('pwned') }]);
  assert.equal(r.err?.code, grpcjs.status.INVALID_ARGUMENT);
  assert.equal(r.status, undefined);
  assert.deepEqual(readdirSync(g.dataDir).sort(), before);
  assert.ok(!existsSync(path.join(g.dataDir, 'evil')));
  assert.ok(!existsSync(path.join(g.dataDir, 'evil.part')));
  assert.deepEqual(
    readdirSync(path.join(g.dataDir, 'uploads')).filter((f) => f !== 'results.jsonl'),
    [],
  );
  assert.equal(g.gateway.uploads.get('../evil'), undefined);
});
