/**
 * ECS task scale-in protection while the spool holds records (gateway/ingest/scale-in-protection.ts),
 * against an HTTP server on a free port that answers as the ECS agent's task-protection endpoint
 * does (PUT /task-protection/v1/state; 200 with `protection` or with `failure`).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { startScaleInProtection } from '../../gateway/ingest/scale-in-protection.js';
import { silentLogger } from '../../platform/obs/logger.js';

interface Call {
  method: string;
  path: string;
  body: Record<string, unknown>;
}

async function fakeEcsAgent(answer: (call: Call) => [number, unknown]) {
  const calls: Call[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const call = {
        method: req.method ?? '',
        path: req.url ?? '',
        body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>,
      };
      calls.push(call);
      const [status, body] = answer(call);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { uri: `http://127.0.0.1:${port}/v4/abc`, calls, close: () => new Promise((r) => server.close(r)) };
}

const metric = async (registry: Registry, name: string) =>
  (await registry.getSingleMetric(name)?.get())?.values[0]?.value;

test('protects the task while the spool holds records, renews before expiry, drops it when empty', async (t) => {
  const agent = await fakeEcsAgent(({ body }) => [
    200,
    {
      protection: { ProtectionEnabled: body.ProtectionEnabled, TaskArn: 'arn:aws:ecs:eu-west-1:1:task/c/t' },
    },
  ]);
  t.after(agent.close);
  let pending = 0;
  let clock = 0;
  const registry = new Registry();
  const p = startScaleInProtection({
    agentUri: agent.uri,
    pendingRecords: () => pending,
    logger: silentLogger(),
    registry,
    intervalMs: 3_600_000,
    expiresInMinutes: 10,
    now: () => clock,
  });
  t.after(() => p.stop());

  await p.check();
  assert.equal(agent.calls.length, 0, 'an empty spool asks nothing');

  pending = 120;
  await p.check();
  assert.deepEqual(agent.calls.at(-1), {
    method: 'PUT',
    path: '/v4/abc/task-protection/v1/state',
    body: { ProtectionEnabled: true, ExpiresInMinutes: 10 },
  });
  assert.equal(p.protected, true);
  assert.equal(await metric(registry, 'fleetgate_scale_in_protected'), 1);

  clock += 60_000;
  await p.check();
  assert.equal(agent.calls.length, 1, 'not renewed before half the expiry');
  clock += 5 * 60_000;
  await p.check();
  assert.equal(agent.calls.length, 2, 'renewed at half the expiry');
  assert.equal(agent.calls[1]!.body.ProtectionEnabled, true);

  pending = 0;
  await p.check();
  assert.deepEqual(agent.calls.at(-1)!.body, { ProtectionEnabled: false });
  assert.equal(p.protected, false);
  assert.equal(await metric(registry, 'fleetgate_scale_in_protected'), 0);
  await p.check();
  assert.equal(agent.calls.length, 3, 'nothing more while empty');
});

test('gateway processes sharing a task: one whose spool empties never drops the protection a sibling renews; it lapses', async (t) => {
  const agent = await fakeEcsAgent(({ body }) => [
    200,
    { protection: { ProtectionEnabled: body.ProtectionEnabled } },
  ]);
  t.after(agent.close);
  const pending = [10, 10];
  const [p0, p1] = [0, 1].map((i) =>
    startScaleInProtection({
      agentUri: agent.uri,
      pendingRecords: () => pending[i]!,
      logger: silentLogger(),
      intervalMs: 3_600_000,
      expiresInMinutes: 5,
      shared: true,
    }),
  ) as [ReturnType<typeof startScaleInProtection>, ReturnType<typeof startScaleInProtection>];
  t.after(() => Promise.all([p0.stop({ release: true }), p1.stop({ release: true })]));
  await Promise.all([p0.check(), p1.check()]);
  assert.equal(agent.calls.length, 2);
  pending[0] = 0;
  await p0.check();
  assert.equal(p0.protected, false);
  await p0.stop({ release: true });
  assert.equal(agent.calls.length, 2, 'p0 empty: nothing sent, p1 still protects the task');
  assert.ok(agent.calls.every((c) => c.body.ProtectionEnabled === true && c.body.ExpiresInMinutes === 5));
});

test('a refused or failed call is counted and retried at the next look, never thrown', async (t) => {
  let refuse = true;
  const agent = await fakeEcsAgent(() =>
    refuse
      ? [200, { failure: { Arn: 'arn:aws:ecs:eu-west-1:1:task/c/t', Reason: 'TASK_NOT_VALID' } }]
      : [200, { protection: { ProtectionEnabled: true } }],
  );
  t.after(agent.close);
  const registry = new Registry();
  const p = startScaleInProtection({
    agentUri: agent.uri,
    pendingRecords: async () => 7,
    logger: silentLogger(),
    registry,
    intervalMs: 3_600_000,
  });
  t.after(() => p.stop());
  await p.check();
  assert.equal(p.protected, false);
  assert.equal(await metric(registry, 'fleetgate_scale_in_protection_failures_total'), 1);
  refuse = false;
  await p.check();
  assert.equal(p.protected, true);
  assert.equal(agent.calls.length, 2);

  // No agent at all (the endpoint is gone): counted, not thrown.
  const gone = startScaleInProtection({
    agentUri: 'http://127.0.0.1:1',
    pendingRecords: () => 1,
    logger: silentLogger(),
    registry: new Registry(),
    intervalMs: 3_600_000,
  });
  await gone.check();
  assert.equal(gone.protected, false);
  await gone.stop();
});
