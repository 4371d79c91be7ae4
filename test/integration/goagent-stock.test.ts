/**
 * Stock-agent behaviour end to end: `fleetgate gateway` as its own process with a store
 * (dynalite) and Kafka, the Go interop agent (loadtest/goagent) as the agent.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, type TestContext, test } from 'node:test';
import { SHORT_FETCH_WAIT_MS } from '../../loadtest/sim/verify-kafka.js';
import { createManagerStore } from '../../manager/store.js';
import { createTagStore } from '../../manager/tags.js';
import { grpc } from '../../proto/gen/elkeid.js';
import { startTestDynamo, storeGatewayEnv, type TestDynamo } from '../helpers/dynalite.js';
import { waitFor } from '../helpers/gateway.js';
import { startGoAgent } from '../helpers/goagent.js';
import { kafkaClient, kafkaReady, startKafkaGateway } from '../helpers/kafka.js';

let db: TestDynamo;
before(async () => {
  await kafkaReady();
  db = await startTestDynamo();
});
after(async () => {
  await db.close();
});

/** Every MQData produced to `topic` from now on, as it arrives. */
async function watchTopic(t: TestContext, topic: string): Promise<grpc.MQData[]> {
  const out: grpc.MQData[] = [];
  const consumer = kafkaClient().consumer({
    groupId: `g-${randomBytes(4).toString('hex')}`,
    maxWaitTimeInMs: SHORT_FETCH_WAIT_MS,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  void consumer.run({
    eachMessage: async ({ message }) => {
      if (message.value) out.push(grpc.MQData.decode(message.value));
    },
  });
  t.after(() => consumer.disconnect());
  return out;
}

async function startStoreGateway(t: TestContext, env: Record<string, string> = {}) {
  return startKafkaGateway(t, { partitions: 1, env: { ...storeGatewayEnv(db), ...env } });
}

test('MQData.Tag carries the tags given through the manager, within the refresh interval', async (t) => {
  const gw = await startStoreGateway(t, { FLEETGATE_TAG_REFRESH_MS: '500' });
  const records = await watchTopic(t, gw.topic);
  const tags = createTagStore(createManagerStore(db.client, db.prefix));
  const id = `tagged-${randomBytes(3).toString('hex')}`;
  await tags.add('kept', [id], 'test');
  startGoAgent(t, { address: { host: '127.0.0.1', port: gw.port }, tls: gw.tls, id, args: ['-rate', '10'] });
  // Tags known when the agent connects are read at connect.
  await waitFor(() => records.some((r) => r.AgentID === id && r.Tag === 'kept'), 20_000, 'Tag "kept"');
  // Tags given while it is connected reach its records without a reconnect.
  await tags.add('web', [id], 'test');
  await waitFor(() => records.some((r) => r.Tag === 'kept,web'), 15_000, 'Tag "kept,web"');
  await tags.remove('kept', [id]);
  await waitFor(() => records.some((r) => r.Tag === 'web'), 15_000, 'Tag "web" after removing "kept"');
  const last = records.filter((r) => r.AgentID === id).at(-1)!;
  assert.equal(last.Hostname, 'goagent');
  assert.equal(last.Product, 'elkeid-agent');
});
