/**
 * The DynamoDB client of every role, and table creation from the schema module.
 *
 * Timeouts are short on purpose: a role that cannot reach its store must notice in about a
 * second (discovery then serves its last good answer), not after the SDK's default of retrying
 * with no request timeout at all.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  type KeySchemaElement,
  ListTablesCommand,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { TABLES, type TableDef, toCreateTableInput } from './schema.js';

export interface DynamoClientOptions {
  /** An http(s) URL of a DynamoDB API (dynalite, a proxy, a VPC endpoint). Unset: AWS's endpoint. */
  endpoint?: string | undefined;
  /**
   * Connect to this unix socket (the embedded store's private socket) whatever the endpoint's
   * host says; the endpoint then only names the protocol (`http://localhost`).
   */
  socketPath?: string | undefined;
  /** Defaults to `us-east-1` with an endpoint, else the SDK's resolution (AWS_REGION, profile). */
  region?: string | undefined;
  /** Total attempts per call, retries included. Default 3. */
  maxAttempts?: number;
  /** TCP connect timeout per attempt. Default 500 ms. */
  connectTimeoutMs?: number;
  /** Whole request/response per attempt. Default 1500 ms: DynamoDB answers in single-digit ms, but the embedded dynalite on a loaded 2-core machine can take hundreds. */
  requestTimeoutMs?: number;
}

/** Static credentials for an endpoint that does not check them (dynalite checks only presence). */
const DUMMY_CREDENTIALS = { accessKeyId: 'fleetgate', secretAccessKey: 'fleetgate' };

/**
 * With the defaults a dead store fails a call in under 2 s (measured on loopback): a refused
 * connection in ~0.1 s (3 attempts, tens of ms of backoff); a black-holed one in 3 × 0.5 s of
 * connect timeouts; a server that accepts and never answers in 3 × 1.5 s ≈ 4.5 s.
 */
export function createDynamoClient(opts: DynamoClientOptions = {}): DynamoDBClient {
  // The SDK warns on every start that its 2027 releases will need Node 22; the project pins
  // Node 20 deliberately (README) and this version of the SDK supports it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const agentOptions = { keepAlive: true, maxSockets: 64 };
  const useDummyCredentials =
    opts.endpoint !== undefined &&
    process.env.AWS_ACCESS_KEY_ID === undefined &&
    process.env.AWS_PROFILE === undefined;
  const region = opts.region ?? (opts.endpoint !== undefined ? 'us-east-1' : undefined);
  return new DynamoDBClient({
    ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
    ...(region !== undefined ? { region } : {}),
    // An explicit endpoint without AWS credentials in the environment is a local emulator: the
    // SDK's default chain would otherwise spend seconds probing instance metadata.
    ...(useDummyCredentials ? { credentials: DUMMY_CREDENTIALS } : {}),
    maxAttempts: opts.maxAttempts ?? 3,
    requestHandler: {
      connectionTimeout: opts.connectTimeoutMs ?? 500,
      requestTimeout: opts.requestTimeoutMs ?? 1500,
      throwOnRequestTimeout: true,
      httpAgent:
        opts.socketPath !== undefined
          ? unixSocketAgent(opts.socketPath, agentOptions)
          : new http.Agent(agentOptions),
      httpsAgent: new https.Agent(agentOptions),
    },
  });
}

/** An http.Agent whose every connection goes to `socketPath` (keep-alive pooling as usual). */
function unixSocketAgent(socketPath: string, options: http.AgentOptions): http.Agent {
  const agent = new http.Agent(options);
  // The SDK's NodeHttpHandler passes host/port from the endpoint; the socket replaces both.
  (agent as unknown as { createConnection: typeof net.createConnection }).createConnection = ((
    _opts: unknown,
    cb?: () => void,
  ) => net.createConnection(socketPath, cb)) as typeof net.createConnection;
  return agent;
}

export type TtlState = 'enabled' | 'unsupported' | 'none';

export interface EnsureTablesResult {
  created: string[];
  existing: string[];
  /** Per table with a TTL attribute: whether the store will expire items itself. */
  ttl: Record<string, TtlState>;
}

export interface EnsureTablesOptions {
  /** How long to wait for created tables to become ACTIVE. Default 60 s. */
  timeoutMs?: number;
  pollMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function describeKeys(keys: KeySchemaElement[] | undefined): string {
  return (keys ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(',');
}

/**
 * Creates every missing table of `tables`, waits until each is ACTIVE, and enables TTL where
 * the store supports it. dynalite (4.0.0) has no UpdateTimeToLive and never expires items: that
 * is reported as `unsupported`, and is harmless because every reader filters expired items.
 * An existing table whose key schema differs from the definition is an error (it would fail
 * every write later, far from the cause).
 */
export async function ensureTables(
  client: DynamoDBClient,
  prefix: string,
  tables: readonly TableDef[] = Object.values(TABLES),
  opts: EnsureTablesOptions = {},
): Promise<EnsureTablesResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const pollMs = opts.pollMs ?? 100;
  const present = new Set<string>();
  let start: string | undefined;
  do {
    const page = await client.send(new ListTablesCommand(start ? { ExclusiveStartTableName: start } : {}));
    for (const n of page.TableNames ?? []) present.add(n);
    start = page.LastEvaluatedTableName;
  } while (start);

  const result: EnsureTablesResult = { created: [], existing: [], ttl: {} };
  for (const def of tables) {
    const input = toCreateTableInput(def, prefix);
    const name = input.TableName!;
    if (present.has(name)) {
      result.existing.push(name);
    } else {
      try {
        await client.send(new CreateTableCommand(input));
        result.created.push(name);
      } catch (err) {
        // Another process created it meanwhile (several roles starting at once).
        if (!(err instanceof ResourceInUseException)) throw err;
        result.existing.push(name);
      }
    }
  }

  const deadline = Date.now() + timeoutMs;
  for (const def of tables) {
    const input = toCreateTableInput(def, prefix);
    const name = input.TableName!;
    for (;;) {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
      const want = describeKeys(input.KeySchema);
      const have = describeKeys(Table?.KeySchema);
      if (have !== want) {
        throw new Error(`table ${name} has key schema ${have}, but the schema module defines ${want}`);
      }
      const indexesActive = (Table?.GlobalSecondaryIndexes ?? []).every((i) => i.IndexStatus === 'ACTIVE');
      if (Table?.TableStatus === 'ACTIVE' && indexesActive) break;
      if (Date.now() > deadline) throw new Error(`table ${name} not ACTIVE after ${timeoutMs} ms`);
      await sleep(pollMs);
    }
    if (def.ttl !== undefined) result.ttl[name] = await enableTtl(client, name, def.ttl);
  }
  return result;
}

async function enableTtl(client: DynamoDBClient, table: string, attribute: string): Promise<TtlState> {
  try {
    const { TimeToLiveDescription: d } = await client.send(
      new DescribeTimeToLiveCommand({ TableName: table }),
    );
    if (
      (d?.TimeToLiveStatus === 'ENABLED' || d?.TimeToLiveStatus === 'ENABLING') &&
      d.AttributeName === attribute
    ) {
      return 'enabled';
    }
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: table,
        TimeToLiveSpecification: { AttributeName: attribute, Enabled: true },
      }),
    );
    return 'enabled';
  } catch (err) {
    // dynalite answers UnknownOperationException; expiry is then enforced on read only.
    if ((err as { name?: string }).name === 'UnknownOperationException') return 'unsupported';
    throw err;
  }
}
