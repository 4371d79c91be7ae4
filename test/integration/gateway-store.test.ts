/**
 * `fleetgate gateway` as its own process next to a DynamoDB (dynalite here; a Lambda manager in
 * production): with FLEETGATE_DYNAMODB_ENDPOINT set it writes agent status, pushes the stored
 * config at an agent's first heartbeat, applies task results and the desired connection limit
 * itself — nothing of that needs the manager in the same process.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { SCENARIOS } from '../../loadtest/sim/scenario.js';
import { newStats, SimAgent } from '../../loadtest/sim/sim-agent.js';
import { FLEET_SCOPE } from '../../platform/store/fleet-items.js';
import { tableName } from '../../platform/store/schema.js';
import { startTestDynamo, storeGatewayEnv, type TestDynamo } from '../helpers/dynalite.js';
import { startFleetgateProcess, waitFor } from '../helpers/gateway.js';
import {
  putDesiredLimit,
  runAgentTaskToResult,
  storeDefaultCollector,
} from '../helpers/gateway-store-cycle.js';
import { AK, SK } from '../helpers/manager-harness.js';

let db: TestDynamo;
before(async () => {
  db = await startTestDynamo();
});
after(async () => {
  await db.close();
});

test('a separate gateway process with a store: agent status, config at first heartbeat, load control', async (t) => {
  const doc = DynamoDBDocumentClient.from(db.client);
  await storeDefaultCollector(db);
  const { port, output, tls } = await startFleetgateProcess(
    t,
    'gateway',
    {
      ...storeGatewayEnv(db),
      FLEETGATE_SHED_RATE: '2',
      FLEETGATE_AKSK: `${AK}:${SK}`,
      FLEETGATE_AGGREGATE_MS: '300',
    },
    { readyMs: 30_000 },
  );
  const gatewayId = `127.0.0.1:${port}`;
  const stats = newStats();
  const scenario = { ...SCENARIOS.steady!, eventsPerAgentPerS: 0, reconnectDelayMs: 60_000 };
  const agents = [0, 1, 2].map(
    (i) =>
      new SimAgent(`store-gw-agent-${i}`, i, { tls, gateway: { host: '127.0.0.1', port }, scenario, stats }),
  );
  t.after(() => {
    for (const a of agents) a.stop();
  });
  for (const a of agents) a.start();

  // The stored default config is pushed at the first heartbeat.
  await waitFor(() => stats.configsApplied === 3, 15_000, 'configs pushed to the three agents');
  // Agent status reaches the agents table, naming this gateway.
  const item = async (id: string) =>
    (await doc.send(new GetCommand({ TableName: tableName(db.prefix, 'agents'), Key: { agentId: id } })))
      .Item;
  const deadline = Date.now() + 15_000;
  let written: Record<string, unknown> | undefined;
  while (Date.now() < deadline) {
    written = await item('store-gw-agent-0');
    if (written?.gateway === gatewayId) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(written?.gateway, gatewayId, `agent item: ${JSON.stringify(written)}\n${output()}`);
  // Its aggregate follows within FLEETGATE_AGGREGATE_MS (the first one, at start, counted none;
  // the default period, 30 s, would not publish another within this wait).
  const aggregate = async () =>
    (
      await doc.send(
        new GetCommand({
          TableName: tableName(db.prefix, 'configs'),
          Key: { scope: FLEET_SCOPE.gateway, name: gatewayId },
        }),
      )
    ).Item;
  let published: Record<string, unknown> | undefined;
  const aggregateBy = Date.now() + 10_000;
  while (Date.now() < aggregateBy) {
    published = await aggregate();
    if (published?.connected === 3) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(published?.connected, 3, `aggregate: ${JSON.stringify(published)}`);

  // A plugin task dispatched from elsewhere (here: a dispatcher in the test process, as the
  // Lambda's would be) reaches the agent through this gateway's control API, and the agent's
  // result record comes back into the store through the gateway's own result sink.
  const result = await runAgentTaskToResult(t, db, 'store-gw-agent-0', '{}');
  assert.ok(result, 'the result record reached the subtask');

  // A desired limit of 1: two streams are ended (status OK), the third stays.
  await putDesiredLimit(doc, db.prefix, gatewayId, 1);
  await waitFor(() => stats.connected === 1, 15_000, 'two agents shed');
  assert.equal(
    stats.errors.size,
    0,
    `streams ended with OK, no errors: ${JSON.stringify([...stats.errors])}`,
  );
  // The metrics say so.
  const control = Number(/control API\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(output())![1]);
  const text = await (await fetch(`http://127.0.0.1:${control}/metrics`)).text();
  assert.match(text, /^fleetgate_gateway_shed_connections_total 2$/m);
  assert.match(text, /^fleetgate_gateway_desired_limit 1$/m);
});
