/**
 * Reading the environment for loadConfig (env.ts): one reader collects every problem instead of
 * stopping at the first, and each group of settings (listen addresses, Kafka, credentials) has its
 * own function.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from './env.js';

const HOST_PORT = /^[^:\s]+:\d{1,5}$/;

export class EnvReader {
  readonly problems: string[] = [];
  readonly #env: NodeJS.ProcessEnv;

  constructor(env: NodeJS.ProcessEnv) {
    this.#env = env;
  }

  /** The trimmed value; undefined when unset or blank. */
  get(name: string): string | undefined {
    const v = this.#env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  port(name: string, def: number): number {
    const raw = this.get(name);
    if (raw === undefined) return def;
    if (!/^\d+$/.test(raw) || Number(raw) > 65535) {
      this.problems.push(`${name}=${raw}: must be a port number 0-65535`);
      return def;
    }
    return Number(raw);
  }

  positiveInt(name: string, def: number, min: number): number {
    const raw = this.get(name);
    if (raw === undefined) return def;
    if (!/^\d+$/.test(raw) || Number(raw) < min) {
      this.problems.push(`${name}=${raw}: must be an integer >= ${min}`);
      return def;
    }
    return Number(raw);
  }

  /** One of `allowed` (the default when unset); `problem` describes them when it is not. */
  oneOf<T extends string>(name: string, def: T, allowed: readonly T[], problem: string, lower = false): T {
    const raw = this.get(name) ?? def;
    const value = lower ? raw.toLowerCase() : raw;
    if (!(allowed as readonly string[]).includes(value)) this.problems.push(`${name}=${value}: ${problem}`);
    return value as T;
  }

  /** A comma-separated list, entries trimmed, empty ones dropped. */
  list(name: string): string[] {
    return (this.get(name) ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }

  /** A file that must hold a PEM block of `kind`, as an absolute path. */
  pemFile(name: string, kind: string): string | undefined {
    const raw = this.get(name);
    if (raw === undefined) return undefined;
    const file = path.resolve(raw);
    try {
      if (!new RegExp(`-----BEGIN [A-Z ]*${kind}-----`).test(readFileSync(file, 'utf8'))) {
        this.problems.push(`${name}=${raw}: no PEM ${kind.toLowerCase()} in it`);
      }
    } catch (err) {
      this.problems.push(`${name}=${raw}: ${(err as Error).message}`);
    }
    return file;
  }
}

type KafkaConfig = Pick<
  Config,
  | 'kafkaBrokers'
  | 'kafkaTopic'
  | 'kafkaCompression'
  | 'kafkaPartitioner'
  | 'kafkaTls'
  | 'kafkaCaFile'
  | 'kafkaCertFile'
  | 'kafkaKeyFile'
>;

export function readKafka(r: EnvReader): KafkaConfig {
  const kafkaBrokers = r.list('FLEETGATE_KAFKA_BROKERS');
  for (const b of kafkaBrokers) {
    if (!HOST_PORT.test(b)) r.problems.push(`FLEETGATE_KAFKA_BROKERS: "${b}" is not host:port`);
  }
  const kafkaCompression = r.oneOf(
    'FLEETGATE_KAFKA_COMPRESSION',
    'lz4',
    ['none', 'gzip', 'snappy', 'lz4', 'zstd'],
    'must be none, gzip, snappy, lz4 or zstd',
  );
  const kafkaPartitioner = r.oneOf(
    'FLEETGATE_KAFKA_PARTITIONER',
    'murmur2',
    ['murmur2', 'fnv1a'],
    'must be murmur2 or fnv1a',
  );
  const tls = r.oneOf('FLEETGATE_KAFKA_TLS', '0', ['0', '1', 'true', 'false'], 'must be 0 or 1', true);
  const kafkaTls = tls === '1' || tls === 'true';
  const kafkaCaFile = readKafkaCa(r, kafkaTls);
  const kafkaCertFile = r.pemFile('FLEETGATE_KAFKA_CERT_FILE', 'CERTIFICATE');
  const kafkaKeyFile = r.pemFile('FLEETGATE_KAFKA_KEY_FILE', 'PRIVATE KEY');
  if ((kafkaCertFile === undefined) !== (kafkaKeyFile === undefined)) {
    r.problems.push(
      'FLEETGATE_KAFKA_CERT_FILE and FLEETGATE_KAFKA_KEY_FILE go together: set both or neither',
    );
  } else if (kafkaCertFile !== undefined && !kafkaTls) {
    r.problems.push('FLEETGATE_KAFKA_CERT_FILE is set but FLEETGATE_KAFKA_TLS is not 1');
  }
  return {
    kafkaBrokers,
    kafkaTopic: r.get('FLEETGATE_KAFKA_TOPIC') ?? 'hids_svr',
    kafkaCompression,
    kafkaPartitioner,
    kafkaTls,
    kafkaCaFile,
    kafkaCertFile,
    kafkaKeyFile,
  };
}

function readKafkaCa(r: EnvReader, kafkaTls: boolean): string | undefined {
  const raw = r.get('FLEETGATE_KAFKA_CA_FILE');
  if (raw === undefined) return undefined;
  const file = path.resolve(raw);
  if (!kafkaTls) r.problems.push('FLEETGATE_KAFKA_CA_FILE is set but FLEETGATE_KAFKA_TLS is not 1');
  let pem = '';
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    r.problems.push(`FLEETGATE_KAFKA_CA_FILE=${raw}: ${(err as Error).message}`);
  }
  if (pem && !pem.includes('-----BEGIN CERTIFICATE-----')) {
    r.problems.push(`FLEETGATE_KAFKA_CA_FILE=${raw}: no PEM certificate in it`);
  }
  return file;
}

/** FLEETGATE_AKSK: `ak:sk,ak:sk`, access keys lower-cased, secrets at least `minSecret` long. */
export function readAksk(r: EnvReader, minSecret: number): Array<[string, string]> | undefined {
  const raw = r.get('FLEETGATE_AKSK');
  if (raw === undefined) return undefined;
  const aksk: Array<[string, string]> = [];
  for (const pair of raw.split(',')) {
    const i = pair.indexOf(':');
    const ak = pair.slice(0, i).trim().toLowerCase();
    const sk = pair.slice(i + 1).trim();
    if (i <= 0 || !ak || !sk) r.problems.push(`FLEETGATE_AKSK: "${pair.slice(0, 40)}" is not ak:sk`);
    else if (sk.length < minSecret)
      r.problems.push(
        `FLEETGATE_AKSK: the secret of "${ak.slice(0, 40)}" is shorter than ${minSecret} characters`,
      );
    else aksk.push([ak, sk]);
  }
  return aksk;
}

export function readAdmin(r: EnvReader): Config['admin'] {
  const raw = r.get('FLEETGATE_ADMIN');
  if (raw === undefined) return undefined;
  const i = raw.indexOf(':');
  if (i > 0 && i < raw.length - 1) return { name: raw.slice(0, i), password: raw.slice(i + 1) };
  r.problems.push('FLEETGATE_ADMIN: must be name:password');
  return undefined;
}

/** FLEETGATE_SD_ADDRS: host:port, http(s) URLs, or `all` (the discovery of this process). */
export function readSdAddrs(r: EnvReader): string[] {
  const sdAddrs = r.list('FLEETGATE_SD_ADDRS');
  for (const a of sdAddrs) {
    if (a !== 'all' && !HOST_PORT.test(a) && !/^https?:\/\/\S+$/.test(a))
      r.problems.push(`FLEETGATE_SD_ADDRS: "${a}" is not host:port or an http(s) URL`);
  }
  return sdAddrs;
}
