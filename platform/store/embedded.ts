/**
 * The embedded DynamoDB API: dynalite in this process, its LevelDB files on disk (docs/environment.md:
 * `<dataDir>/dynamodb`). What `fleetgate all` and `fleetgate discovery` use when no DynamoDB
 * endpoint or AWS region is configured, and what the tests start.
 *
 * dynalite checks no credentials: whoever can connect to it owns every table (users, password
 * hashes, API keys). So the roles run it on a unix socket in a 0700 directory of the data dir
 * (store/private-socket.ts): only this account (and root) can connect, never another local user.
 * The loopback TCP listener (no `socketPath`) exists for tests and benchmarks only, which hand
 * the endpoint to child processes.
 *
 * dynalite is an emulator: no transactions, no TTL expiry (readers filter expired items), no
 * streams, and GSI reads are immediately consistent. The schema and access rules of the project
 * keep to what it has.
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

type DynaliteFactory = (options: {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}) => Server;

export interface EmbeddedDynamoOptions {
  /** LevelDB directory (created if missing). Undefined: in memory, nothing survives close(). */
  dir?: string | undefined;
  /**
   * Listen on this unix socket instead of TCP (its directory must be private: 0700). The roles'
   * mode; the socket file is replaced if a dead one is left over.
   */
  socketPath?: string;
  /** TCP only (tests, benchmarks). Defaults to 127.0.0.1. */
  host?: string;
  /** Defaults to 0 (a free port). */
  port?: number;
  /** How long a created table stays CREATING (dynalite's default is 500 ms). Default 20 ms. */
  createTableMs?: number;
  logger?: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

export interface EmbeddedDynamo {
  /** `http://127.0.0.1:<port>`; with a unix socket `http://localhost` (connect with `socketPath`). */
  readonly endpoint: string;
  /** 0 on a unix socket. */
  readonly port: number;
  /** Set when listening on a unix socket: clients connect here (createDynamoClient's socketPath). */
  readonly socketPath: string | undefined;
  /** True when data is on disk; false when running in memory. */
  readonly persistent: boolean;
  /** Stops listening, drops open connections, closes LevelDB (releasing its LOCK file). */
  close(): Promise<void>;
}

/** `<dataDir>/dynamodb`, the embedded store's directory by contract. */
export function embeddedDynamoDir(dataDir: string): string {
  return path.join(dataDir, 'dynamodb');
}

const require = createRequire(import.meta.url);
/** Longest close() waits for requests in progress before cutting their connections. */
const CLOSE_GRACE_MS = 5000;
/** Pause between the last response and closing LevelDB, for iterators still reading ahead. */
const READ_AHEAD_QUIET_MS = 50;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Loaded {
  dynalite: DynaliteFactory;
  /** Why disk mode is impossible, when it is. */
  diskError?: unknown;
}

let loaded: Loaded | undefined;

/**
 * dynalite loads LevelDB's native binding (classic-level, prebuilt for linux/darwin/win32 x64
 * and arm64) when it is required. If that binding cannot load on this machine, dynalite cannot
 * load at all; we then substitute its in-memory backend (memory-level) for LevelDB so that a
 * single-machine install still starts, and the caller logs loudly that nothing is persisted.
 */
function loadDynalite(): Loaded {
  if (loaded) return loaded;
  try {
    require('classic-level');
    loaded = { dynalite: require('dynalite') as DynaliteFactory };
  } catch (diskError) {
    const fromDynalite = createRequire(require.resolve('dynalite'));
    const { MemoryLevel } = fromDynalite('memory-level') as {
      MemoryLevel: new (opts: object) => object;
    };
    class InMemoryLevel extends MemoryLevel {
      constructor(_location: string, opts: object) {
        super(opts);
      }
    }
    const levelPath = fromDynalite.resolve('level');
    const stub = new (require('node:module') as { Module: new (id: string) => NodeJS.Module }).Module(
      levelPath,
    );
    stub.filename = levelPath;
    stub.loaded = true;
    stub.exports = { Level: InMemoryLevel };
    require.cache[levelPath] = stub;
    loaded = { dynalite: require('dynalite') as DynaliteFactory, diskError };
  }
  return loaded;
}

/**
 * Starts dynalite and checks that it answers (LevelDB opens lazily, so a directory locked by
 * another process shows up only at the first request: here, not at the first registration).
 */
export async function startEmbeddedDynamo(opts: EmbeddedDynamoOptions = {}): Promise<EmbeddedDynamo> {
  const { dynalite, diskError } = loadDynalite();
  let dir = opts.dir;
  if (dir !== undefined && diskError !== undefined) {
    opts.logger?.error(
      { err: diskError, dir },
      'EMBEDDED DYNAMODB RUNS IN MEMORY: the LevelDB native binding (classic-level) did not load on ' +
        'this machine, so the registry, agents, tasks and users are LOST when this process stops. ' +
        'Set FLEETGATE_DYNAMODB_ENDPOINT or AWS_REGION to use a real DynamoDB API.',
    );
    dir = undefined;
  }
  if (dir !== undefined) {
    // Password hashes, API key hashes, tasks: private to this account (LevelDB's files follow
    // the process umask, which the CLI sets to 077; run.ts).
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    await assertLevelDbFree(dir);
  }
  const server = dynalite({
    ...(dir !== undefined ? { path: dir } : {}),
    createTableMs: opts.createTableMs ?? 20,
    deleteTableMs: opts.createTableMs ?? 20,
    updateTableMs: opts.createTableMs ?? 20,
  });
  const host = opts.host ?? '127.0.0.1';
  const socketPath = opts.socketPath;
  // LevelDB's lock (above) proves no other store runs on this data dir: a socket file left
  // here is a dead one from a crash.
  if (socketPath !== undefined) rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const listening = () => {
      server.off('error', reject);
      resolve();
    };
    if (socketPath !== undefined) server.listen(socketPath, listening);
    else server.listen(opts.port ?? 0, host, listening);
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const endpoint = socketPath !== undefined ? 'http://localhost' : `http://${host}:${port}`;

  // dynalite closes LevelDB as soon as its HTTP server has closed. A Query or Scan reads ahead
  // through a LevelDB iterator even after its response is sent; if the database closes under a
  // read-ahead, the stream emits an 'error' nobody listens to and the process dies. So close()
  // first refuses new requests (503, which SDK clients retry elsewhere or fail on), lets started
  // ones finish, waits a quiet moment for read-ahead, and only then closes the server.
  const dynaliteHandlers = server.listeners('request') as Array<
    (req: IncomingMessage, res: ServerResponse) => void
  >;
  server.removeAllListeners('request');
  let active = 0;
  let closing = false;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (closing) {
      res.writeHead(503, { connection: 'close', 'content-type': 'application/x-amz-json-1.0' });
      res.end('{"__type":"com.amazonaws.dynamodb.v20120810#ServiceUnavailable","message":"closing"}');
      return;
    }
    active++;
    res.once('close', () => active--);
    for (const h of dynaliteHandlers) h.call(server, req, res);
  });
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      const deadline = Date.now() + CLOSE_GRACE_MS;
      while (active > 0 && Date.now() < deadline) await sleep(10);
      await sleep(READ_AHEAD_QUIET_MS);
      await new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Idle keep-alive connections of SDK clients would otherwise hold close() open.
        server.closeAllConnections();
      });
    })();
    return closed;
  };

  try {
    await probeEmbeddedDynamo(socketPath !== undefined ? { socketPath } : { port, host });
  } catch (err) {
    await close().catch(() => {});
    throw new Error(`embedded DynamoDB did not answer: ${(err as Error).message}`, { cause: err });
  }
  opts.logger?.info(
    socketPath !== undefined ? { socketPath, dir: dir ?? 'memory' } : { endpoint, dir: dir ?? 'memory' },
    socketPath !== undefined
      ? 'embedded DynamoDB (dynalite) on a private unix socket'
      : 'embedded DynamoDB (dynalite) listening on loopback TCP (tests and benchmarks only)',
  );
  return { endpoint, port, socketPath, persistent: dir !== undefined, close };
}

/**
 * dynalite opens LevelDB lazily and, when the directory is locked by another process, fails inside
 * a stream with an unhandled 'error' event that kills the process. Opening it once here first
 * turns that into an ordinary error with a clear message.
 */
async function assertLevelDbFree(dir: string): Promise<void> {
  const { ClassicLevel } = require('classic-level') as {
    ClassicLevel: new (location: string) => { open(): Promise<void>; close(): Promise<void> };
  };
  const db = new ClassicLevel(dir);
  try {
    await db.open();
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    const locked = cause?.code === 'LEVEL_LOCKED';
    throw new Error(
      locked
        ? `embedded DynamoDB: ${dir} is in use by another process (LevelDB allows one process per directory)`
        : `embedded DynamoDB: cannot open LevelDB in ${dir}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  await db.close();
}

/**
 * One ListTables request, signed with dummy credentials (dynalite checks only their presence),
 * over TCP or the unix socket. Also how `fleetgate users` finds a running store's socket alive.
 */
export function probeEmbeddedDynamo(
  to: { socketPath: string } | { port: number; host: string },
  timeoutMs = 10_000,
): Promise<void> {
  const body = '{}';
  return new Promise<void>((resolve, reject) => {
    const req = http.request(
      {
        ...to,
        method: 'POST',
        path: '/',
        headers: {
          host: 'localhost',
          'content-type': 'application/x-amz-json-1.0',
          'content-length': Buffer.byteLength(body),
          'x-amz-target': 'DynamoDB_20120810.ListTables',
          authorization:
            'AWS4-HMAC-SHA256 Credential=fleetgate/20200101/us-east-1/dynamodb/aws4_request, ' +
            'SignedHeaders=host;x-amz-date;x-amz-target, Signature=00',
          'x-amz-date': '20200101T000000Z',
          connection: 'close',
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode === 200) resolve();
          else reject(new Error(`ListTables answered ${res.statusCode}: ${text.slice(0, 300)}`));
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
