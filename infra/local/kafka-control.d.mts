// Types of the local Kafka control script (plain ESM so it runs without a build step).
export interface KafkaInstance {
  port?: number;
  controllerPort?: number;
  stateDir?: string;
  /** A TLS listener (disposable instances): PEM file with the key and the certificate chain, advertised as localhost:port. */
  tls?: { port: number; keystore: string };
}
type Log = (msg: string) => void;
export const KAFKA_BROKER: string;
export class KafkaSetupError extends Error {}
export function ensureKafka(
  options?: { log?: Log; timeoutMs?: number },
  instance?: KafkaInstance,
): Promise<{ brokers: string[]; pid: number | null; started: boolean }>;
export function startKafka(
  instance: KafkaInstance,
  options?: { log?: Log; timeoutMs?: number },
): Promise<{ brokers: string[]; pid: number | null; started: boolean }>;
export function stopKafka(options?: { log?: Log }, instance?: KafkaInstance): Promise<{ stopped: boolean }>;
export function killKafka(
  instance: KafkaInstance,
  signal?: NodeJS.Signals,
  options?: { log?: Log },
): Promise<{ killed: number | null; signal: string; ms: number }>;
export function probeKafka(
  options?: { timeoutMs?: number },
  instance?: KafkaInstance,
): Promise<'kafka' | 'closed' | 'other'>;
export function findFreePortPair(): Promise<number>;
export function kafkaStatus(instance?: KafkaInstance): Promise<{
  serving: boolean;
  pid: number | null;
  version: string | null;
  stateDir: string;
  logFile: string;
  broker: string;
}>;
export function kafkaPaths(instance?: KafkaInstance): {
  pom: string;
  cacheDir: string;
  stateDir: string;
  dataDir: string;
  serverProperties: string;
  log4jProperties: string;
  clusterIdFile: string;
  pidFile: string;
  logFile: string;
  lockFile: string;
};
