/**
 * TLS to Kafka (Amazon MSK's TLS listener): FLEETGATE_KAFKA_TLS / FLEETGATE_KAFKA_CA_FILE are
 * validated by platform/config/env.ts, mapped by kafkaOptionsFrom to kafkajs' `ssl` (plain data,
 * so the ingest workers get the same), and the producer really opens TLS with them: a TLS
 * listener with a certificate from a test CA sees the producer's handshake complete when the CA
 * file is given, and refused when it is not (Node's default CAs do not know the test CA) or when
 * TLS is off; and end to end, a disposable local Kafka broker (infra/local) with a TLS listener
 * (PEM keystore, a certificate of the test CA for localhost) takes records from the producer
 * over TLS with acks=all, and they are read back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { kafkaOptionsFrom } from '../../gateway/ingest/default-sink.js';
import { ensureKafka, findFreePortPair, killKafka } from '../../infra/local/kafka-control.mjs';
import { ConfigError, loadConfig } from '../../platform/config/env.js';
import { createCa, createServerCert, type Pem } from '../../platform/pki/certs.js';
import { createRecordProducer } from '../../workers/kafka/producer.js';
import { consumeAll, kafkaClient } from '../helpers/kafka.js';

let dir: string;
let ca: Pem;
let caFile: string;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'fg-kafka-tls-'));
  ca = await createCa({ commonName: 'test Kafka CA' });
  caFile = path.join(dir, 'kafka-ca.pem');
  writeFileSync(caFile, ca.cert);
  writeFileSync(path.join(dir, 'not-pem.txt'), 'hello');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const base = { FLEETGATE_DATA_DIR: '/tmp/fg-unused', FLEETGATE_KAFKA_BROKERS: 'b-1.msk:9094' };

test('configuration: FLEETGATE_KAFKA_TLS and FLEETGATE_KAFKA_CA_FILE are validated', () => {
  assert.equal(loadConfig(base).kafkaTls, false);
  assert.equal(loadConfig({ ...base, FLEETGATE_KAFKA_TLS: '1' }).kafkaTls, true);
  assert.equal(loadConfig({ ...base, FLEETGATE_KAFKA_TLS: 'true' }).kafkaTls, true);
  const withCa = loadConfig({ ...base, FLEETGATE_KAFKA_TLS: '1', FLEETGATE_KAFKA_CA_FILE: caFile });
  assert.equal(withCa.kafkaCaFile, caFile);
  const problems = (env: NodeJS.ProcessEnv): string[] => {
    try {
      loadConfig({ ...base, ...env });
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    return [];
  };
  assert.deepEqual(problems({ FLEETGATE_KAFKA_TLS: 'yes' }), ['FLEETGATE_KAFKA_TLS=yes: must be 0 or 1']);
  assert.deepEqual(problems({ FLEETGATE_KAFKA_CA_FILE: caFile }), [
    'FLEETGATE_KAFKA_CA_FILE is set but FLEETGATE_KAFKA_TLS is not 1',
  ]);
  assert.match(
    problems({ FLEETGATE_KAFKA_TLS: '1', FLEETGATE_KAFKA_CA_FILE: path.join(dir, 'missing.pem') })[0] ?? '',
    /^FLEETGATE_KAFKA_CA_FILE=.*missing\.pem: ENOENT/,
  );
  assert.match(
    problems({ FLEETGATE_KAFKA_TLS: '1', FLEETGATE_KAFKA_CA_FILE: path.join(dir, 'not-pem.txt') })[0] ?? '',
    /no PEM certificate/,
  );
});

test('kafkaOptionsFrom: no ssl without TLS; ssl true; ssl { ca } from the file; all cloneable for the workers', () => {
  const cfg = (env: NodeJS.ProcessEnv) => kafkaOptionsFrom(loadConfig({ ...base, ...env }));
  assert.equal('ssl' in cfg({}), false);
  assert.equal(cfg({ FLEETGATE_KAFKA_TLS: '1' }).ssl, true);
  const withCa = cfg({ FLEETGATE_KAFKA_TLS: '1', FLEETGATE_KAFKA_CA_FILE: caFile });
  assert.deepEqual(withCa.ssl, { ca: [ca.cert] });
  assert.deepEqual(withCa.brokers, ['b-1.msk:9094']);
  // The pipeline hands these options to its worker threads as workerData (structured clone).
  assert.deepEqual(structuredClone(withCa), withCa);
});

/** A TLS listener that records how each connection's handshake ended, then hangs up. */
async function tlsListener(server: Pem): Promise<{
  port: number;
  outcomes: string[];
  close: () => Promise<void>;
}> {
  const outcomes: string[] = [];
  const srv = tls.createServer({ cert: server.cert, key: server.key }, (socket) => {
    outcomes.push('handshake');
    socket.destroy();
  });
  srv.on('tlsClientError', (err) =>
    outcomes.push(`refused: ${(err as NodeJS.ErrnoException).code ?? err.message}`),
  );
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as AddressInfo).port,
    outcomes,
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

async function tryConnect(env: NodeJS.ProcessEnv, port: number): Promise<Error | undefined> {
  const opts = kafkaOptionsFrom(
    loadConfig({ ...base, FLEETGATE_KAFKA_BROKERS: `localhost:${port}`, ...env }),
  );
  const producer = createRecordProducer({ ...opts, requestTimeoutMs: 1000 });
  try {
    await producer.connect();
    return undefined;
  } catch (err) {
    return err as Error;
  } finally {
    await producer.disconnect().catch(() => {});
  }
}

test('the producer opens TLS with the CA file, and fails to without it or without TLS', async () => {
  const server = await createServerCert(ca, { hosts: ['localhost'] });
  const l = await tlsListener(server);
  try {
    // With the CA file: the handshake completes (then the listener, no broker, hangs up).
    assert.ok(await tryConnect({ FLEETGATE_KAFKA_TLS: '1', FLEETGATE_KAFKA_CA_FILE: caFile }, l.port));
    assert.ok(l.outcomes.includes('handshake'), l.outcomes.join(', '));

    // TLS against Node's default CAs: the client refuses the test CA's certificate.
    l.outcomes.length = 0;
    const untrusted = await tryConnect({ FLEETGATE_KAFKA_TLS: '1' }, l.port);
    assert.ok(untrusted);
    assert.ok(!l.outcomes.includes('handshake'), l.outcomes.join(', '));

    // Plaintext to a TLS listener: never a handshake.
    l.outcomes.length = 0;
    assert.ok(await tryConnect({}, l.port));
    assert.ok(!l.outcomes.includes('handshake'), l.outcomes.join(', '));
    assert.ok(
      l.outcomes.some((o) => o.startsWith('refused')),
      l.outcomes.join(', '),
    );
  } finally {
    await l.close();
  }
});

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

test('end to end: records reach a Kafka broker over its TLS listener (acks=all)', {
  timeout: 180_000,
}, async (t) => {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'fleetgate-kafka-tls-'));
  const server = await createServerCert(ca, { hosts: ['localhost'] });
  const keystore = path.join(stateDir, 'broker.pem');
  writeFileSync(keystore, `${server.key.trim()}\n${server.cert.trim()}\n`, { mode: 0o600 });
  const port = await findFreePortPair();
  const tlsPort = await freePort();
  const instance = { port, stateDir, tls: { port: tlsPort, keystore } };
  t.after(async () => {
    await killKafka(instance, 'SIGKILL').catch(() => {});
    await rm(stateDir, { recursive: true, force: true });
  });
  await ensureKafka({ log: () => {}, timeoutMs: 120_000 }, instance);
  const plain = [`127.0.0.1:${port}`];
  // The broker goes away with the test: no topic clean-up to register.
  const topic = 'records-over-tls';
  const admin = kafkaClient(plain).admin();
  await admin.connect();
  await admin.createTopics({
    topics: [{ topic, numPartitions: 2, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  await admin.disconnect();

  const opts = kafkaOptionsFrom(
    loadConfig({
      ...base,
      FLEETGATE_KAFKA_BROKERS: `localhost:${tlsPort}`,
      FLEETGATE_KAFKA_TLS: '1',
      FLEETGATE_KAFKA_CA_FILE: caFile,
      FLEETGATE_KAFKA_TOPIC: topic,
    }),
  );
  const producer = createRecordProducer(opts);
  try {
    await producer.send([
      { key: 'agent-1', value: Buffer.from('over tls 1') },
      { key: 'agent-2', value: Buffer.from('over tls 2') },
    ]);
  } finally {
    await producer.disconnect();
  }
  const got = await consumeAll(topic, 2, 30_000, plain);
  assert.deepEqual(got.map((r) => [r.key, r.value.toString()]).sort(), [
    ['agent-1', 'over tls 1'],
    ['agent-2', 'over tls 2'],
  ]);

  // The same broker refuses to be trusted without the CA (Node's default CAs).
  const untrusted = createRecordProducer({
    ...kafkaOptionsFrom(
      loadConfig({
        ...base,
        FLEETGATE_KAFKA_BROKERS: `localhost:${tlsPort}`,
        FLEETGATE_KAFKA_TLS: '1',
        FLEETGATE_KAFKA_TOPIC: topic,
      }),
    ),
    requestTimeoutMs: 1000,
  });
  await assert.rejects(untrusted.connect());
  await untrusted.disconnect().catch(() => {});
});
