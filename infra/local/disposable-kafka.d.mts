// Types of disposable-kafka.mjs (plain ESM so it runs without a build step).
import type { KafkaInstance } from './kafka-control.mjs';

type Log = (msg: string) => void;
export function brokerFromEnv(envName: string, env?: NodeJS.ProcessEnv): string | undefined;
export function startDisposableKafka(options?: { log?: Log; timeoutMs?: number }): Promise<{
  broker: string;
  instance: KafkaInstance;
  pid: number | null;
  stop(): Promise<void>;
  stopSync(): void;
}>;
export function kafkaFor(
  envName: string,
  options?: { log?: Log; timeoutMs?: number },
): Promise<{
  broker: string;
  disposable: boolean;
  pid: number | null;
  stop(): Promise<void>;
  stopSync(): void;
}>;
