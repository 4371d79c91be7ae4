/**
 * Mutual TLS to Kafka (MSK's TLS client authentication): FLEETGATE_KAFKA_CERT_FILE and
 * FLEETGATE_KAFKA_KEY_FILE are validated by platform/config/env.ts and mapped by kafkaOptionsFrom
 * to kafkajs' `ssl` (cloneable for the ingest workers), and the producer presents the certificate:
 * a TLS listener that requires a client certificate of its CA completes the handshake with them,
 * sees the certificate's subject, and refuses the producer without them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { kafkaOptionsFrom } from '../../gateway/ingest/default-sink.js';
import { ConfigError, loadConfig } from '../../platform/config/env.js';
import { createCa, createClientCert, createServerCert, type Pem } from '../../platform/pki/certs.js';
import { createRecordProducer } from '../../workers/kafka/producer.js';

let dir: string;
let ca: Pem;
let files: { ca: string; cert: string; key: string };

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'fg-kafka-mtls-'));
  ca = await createCa({ commonName: 'test MSK private CA' });
  const client = await createClientCert(ca, { identity: 'fleetgate-gateway' });
  files = {
    ca: path.join(dir, 'ca.pem'),
    cert: path.join(dir, 'client.crt'),
    key: path.join(dir, 'client.key'),
  };
  writeFileSync(files.ca, ca.cert);
  writeFileSync(files.cert, client.cert);
  writeFileSync(files.key, client.key);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const base = { FLEETGATE_DATA_DIR: '/tmp/fg-unused', FLEETGATE_KAFKA_BROKERS: 'b-1.msk:9094' };

function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig({ ...base, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

test('configuration: the client certificate and key go together, need TLS, and must be PEM', () => {
  const tlsOn = { FLEETGATE_KAFKA_TLS: '1' };
  const both = { FLEETGATE_KAFKA_CERT_FILE: files.cert, FLEETGATE_KAFKA_KEY_FILE: files.key };
  const cfg = loadConfig({ ...base, ...tlsOn, ...both });
  assert.equal(cfg.kafkaCertFile, files.cert);
  assert.equal(cfg.kafkaKeyFile, files.key);
  assert.deepEqual(problems({ ...tlsOn, FLEETGATE_KAFKA_CERT_FILE: files.cert }), [
    'FLEETGATE_KAFKA_CERT_FILE and FLEETGATE_KAFKA_KEY_FILE go together: set both or neither',
  ]);
  assert.deepEqual(problems(both), ['FLEETGATE_KAFKA_CERT_FILE is set but FLEETGATE_KAFKA_TLS is not 1']);
  assert.match(
    problems({ ...tlsOn, FLEETGATE_KAFKA_CERT_FILE: files.key, FLEETGATE_KAFKA_KEY_FILE: files.key })[0] ??
      '',
    /FLEETGATE_KAFKA_CERT_FILE=.*client\.key: no PEM certificate/,
  );
  assert.match(
    problems({ ...tlsOn, ...both, FLEETGATE_KAFKA_KEY_FILE: path.join(dir, 'missing.key') })[0] ?? '',
    /FLEETGATE_KAFKA_KEY_FILE=.*missing\.key: ENOENT/,
  );
  // The options the producer and its workers get: ca, cert and key, plain data.
  const opts = kafkaOptionsFrom(
    loadConfig({ ...base, ...tlsOn, ...both, FLEETGATE_KAFKA_CA_FILE: files.ca }),
  );
  assert.equal(typeof opts.ssl, 'object');
  const ssl = opts.ssl as { ca: string[]; cert: string; key: string };
  assert.deepEqual(ssl.ca, [ca.cert]);
  assert.match(ssl.cert, /BEGIN CERTIFICATE/);
  assert.match(ssl.key, /PRIVATE KEY/);
  assert.deepEqual(structuredClone(opts), opts);
});

/** A TLS listener that requires a client certificate of `ca`; records each handshake's client subject. */
async function mtlsListener(server: Pem) {
  const outcomes: string[] = [];
  const srv = tls.createServer(
    { cert: server.cert, key: server.key, ca: [ca.cert], requestCert: true, rejectUnauthorized: true },
    (socket) => {
      outcomes.push(`client ${socket.getPeerCertificate().subject?.CN ?? '?'}`);
      socket.destroy();
    },
  );
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

async function tryConnect(env: NodeJS.ProcessEnv, port: number): Promise<void> {
  const opts = kafkaOptionsFrom(
    loadConfig({ ...base, FLEETGATE_KAFKA_BROKERS: `localhost:${port}`, ...env }),
  );
  const producer = createRecordProducer({ ...opts, requestTimeoutMs: 1000 });
  try {
    await producer.connect();
  } catch {
    // The listener is no broker: it hangs up after the handshake.
  } finally {
    await producer.disconnect().catch(() => {});
  }
}

test('the producer presents its client certificate to a broker that requires one', async () => {
  const server = await createServerCert(ca, { hosts: ['localhost'] });
  const l = await mtlsListener(server);
  try {
    const tlsWithCa = { FLEETGATE_KAFKA_TLS: '1', FLEETGATE_KAFKA_CA_FILE: files.ca };
    await tryConnect(
      { ...tlsWithCa, FLEETGATE_KAFKA_CERT_FILE: files.cert, FLEETGATE_KAFKA_KEY_FILE: files.key },
      l.port,
    );
    assert.ok(
      l.outcomes.some((o) => o.startsWith('client ')),
      l.outcomes.join(', '),
    );
    l.outcomes.length = 0;
    await tryConnect(tlsWithCa, l.port);
    assert.ok(!l.outcomes.some((o) => o.startsWith('client ')), l.outcomes.join(', '));
    assert.ok(
      l.outcomes.some((o) => o.startsWith('refused')),
      l.outcomes.join(', '),
    );
  } finally {
    await l.close();
  }
});
