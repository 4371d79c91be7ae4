/** The broker address of a test run or benchmark (infra/local/disposable-kafka.mjs). */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { brokerFromEnv, kafkaFor } from '../../infra/local/disposable-kafka.mjs';

test('the broker variable must be host:port; unset or empty means none', () => {
  assert.equal(brokerFromEnv('X', {}), undefined);
  assert.equal(brokerFromEnv('X', { X: ' ' }), undefined);
  assert.equal(brokerFromEnv('X', { X: '127.0.0.1:29092' }), '127.0.0.1:29092');
  assert.throws(() => brokerFromEnv('X', { X: '127.0.0.1' }), /X=127\.0\.0\.1: must be host:port/);
  assert.throws(() => brokerFromEnv('X', { X: 'a:1,b:2' }), /must be host:port/);
});

test('a given local address where no Kafka answers is refused, not replaced by another broker', async (t) => {
  // A port that accepts TCP but does not speak Kafka.
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  process.env.FLEETGATE_TEST_KAFKA_PROBE = `127.0.0.1:${port}`;
  t.after(() => delete process.env.FLEETGATE_TEST_KAFKA_PROBE);
  await assert.rejects(
    kafkaFor('FLEETGATE_TEST_KAFKA_PROBE'),
    new RegExp(`FLEETGATE_TEST_KAFKA_PROBE=127\\.0\\.0\\.1:${port}: no Kafka broker answers there`),
  );
});
