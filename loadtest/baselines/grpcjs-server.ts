/**
 * The @grpc/grpc-js server both baselines run: mutual TLS through `ServerCredentials.createSsl(ca,
 * pairs, true)` (client certificate required) from Elkeid-named files in `pkiDir`, the Transfer
 * service, messages up to 10 MiB.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpcjs from '@grpc/grpc-js';

/** Starts the server with `transfer` as `/grpc.Transfer/Transfer`; resolves with the bound port. */
export async function listenTransfer<Req, Res>(
  service: grpcjs.ServiceDefinition,
  transfer: (call: grpcjs.ServerDuplexStream<Req, Res>) => void,
  o: { pkiDir: string; host: string; port: string | number },
): Promise<{ server: grpcjs.Server; port: number }> {
  const server = new grpcjs.Server({
    'grpc.max_receive_message_length': 10 * 1024 * 1024,
  });
  server.addService(service, { Transfer: transfer });
  const credentials = grpcjs.ServerCredentials.createSsl(
    readFileSync(path.join(o.pkiDir, 'ca.crt')),
    [
      {
        cert_chain: readFileSync(path.join(o.pkiDir, 'server.crt')),
        private_key: readFileSync(path.join(o.pkiDir, 'server.key')),
      },
    ],
    true,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${o.host}:${o.port}`, credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, port };
}

/**
 * Runs `cleanup` once, however the call ends (the client's end, a cancel, an error, close), and
 * ends our side when the client ends its own.
 */
export function onCallClosed(call: grpcjs.ServerDuplexStream<unknown, unknown>, cleanup: () => void): void {
  let closed = false;
  const once = () => {
    if (closed) return;
    closed = true;
    cleanup();
  };
  call.on('end', () => {
    once();
    call.end();
  });
  call.on('cancelled', once);
  call.on('error', once);
  call.on('close', once);
}

/** Whether `agentId` is one an agent may have; otherwise the call is failed with INVALID_ARGUMENT. */
export function acceptAgentId(call: grpcjs.ServerDuplexStream<unknown, unknown>, agentId: string): boolean {
  if (/^[\x21-\x7e]{1,128}$/.test(agentId)) return true;
  call.emit('error', {
    code: grpcjs.status.INVALID_ARGUMENT,
    details: 'the first message must carry a valid AgentID',
  });
  return false;
}
