/**
 * A local stand-in for AWS Secrets Manager's GetSecretValue (JSON 1.1 protocol: POST / with
 * `X-Amz-Target: secretsmanager.GetSecretValue`), enough for the real SDK client to talk to it
 * through AWS_ENDPOINT_URL_SECRETS_MANAGER. Unknown secrets get ResourceNotFoundException.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeSecretsManager {
  endpoint: string;
  /** SecretId -> SecretString; undefined: the secret exists without a value. */
  secrets: Map<string, string | undefined>;
  requests: Array<{ target: string; secretId: string; headers: IncomingHttpHeaders }>;
  close(): Promise<void>;
}

export async function startFakeSecretsManager(
  secrets: Record<string, string | undefined> = {},
): Promise<FakeSecretsManager> {
  const map = new Map(Object.entries(secrets));
  const requests: FakeSecretsManager['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { SecretId?: string };
      const secretId = input.SecretId ?? '';
      requests.push({ target, secretId, headers: req.headers });
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(body));
      };
      if (target !== 'secretsmanager.GetSecretValue') {
        send(400, { __type: 'UnknownOperationException', message: target });
      } else if (!map.has(secretId)) {
        send(400, {
          __type: 'ResourceNotFoundException',
          message: "Secrets Manager can't find the specified secret.",
        });
      } else if (map.get(secretId) === undefined) {
        send(400, {
          __type: 'ResourceNotFoundException',
          message: "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT",
        });
      } else {
        send(200, {
          ARN: secretId,
          Name: secretId.split(':').pop(),
          SecretString: map.get(secretId),
          VersionId: '11111111-2222-3333-4444-555555555555',
          VersionStages: ['AWSCURRENT'],
          CreatedDate: 1779631330.123,
        });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    secrets: map,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
