/**
 * Interop with an independent gRPC implementation: @grpc/grpc-js opens Transfer over mTLS,
 * streams RawData and receives Commands from the gateway.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as grpcjs from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { encodeItem } from '../../gateway/agent/item.js';
import { startTestGateway, waitFor } from '../helpers/gateway.js';

const protoPath = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../proto/elkeid.proto');
const def = protoLoader.loadSync(protoPath, { keepCase: true, longs: Number, defaults: true });
// biome-ignore lint/suspicious/noExplicitAny: grpc-js service constructors are untyped
const pkg = grpcjs.loadPackageDefinition(def).grpc as any;

function client(port: number, tls: { ca: string; cert: string; key: string }) {
  const creds = grpcjs.credentials.createSsl(
    Buffer.from(tls.ca),
    Buffer.from(tls.key),
    Buffer.from(tls.cert),
  );
  return new pkg.Transfer(`127.0.0.1:${port}`, creds, {
    'grpc.ssl_target_name_override': 'elkeid.com',
    'grpc.default_authority': 'elkeid.com',
  });
}

test('grpc-js client streams RawData, the gateway registers the agent and pushes a command', async (t) => {
  const g = await startTestGateway(t);
  const c = client(g.address.port, g.tls);
  t.after(() => c.close());
  const call = c.Transfer();
  const received: unknown[] = [];
  call.on('data', (cmd: unknown) => received.push(cmd));
  call.on('error', () => {});
  call.write({
    AgentID: 'agent-grpcjs-1',
    Hostname: 'host-a',
    Version: '1.9.1.0',
    Product: 'elkeid-agent',
    IntranetIPv4: ['10.0.0.5'],
    Data: [
      {
        DataType: 1000,
        Timestamp: 1700000000,
        Body: encodeItem({ cpu: '0.5', platform_version: '12', state: 'running' }),
      },
      { DataType: 5003, Timestamp: 1700000001, Body: encodeItem({ exe: '/bin/ls' }) },
    ],
  });
  await waitFor(() => g.sink.records === 2, 5000, 'records in the sink');
  const session = g.gateway.sessions.get('agent-grpcjs-1');
  assert.ok(session, 'agent registered by its first AgentID');
  assert.equal(session.detail?.cpu, 0.5);
  assert.equal(session.detail?.platform_version, '12', 'platform_version stays a string');
  assert.deepEqual(session.detail?.intranet_ipv4, ['10.0.0.5']);
  assert.equal(g.sink.batches[0]?.raw.AgentID, 'agent-grpcjs-1');

  const result = await g.gateway.sessions.send('agent-grpcjs-1', {
    Task: { DataType: 1060, Name: 'elkeid-agent', Data: '{}', Token: 'tok-1' },
  });
  assert.equal(result, 'sent');
  await waitFor(() => received.length === 1, 5000, 'command at the client');
  assert.deepEqual(received[0], {
    AgentCtrl: 0,
    Task: { DataType: 1060, Name: 'elkeid-agent', Data: '{}', Token: 'tok-1' },
    Config: [],
  });

  // The client half-closes: the server ends the call with OK.
  const status = new Promise<grpcjs.StatusObject>((resolve) => call.on('status', resolve));
  call.end();
  assert.equal((await status).code, grpcjs.status.OK);
  await waitFor(() => g.gateway.sessions.size === 0, 5000, 'session removed');
});

test('grpc-js gzip-compressed messages are accepted', async (t) => {
  const g = await startTestGateway(t);
  const c = client(g.address.port, g.tls);
  t.after(() => c.close());
  const md = new grpcjs.Metadata();
  const call = c.Transfer(md, { 'grpc.default_compression_algorithm': 2 });
  call.on('error', () => {});
  call.on('data', () => {});
  call.write({ AgentID: 'agent-gzip', Data: [{ DataType: 1, Body: Buffer.alloc(5000, 0x61) }] });
  await waitFor(() => g.sink.records === 1, 5000, 'gzip record');
  assert.equal(g.sink.batches[0]?.raw.Data[0]?.Body?.length, 5000);
  call.end();
});

test('unknown method gets UNIMPLEMENTED', async (t) => {
  const g = await startTestGateway(t);
  const creds = grpcjs.credentials.createSsl(
    Buffer.from(g.tls.ca),
    Buffer.from(g.tls.key),
    Buffer.from(g.tls.cert),
  );
  const generic = new grpcjs.Client(`127.0.0.1:${g.address.port}`, creds, {
    'grpc.ssl_target_name_override': 'elkeid.com',
  });
  t.after(() => generic.close());
  const err = await new Promise<grpcjs.ServiceError>((resolve) => {
    generic.makeUnaryRequest(
      '/grpc.Nope/Nothing',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      (e) => resolve(e as grpcjs.ServiceError),
    );
  });
  assert.equal(err.code, grpcjs.status.UNIMPLEMENTED);
  assert.match(err.details, /unknown method/);
});
