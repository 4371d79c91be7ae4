/**
 * A recording HTTP proxy in front of a DynamoDB endpoint (dynalite in tests): every request is
 * forwarded unchanged and noted as the IAM action it needs (`dynamodb:<Operation>` from the
 * X-Amz-Target header), the tables it names (TableName, or the keys of RequestItems) and the
 * index it queries. What a process really sends, seen on the wire, whatever module sends it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DynamoCall {
  action: string;
  /** Table names as sent (prefix included). */
  tables: string[];
  index?: string;
}

export interface DynamoRecorder {
  endpoint: string;
  calls: DynamoCall[];
  close(): Promise<void>;
}

function callOf(target: string | undefined, body: string): DynamoCall | undefined {
  const op = /^DynamoDB_\d+\.(\w+)$/.exec(target ?? '')?.[1];
  if (!op) return undefined;
  let json: { TableName?: string; RequestItems?: Record<string, unknown>; IndexName?: string } = {};
  try {
    json = JSON.parse(body) as typeof json;
  } catch {
    // forwarded as is; the endpoint answers the malformed body
  }
  const tables = json.TableName ? [json.TableName] : Object.keys(json.RequestItems ?? {});
  return { action: `dynamodb:${op}`, tables, ...(json.IndexName ? { index: json.IndexName } : {}) };
}

export async function startDynamoRecorder(upstream: string): Promise<DynamoRecorder> {
  const target = new URL(upstream);
  const calls: DynamoCall[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const call = callOf(req.headers['x-amz-target'] as string | undefined, body.toString('utf8'));
      if (call) calls.push(call);
      const out = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: target.host },
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      out.on('error', (err) => {
        res.writeHead(502);
        res.end(String(err));
      });
      out.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
