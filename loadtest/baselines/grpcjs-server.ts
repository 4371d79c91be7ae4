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
