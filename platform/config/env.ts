/**
 * The environment of docs/environment.md, parsed once at start into a frozen, typed config.
 * Every problem is collected and reported together, so an operator fixes them in one pass.
 */

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EnvReader, readAdmin, readAksk, readKafka, readSdAddrs } from './env-reader.js';

/**
 * The ingest pipeline's batch window (gateway/ingest/pipeline.ts explains it): at agent rates it
 * lets several agents' batches share one worker hand-off and one Kafka request.
 */
export const DEFAULT_INGEST_BATCH_WINDOW_MS = 20;
/** FLEETGATE_AGGREGATE_MS: default, and its bounds (at most half the readers' 60 s liveness window). */
export const DEFAULT_AGGREGATE_MS = 30_000;
const MIN_AGGREGATE_MS = 100;
const MAX_AGGREGATE_MS = 30_000;

export type IdentityMode = 'fleet' | 'per-agent';

export interface Config {
  dataDir: string;
  pkiDir: string;
  identity: IdentityMode;
  host: string;
  /**
   * Listen address of the manager and control APIs. Defaults to FLEETGATE_HOST, except in
   * `fleetgate all` (the single-machine quick start), which keeps them on 127.0.0.1 unless
   * FLEETGATE_API_HOST says otherwise (serve-command.ts).
   */
  apiHost: string;
  /** FLEETGATE_API_HOST was set. */
  apiHostExplicit: boolean;
  advertiseHost: string;
  grpcPort: number;
  httpPort: number;
  sdPort: number;
  managerPort: number;
  maxConnections: number;
  /**
   * Gateway processes on this host sharing the agent port with SO_REUSEPORT (FLEETGATE_PROCESSES,
   * `fleetgate gateway --processes N`); 1 runs the gateway in this process, as always.
   */
  processes: number;
  /** TLS handshakes in progress at once before new connections are refused (handshake-gate.ts). */
  maxPendingHandshakes: number;
  /** Load control: agent streams ended per second above the desired limit (FLEETGATE_SHED_RATE). */
  shedRate: number;
  /** Load control: which streams go first (FLEETGATE_SHED_ORDER). */
  shedOrder: 'oldest' | 'random';
  /** Tag changes reach MQData.Tag of connected agents within this (FLEETGATE_TAG_REFRESH_MS). */
  tagRefreshMs: number;
  /**
   * A gateway with a store publishes its aggregate (agent counts, ingest load) and re-reads its
   * desired limit this often (FLEETGATE_AGGREGATE_MS); what statistics, the console and rebalance
   * show of a gateway is at most this old.
   */
  aggregateMs: number;
  workers: number;
  /** PipelineOptions.batchWindowMs. */
  ingestBatchWindowMs: number;
  kafkaBrokers: string[];
  kafkaTopic: string;
  kafkaCompression: 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
  /** murmur2: Kafka's default placement; fnv1a: Elkeid's (sarama), for consumers that rely on it. */
  kafkaPartitioner: 'murmur2' | 'fnv1a';
  /** TLS to the brokers (Amazon MSK's TLS listener, 9094). */
  kafkaTls: boolean;
  /** PEM bundle the brokers' certificates are verified against; undefined: Node's default CAs. */
  kafkaCaFile: string | undefined;
  /** Client certificate and key the producer presents to the brokers (MSK mutual TLS). */
  kafkaCertFile: string | undefined;
  kafkaKeyFile: string | undefined;
  dynamodbEndpoint: string | undefined;
  awsRegion: string | undefined;
  tablePrefix: string;
  sdAddrs: string[];
  /** ak -> sk; the first pair signs outgoing calls. Undefined until resolved (generated on first start). */
  aksk: Array<[string, string]> | undefined;
  admin: { name: string; password: string } | undefined;
  logLevel: string;
  /** Days a finished or cancelled task (its subtasks and chunks) is kept (FLEETGATE_TASK_RETENTION_DAYS). */
  taskRetentionDays: number;
}

/** Every variable, its default and meaning; `--help` prints this table. */
export const ENV_DOC: ReadonlyArray<[string, string, string]> = [
  ['FLEETGATE_DATA_DIR', './data', 'embedded store, spool, development PKI'],
  [
    'FLEETGATE_PKI_DIR',
    '$FLEETGATE_DATA_DIR/pki',
    'ca.crt ca.key server.crt server.key client.crt client.key',
  ],
  [
    'FLEETGATE_IDENTITY',
    'fleet',
    'fleet: one shared client certificate (whoever holds it can act as any agent); per-agent (recommended in production): AgentID must match the cert',
  ],
  ['FLEETGATE_HOST', '0.0.0.0', 'listen address of agent gRPC and discovery'],
  [
    'FLEETGATE_API_HOST',
    '127.0.0.1 in `all`, else FLEETGATE_HOST',
    'listen address of the manager and control APIs',
  ],
  [
    'FLEETGATE_ADVERTISE_HOST',
    'FLEETGATE_HOST if a specific address, else the first non-loopback one',
    'address registered in discovery; must reach the listener',
  ],
  ['FLEETGATE_GRPC_PORT', '6751', 'agent gRPC (mTLS); 0 picks a free port'],
  ['FLEETGATE_HTTP_PORT', '6752', 'gateway control API'],
  ['FLEETGATE_SD_PORT', '8088', 'discovery'],
  ['FLEETGATE_MANAGER_PORT', '6701', 'manager'],
  [
    'FLEETGATE_HTTP_ENGINE',
    'auto',
    'HTTP APIs on native uWebSockets.js (auto: when a binary loads for this Node and glibc, else node:http with a warning; uws: refuse to start without it; node: node:http)',
  ],
  [
    'FLEETGATE_MAX_CONNECTIONS',
    'sized to memory (its share of it with FLEETGATE_PROCESSES)',
    'agent connection limit of one gateway process',
  ],
  [
    'FLEETGATE_PROCESSES',
    '1',
    'gateway processes sharing the agent port (SO_REUSEPORT, Linux, Node >= 22.12); `fleetgate gateway --processes N` sets it too',
  ],
  [
    'FLEETGATE_MAX_PENDING_HANDSHAKES',
    '512',
    'TLS handshakes in progress at once (a quarter per source address); past it new connections are reset and the agent retries',
  ],
  [
    'FLEETGATE_SHED_RATE',
    '50',
    'load control: agent streams a gateway ends per second above its desired limit',
  ],
  ['FLEETGATE_SHED_ORDER', 'oldest', 'load control: which streams go first, oldest or random'],
  [
    'FLEETGATE_TAG_REFRESH_MS',
    '20000',
    "how often a gateway with a store checks for tag changes; an agent's records carry its new tags (MQData.Tag) within this",
  ],
  [
    'FLEETGATE_AGGREGATE_MS',
    String(DEFAULT_AGGREGATE_MS),
    `how often a gateway with a store publishes its aggregate (agent counts, ingest load for statistics and the console) and re-reads its connection limit; ${MIN_AGGREGATE_MS}-${MAX_AGGREGATE_MS} (readers count a gateway whose aggregate is 60 s old as gone)`,
  ],
  ['FLEETGATE_WORKERS', 'cores - 1, at least 1', 'ingest worker threads; 0 runs the pipeline inline'],
  [
    'FLEETGATE_INGEST_BATCH_WINDOW_MS',
    String(DEFAULT_INGEST_BATCH_WINDOW_MS),
    "how long an agent's batch may wait for other agents' batches to share its Kafka request (not when the agent has more to send); 0: none",
  ],
  ['FLEETGATE_KAFKA_BROKERS', 'unset', 'host:port,...; unset: spool-only'],
  ['FLEETGATE_KAFKA_TOPIC', 'hids_svr', 'topic for agent records'],
  ['FLEETGATE_KAFKA_COMPRESSION', 'lz4', 'none, gzip, snappy, lz4 or zstd'],
  [
    'FLEETGATE_KAFKA_PARTITIONER',
    'murmur2',
    "murmur2 (Kafka's default) or fnv1a (Elkeid's sarama placement)",
  ],
  ['FLEETGATE_KAFKA_TLS', '0', "1: TLS to the brokers (MSK's TLS listener, port 9094)"],
  [
    'FLEETGATE_KAFKA_CA_FILE',
    "unset (Node's default CAs)",
    'PEM file of the CAs that sign the brokers; needs FLEETGATE_KAFKA_TLS=1',
  ],
  [
    'FLEETGATE_KAFKA_CERT_FILE',
    'unset',
    "PEM client certificate presented to the brokers (MSK's TLS client authentication); with FLEETGATE_KAFKA_KEY_FILE and FLEETGATE_KAFKA_TLS=1",
  ],
  ['FLEETGATE_KAFKA_KEY_FILE', 'unset', 'PEM private key of FLEETGATE_KAFKA_CERT_FILE'],
  [
    'FLEETGATE_DYNAMODB_ENDPOINT',
    'unset',
    'DynamoDB API endpoint; unset and no AWS_REGION: embedded dynalite',
  ],
  ['FLEETGATE_TABLE_PREFIX', 'fleetgate-', 'prefix of every table name'],
  [
    'FLEETGATE_SD_ADDRS',
    'unset (all: itself)',
    'discovery addresses to register with: host:port or http(s) URLs',
  ],
  [
    'FLEETGATE_AKSK',
    'generated into the data dir',
    'ak:sk,... accepted by signed APIs; first pair signs outgoing calls',
  ],
  [
    'FLEETGATE_AKSK_SECRET_ARN',
    'unset',
    'Lambda functions: Secrets Manager secret read into FLEETGATE_AKSK at cold start',
  ],
  ['FLEETGATE_ADMIN', 'unset', 'name:password of the first admin user'],
  [
    'FLEETGATE_MANAGER_SECRET',
    'generated into the data dir',
    'manager token-signing secret, >= 32 random bytes (required on AWS)',
  ],
  [
    'FLEETGATE_MANAGER_SECRET_ARN',
    'unset',
    'Lambda functions: Secrets Manager secret read into FLEETGATE_MANAGER_SECRET at cold start',
  ],
  ['FLEETGATE_LOG_LEVEL', 'info', 'pino level: fatal error warn info debug trace silent'],
  [
    'FLEETGATE_TASK_RETENTION_DAYS',
    '30',
    'days a finished or cancelled task, its subtasks and chunks are kept (DynamoDB TTL; readers skip them after)',
  ],
  ['FLEETGATE_CONSOLE_DIR', 'dist/console', 'the built operator console the manager serves at /'],
];

/** Shortest AK/SK secret accepted: it is an HMAC key, guessable when short. */
export const MIN_SK_LENGTH = 16;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** Per idle mTLS agent the gateway budgets this much memory when sizing the default limit. */
const BYTES_PER_AGENT_BUDGET = 96 * 1024;

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const r = new EnvReader(env);
  const dataDir = path.resolve(r.get('FLEETGATE_DATA_DIR') ?? './data');
  const pkiDir = path.resolve(r.get('FLEETGATE_PKI_DIR') ?? path.join(dataDir, 'pki'));
  const identity = r.oneOf<IdentityMode>(
    'FLEETGATE_IDENTITY',
    'fleet',
    ['fleet', 'per-agent'],
    'must be "fleet" or "per-agent"',
  );
  // Checked here so that every error is reported at once; http-engine.ts reads it itself.
  r.oneOf('FLEETGATE_HTTP_ENGINE', 'auto', ['auto', 'uws', 'node'], 'must be auto, uws or node', true);
  const kafka = readKafka(r);
  const sdAddrs = readSdAddrs(r);
  const aksk = readAksk(r, MIN_SK_LENGTH);
  const admin = readAdmin(r);
  const logLevel = r.oneOf(
    'FLEETGATE_LOG_LEVEL',
    'info',
    [...LOG_LEVELS],
    `must be one of ${LOG_LEVELS.join(' ')}`,
  );
  const dynamodbEndpoint = r.get('FLEETGATE_DYNAMODB_ENDPOINT');
  if (dynamodbEndpoint !== undefined && !/^https?:\/\//.test(dynamodbEndpoint)) {
    r.problems.push(`FLEETGATE_DYNAMODB_ENDPOINT=${dynamodbEndpoint}: must be an http(s) URL`);
  }
  const listen = readListen(r);
  const shedOrder = r.oneOf(
    'FLEETGATE_SHED_ORDER',
    'oldest',
    ['oldest', 'random'],
    'must be oldest or random',
  );
  const processes = r.positiveInt('FLEETGATE_PROCESSES', 1, 1);
  // Several gateway processes on one host share its memory: each is sized to its part.
  const defaultMax = Math.max(100, Math.floor((os.totalmem() * 0.5) / processes / BYTES_PER_AGENT_BUDGET));
  const config: Config = {
    dataDir,
    pkiDir,
    identity,
    ...listen,
    grpcPort: r.port('FLEETGATE_GRPC_PORT', 6751),
    httpPort: r.port('FLEETGATE_HTTP_PORT', 6752),
    sdPort: r.port('FLEETGATE_SD_PORT', 8088),
    managerPort: r.port('FLEETGATE_MANAGER_PORT', 6701),
    maxConnections: r.positiveInt('FLEETGATE_MAX_CONNECTIONS', defaultMax, 1),
    processes,
    maxPendingHandshakes: r.positiveInt('FLEETGATE_MAX_PENDING_HANDSHAKES', 512, 1),
    shedRate: r.positiveInt('FLEETGATE_SHED_RATE', 50, 1),
    shedOrder,
    tagRefreshMs: r.positiveInt('FLEETGATE_TAG_REFRESH_MS', 20_000, 100),
    aggregateMs: readAggregateMs(r),
    workers: r.positiveInt('FLEETGATE_WORKERS', Math.max(1, os.availableParallelism() - 1), 0),
    ingestBatchWindowMs: r.positiveInt('FLEETGATE_INGEST_BATCH_WINDOW_MS', DEFAULT_INGEST_BATCH_WINDOW_MS, 0),
    ...kafka,
    dynamodbEndpoint,
    awsRegion: r.get('AWS_REGION'),
    tablePrefix: r.get('FLEETGATE_TABLE_PREFIX') ?? 'fleetgate-',
    sdAddrs,
    aksk,
    admin,
    logLevel,
    taskRetentionDays: r.positiveInt('FLEETGATE_TASK_RETENTION_DAYS', 30, 1),
  };
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return Object.freeze(config);
}

/** FLEETGATE_AGGREGATE_MS: below the readers' 60 s liveness window, so a live gateway never looks gone. */
function readAggregateMs(r: EnvReader): number {
  const ms = r.positiveInt('FLEETGATE_AGGREGATE_MS', DEFAULT_AGGREGATE_MS, MIN_AGGREGATE_MS);
  if (ms <= MAX_AGGREGATE_MS) return ms;
  r.problems.push(`FLEETGATE_AGGREGATE_MS=${ms}: must be at most ${MAX_AGGREGATE_MS}`);
  return DEFAULT_AGGREGATE_MS;
}

/**
 * Where the listeners bind and what others are told to dial. A specific listen address is what
 * agents must dial; "all interfaces" advertises the first address others can reach.
 */
function readListen(r: EnvReader): Pick<Config, 'host' | 'apiHost' | 'apiHostExplicit' | 'advertiseHost'> {
  const host = r.get('FLEETGATE_HOST') ?? '0.0.0.0';
  const apiHost = r.get('FLEETGATE_API_HOST');
  const advertiseHost =
    r.get('FLEETGATE_ADVERTISE_HOST') ?? (isWildcard(host) ? firstNonLoopbackAddress() : host);
  if (isLoopback(host) && !isLoopback(advertiseHost)) {
    r.problems.push(
      `FLEETGATE_ADVERTISE_HOST=${advertiseHost} cannot reach the listener on FLEETGATE_HOST=${host} (loopback only): ` +
        'listen on that address (or 0.0.0.0), or advertise a loopback address',
    );
  }
  return { host, apiHost: apiHost ?? host, apiHostExplicit: apiHost !== undefined, advertiseHost };
}

export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}

export function firstNonLoopbackAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  }
  return '127.0.0.1';
}

/**
 * The AK/SK pairs: from FLEETGATE_AKSK, else from `<dataDir>/aksk` (generated with random
 * keys on first start, mode 0600) so that a single-machine install is signed from the start.
 */
export function resolveAksk(config: Config): Array<[string, string]> {
  if (config.aksk) return config.aksk;
  const file = path.join(config.dataDir, 'aksk');
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    const ak = randomBytes(8).toString('hex');
    const sk = randomBytes(24).toString('base64url');
    writeFileSync(file, `${ak}:${sk}\n`, { mode: 0o600 });
  }
  return readFileSync(file, 'utf8')
    .trim()
    .split(',')
    .map((p) => {
      const i = p.indexOf(':');
      return [p.slice(0, i).trim().toLowerCase(), p.slice(i + 1).trim()] as [string, string];
    });
}
