// A Kafka broker for one test run or benchmark: the address given in an environment variable
// (FLEETGATE_TEST_KAFKA for tests, FLEETGATE_BENCH_KAFKA for benchmarks), else a disposable
// broker on a free pair of ports with its own temp state dir, stopped and removed afterwards. A run
// therefore never depends on, nor disturbs, a broker someone else runs on the machine (9092).
//
//   const kafka = await kafkaFor('FLEETGATE_TEST_KAFKA', { log });
//   kafka.broker;        // '127.0.0.1:23456'
//   await kafka.stop();  // no-op for a broker given in the environment

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureKafka, findFreePortPair, KafkaSetupError, probeKafka, stopKafka } from './kafka-control.mjs';

const HOST_PORT = /^[^:\s,]+:\d{1,5}$/;

/** The broker address in `envName`, checked for shape; undefined when unset or empty. */
export function brokerFromEnv(envName, env = process.env) {
  const raw = (env[envName] ?? '').trim();
  if (raw === '') return undefined;
  if (!HOST_PORT.test(raw))
    throw new KafkaSetupError(`${envName}=${raw}: must be host:port of a Kafka broker`);
  return raw;
}

/** Starts a disposable broker; resolves { broker, instance, pid, stop(), stopSync() }. */
export async function startDisposableKafka({ log = () => {}, timeoutMs } = {}) {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetgate-kafka-run-'));
  const port = await findFreePortPair();
  const instance = { port, stateDir };
  let pid = null;
  const remove = () => fs.rmSync(stateDir, { recursive: true, force: true });
  try {
    ({ pid } = await ensureKafka({ log, ...(timeoutMs ? { timeoutMs } : {}) }, instance));
  } catch (err) {
    await stopKafka({ log: () => {} }, instance).catch(() => {});
    remove();
    throw err;
  }
  let stopped = false;
  return {
    broker: `127.0.0.1:${port}`,
    instance,
    pid,
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopKafka({ log: () => {} }, instance).catch(() => {});
      remove();
    },
    /** For process 'exit' handlers (no awaiting there): SIGKILL, then the state dir goes. */
    stopSync() {
      if (stopped) return;
      stopped = true;
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {}
      remove();
    },
  };
}

/**
 * The broker named in `envName` (it must answer as Kafka), else a disposable one.
 * Resolves { broker, disposable, pid (of a disposable broker), stop(), stopSync() }.
 */
export async function kafkaFor(envName, { log = () => {}, timeoutMs } = {}) {
  const given = brokerFromEnv(envName);
  if (given) {
    const [host, port] = [
      given.slice(0, given.lastIndexOf(':')),
      Number(given.slice(given.lastIndexOf(':') + 1)),
    ];
    if (host === '127.0.0.1' || host === 'localhost') {
      const state = await probeKafka({ timeoutMs: 5000 }, { port, stateDir: os.tmpdir() });
      if (state !== 'kafka')
        throw new KafkaSetupError(`${envName}=${given}: no Kafka broker answers there (${state})`);
    }
    return { broker: given, disposable: false, pid: null, stop: async () => {}, stopSync: () => {} };
  }
  log(`${envName} is not set: starting a disposable Kafka broker on a free port…`);
  const k = await startDisposableKafka({ log, timeoutMs });
  log(`disposable Kafka broker on ${k.broker}`);
  return { broker: k.broker, disposable: true, pid: k.pid, stop: k.stop, stopSync: k.stopSync };
}
