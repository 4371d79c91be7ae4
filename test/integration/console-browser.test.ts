/**
 * The operator console in a real browser (Chromium through playwright-core) against real
 * processes: `fleetgate all` and a second `fleetgate gateway` on one DynamoDB API (dynalite),
 * simulated agents (loadtest/sim) that find the gateways through discovery. An operator signs in;
 * the overview shows exactly the connected agent count; five agents are tagged from the table; a
 * plugin task to the tag reaches 100 % succeeded on its page without a reload (pushed over the
 * WebSocket); draining a gateway (its confirmation names the agent count) moves its agents to the
 * other; per gateway the overview shows records/s in and into Kafka (the second gateway produces to
 * the test broker, the first only spools) and spool depth; the agent page shows the task's result
 * and a drained agent's disconnect and reconnect; the audit log is filtered by the manager; a viewer
 * signs in with the keyboard, sees no action (and, without a WebSocket, the console polls); sign out.
 * Each page's screenshot goes to docs/console/ (shown in the README).
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import type { Page } from 'playwright-core';
import { readAgentTls } from '../../loadtest/agent/raw-agent.js';
import { SCENARIOS } from '../../loadtest/sim/scenario.js';
import { newStats, SimAgent } from '../../loadtest/sim/sim-agent.js';
import { httpEngine } from '../../platform/http/http-engine.js';
import { buildConsole } from '../../scripts/build-console.mjs';
import { launchBrowser } from '../helpers/browser.js';
import { startTestDynamo, storeGatewayEnv } from '../helpers/dynalite.js';
import { ROOT, spawnFleetgate, tempDir } from '../helpers/gateway.js';
import { BROKER, kafkaReady } from '../helpers/kafka.js';
import { AK, SK } from '../helpers/manager-harness.js';

const AGENTS = 12;
const ADMIN = { name: 'admin', password: 'console-admin-pass-1' };
const VIEWER = { name: 'watcher', password: 'console-viewer-pass-1' };
const SHOTS = path.join(ROOT, 'docs', 'console');

interface Fleet {
  url: string;
  sdUrl: string;
  gatewayA: string;
  gatewayB: string;
  agents: SimAgent[];
  api(method: string, p: string, body?: unknown, token?: string): Promise<{ status: number; json: unknown }>;
  adminToken: string;
}

async function startFleet(t: TestContext): Promise<Fleet> {
  const db = await startTestDynamo();
  t.after(() => db.close());
  const consoleDir = tempDir(t, 'fg-console-');
  await buildConsole(consoleDir);
  const common = {
    ...storeGatewayEnv(db),
    FLEETGATE_AKSK: `${AK}:${SK}`,
    FLEETGATE_SHED_RATE: '5',
    // What the console shows per gateway (connected, records/s, spool) comes from each gateway's
    // aggregate: published every half second here instead of every 30 s, so the pages show a
    // change (the agents arriving, a drain) within a second instead of half a minute.
    FLEETGATE_AGGREGATE_MS: '500',
  };
  const dirA = tempDir(t);
  const a = spawnFleetgate(
    'all',
    dirA,
    {
      ...common,
      FLEETGATE_SD_PORT: '0',
      FLEETGATE_MANAGER_PORT: '0',
      FLEETGATE_ADMIN: `${ADMIN.name}:${ADMIN.password}`,
      FLEETGATE_CONSOLE_DIR: consoleDir,
    },
    { ready: (out) => /operator console\s+http/.test(out) },
  );
  t.after(() => a.child.kill('SIGKILL'));
  const portA = await a.port;
  const url = /operator console\s+(http:\/\/\S+)/.exec(a.output())![1]!;
  const sdUrl = /discovery\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(a.output())![1]!;
  // The second gateway produces to Kafka; the first is spool-only: the overview shows both paths.
  await kafkaReady();
  const b = spawnFleetgate('gateway', tempDir(t), {
    ...common,
    FLEETGATE_KAFKA_BROKERS: BROKER,
    FLEETGATE_KAFKA_TOPIC: `console-${process.pid}`,
    FLEETGATE_SD_ADDRS: sdUrl.replace('http://', ''),
    FLEETGATE_PKI_DIR: path.join(dirA, 'pki'),
  });
  t.after(() => b.child.kill('SIGKILL'));
  const portB = await b.port;

  const api: Fleet['api'] = async (method, p, body, token) => {
    const res = await fetch(new URL(p, url), {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: await res.json() };
  };
  const login = await api('POST', '/api/v1/user/login', { username: ADMIN.name, password: ADMIN.password });
  const adminToken = (login.json as { data: { token: string } }).data.token;
  // The simulated agents run a plugin task only when their config has the plugin.
  const set = await api(
    'PUT',
    '/api/fleet/configs/default',
    {
      config: [
        {
          name: 'collector',
          type: 'go',
          signature: 'sig',
          version: '1.0.0.1',
          sha256: 'a'.repeat(64),
          download_url: ['http://example.invalid/collector'],
          detail: '',
        },
      ],
    },
    adminToken,
  );
  assert.equal(set.status, 200, JSON.stringify(set.json));
  const created = await api(
    'POST',
    '/api/fleet/users',
    { username: VIEWER.name, password: VIEWER.password, role: 'viewer' },
    adminToken,
  );
  assert.equal(created.status, 201, JSON.stringify(created.json));

  // Both gateways in discovery before the agents ask, so the agents spread over both.
  const gatewayA = `127.0.0.1:${portA}`;
  const gatewayB = `127.0.0.1:${portB}`;
  await waitForAsync(async () => {
    const r = await fetch(`${sdUrl}/registry/detail?name=hids_svr_grpc`);
    const text = await r.text();
    return text.includes(String(portA)) && text.includes(String(portB));
  }, 'both gateways in discovery');
  const tls = readAgentTls(path.join(dirA, 'pki'));
  const stats = newStats();
  const scenario = { ...SCENARIOS.steady!, eventsPerAgentPerS: 2 };
  const agents = Array.from(
    { length: AGENTS },
    (_, i) =>
      new SimAgent(`console-agent-${String(i).padStart(2, '0')}`, i, {
        tls,
        discovery: sdUrl,
        scenario,
        stats,
      }),
  );
  t.after(() => {
    for (const ag of agents) ag.stop();
  });
  for (const ag of agents) ag.start();
  return { url, sdUrl, gatewayA, gatewayB, agents, api, adminToken };
}

async function waitForAsync(fn: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function signIn(page: Page, url: string, who: { name: string; password: string }): Promise<void> {
  await page.goto(url);
  await page.getByLabel('User name').fill(who.name);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('who').waitFor();
}

/** The agents the manager's index shows on `gateway`. */
async function agentsOn(f: Fleet, gateway: string): Promise<string[]> {
  const r = await f.api('GET', `/api/fleet/agents?fresh=1&page_size=100`, undefined, f.adminToken);
  const rows = (r.json as { items: Array<{ agent_id: string; gateway: string }> }).items;
  return rows.filter((a) => a.gateway === gateway).map((a) => a.agent_id);
}

/** The gateways the agents are on, from the API (what the console should agree with). */
async function connectedBy(f: Fleet): Promise<Map<string, number>> {
  const r = await f.api('GET', '/api/fleet/gateways', undefined, f.adminToken);
  const gws = (r.json as { gateways: Array<{ id: string; connected: number; alive: boolean }> }).gateways;
  return new Map(gws.filter((g) => g.alive).map((g) => [g.id, g.connected]));
}

test('the operator console in Chromium against fleetgate all and simulated agents', async (t) => {
  const f = await startFleet(t);
  await waitForAsync(async () => {
    const by = await connectedBy(f);
    return [...by.values()].reduce((n, c) => n + c, 0) === AGENTS && (by.get(f.gatewayB) ?? 0) > 0;
  }, `${AGENTS} agents connected, some on the second gateway`);

  const { page, errors } = await launchBrowser(t);

  // Sign in; the overview shows exactly the connected agent count, over the WebSocket (on the
  // node:http engine, where the manager has no WebSocket, by polling).
  await signIn(page, f.url, ADMIN);
  const liveMode = httpEngine().name === 'uws' ? 'live' : 'polling';
  await page.getByTestId('live-mode').filter({ hasText: liveMode }).waitFor();
  await page
    .getByTestId('connected-count')
    .filter({ hasText: String(AGENTS) })
    .waitFor();
  assert.equal(await page.getByTestId('connected-count').textContent(), String(AGENTS));
  // Per gateway: records/s in, records/s into Kafka and the spool, as each gateway published them.
  const cell = (gw: string, id: string) => page.getByTestId(`overview-gateway-${gw}`).getByTestId(id);
  const positive = /^[1-9]\d*(\.\d)?$|^0\.[1-9]$/;
  await cell(f.gatewayA, 'records-in').filter({ hasText: positive }).waitFor({ timeout: 70_000 });
  await cell(f.gatewayB, 'records-in').filter({ hasText: positive }).waitFor({ timeout: 70_000 });
  await cell(f.gatewayB, 'records-kafka').filter({ hasText: positive }).waitFor({ timeout: 70_000 });
  assert.equal(await cell(f.gatewayA, 'records-kafka').textContent(), '0', 'spool-only: nothing into Kafka');
  assert.match((await cell(f.gatewayA, 'spool-depth').textContent()) ?? '', /^[1-9]\d* records/);
  assert.match((await cell(f.gatewayB, 'spool-depth').textContent()) ?? '', /^0 records/);
  await page.getByRole('img', { name: 'Records/s in over the last hour' }).waitFor();
  await shot(page, 'overview');
  // Marks this document: still there at the end means the page was never reloaded.
  await page.evaluate(() => {
    (globalThis as unknown as { noReload: boolean }).noReload = true;
  });

  // Tag five agents from the table.
  await page.getByRole('link', { name: 'Agents' }).click();
  await page
    .getByTestId('agent-row')
    .nth(AGENTS - 1)
    .waitFor();
  assert.equal(await page.getByTestId('agent-row').count(), AGENTS);
  // Sorted by the manager: by agent ID, descending, then ascending again.
  await page.getByRole('button', { name: 'Agent ID' }).click();
  await page.getByTestId('agent-row').first().filter({ hasText: 'console-agent-11' }).waitFor();
  await page.getByRole('button', { name: 'Agent ID' }).click();
  await page.getByTestId('agent-row').first().filter({ hasText: 'console-agent-00' }).waitFor();
  for (let i = 0; i < 5; i++) await page.getByLabel(`select console-agent-0${i}`).check();
  await page.getByLabel('Tag for the selected agents').fill('canary');
  await page.getByRole('button', { name: 'Add tag' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Add tag' }).click();
  await page.getByText('Tagged 5 agent(s) “canary”.').waitFor();
  // The table is read again from the manager: the five rows show the tag.
  await waitForAsync(
    async () => (await page.getByTestId('agent-row').filter({ hasText: 'canary' }).count()) === 5,
    'five rows tagged canary in the table',
  );
  await shot(page, 'agents');
  const tags = await f.api('POST', '/api/v1/getTags', { id_list: f.agents.map((a) => a.id) }, f.adminToken);
  const tagged = Object.entries((tags.json as { data: Record<string, string> }).data).filter(([, v]) =>
    v.split(',').includes('canary'),
  );
  assert.deepEqual(
    tagged.map(([id]) => id).sort(),
    [0, 1, 2, 3, 4].map((i) => `console-agent-0${i}`),
  );

  // A plugin task to the tag: target preview, fan-out confirmation, live progress to 100 %.
  await page.goto(`${f.url}#/tasks/new`);
  await page.evaluate(() => {
    (globalThis as unknown as { noReload: boolean }).noReload = true;
  });
  await page.getByLabel('Tag', { exact: true }).fill('canary');
  await page.getByLabel('Plugin name').fill('collector');
  await page.getByRole('button', { name: 'Preview target' }).click();
  await page.getByTestId('target-preview').filter({ hasText: '5 agent(s), 5 online' }).waitFor();
  await shot(page, 'task-new');
  await page.getByRole('button', { name: 'Create and run' }).click();
  assert.equal(await page.getByTestId('fanout-count').textContent(), '5');
  await page.getByRole('dialog').getByRole('button', { name: 'Send to 5 agents' }).click();
  await page.getByTestId('task-progress').waitFor();
  await page.getByTestId('task-progress').filter({ hasText: '100 % succeeded' }).waitFor({ timeout: 60_000 });
  assert.match((await page.getByTestId('task-progress').textContent()) ?? '', /5 succeeded, 0 failed/);
  assert.equal(await page.evaluate(() => (globalThis as unknown as { noReload?: boolean }).noReload), true);
  await shot(page, 'task');
  await page.getByRole('link', { name: 'Tasks' }).click();
  await page.getByRole('heading', { name: 'Tasks' }).waitFor();
  await shot(page, 'tasks');

  // Drain the second gateway: its agents move to the first, shown live.
  const onB = await agentsOn(f, f.gatewayB);
  assert.ok(onB.length > 0, 'some agents on the second gateway');
  await page.getByRole('link', { name: 'Gateways' }).click();
  const rowB = page.getByTestId(`gateway-${f.gatewayB}`);
  await rowB.getByRole('button', { name: 'Drain…' }).click();
  const dialog = page.getByRole('dialog');
  // The confirmation says how many agents move: the gateway's connections now.
  const onBNow = (await connectedBy(f)).get(f.gatewayB) ?? 0;
  await dialog.getByText(`${onBNow} agent(s) will be sent away from this gateway`).waitFor();
  await dialog.getByRole('button', { name: 'Drain' }).click();
  await rowB.getByTestId('gateway-connected').filter({ hasText: /^0$/ }).waitFor({ timeout: 60_000 });
  await page
    .getByTestId(`gateway-${f.gatewayA}`)
    .getByTestId('gateway-connected')
    .filter({ hasText: new RegExp(`^${AGENTS}$`) })
    .waitFor({ timeout: 60_000 });
  assert.equal(await page.evaluate(() => (globalThis as unknown as { noReload?: boolean }).noReload), true);
  await shot(page, 'gateways');

  // Agent detail: the task just run with its result, and the connection history of the move.
  await page.goto(`${f.url}#/agents/${encodeURIComponent('console-agent-00')}`);
  await page.getByRole('heading', { name: 'Agent console-agent-00' }).waitFor();
  await page.getByText('Effective config').waitFor();
  await page.getByTestId('agent-tasks').getByRole('row').filter({ hasText: 'succeeded' }).first().waitFor();
  await page
    .getByTestId('agent-connections')
    .getByRole('row')
    .filter({ hasText: 'connected' })
    .first()
    .waitFor();
  await shot(page, 'agent');
  const moved = onB[0]!;
  await page.goto(`${f.url}#/agents/${encodeURIComponent(moved)}`);
  const history = page.getByTestId('agent-connections');
  await history.waitFor();
  await history
    .getByRole('row')
    .filter({ hasText: 'disconnected' })
    .filter({ hasText: f.gatewayB })
    .waitFor();
  await history
    .getByRole('row')
    .filter({ hasText: /^connected/ })
    .filter({ hasText: f.gatewayA })
    .first()
    .waitFor();

  // Configs with a diff before saving (reviewed, then cancelled).
  await page.getByRole('link', { name: 'Configs' }).click();
  const editor = page.getByLabel('config items (JSON)');
  await editor.waitFor();
  const text = await editor.inputValue();
  await editor.fill(text.replace('1.0.0.1', '1.0.0.2'));
  await page.getByRole('button', { name: 'Review and save…' }).click();
  await page.getByTestId('config-diff').filter({ hasText: '+   "version": "1.0.0.2"' }).waitFor();
  await shot(page, 'configs');
  // Keyboard: Esc cancels the dialog.
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'hidden' });

  // Admin pages.
  await page.getByRole('link', { name: 'Users & audit' }).click();
  await page.getByRole('cell', { name: VIEWER.name, exact: true }).waitFor();
  await shot(page, 'users');
  await page.getByRole('link', { name: 'API keys' }).click();
  await page.getByRole('button', { name: 'Create key for me' }).waitFor();
  await shot(page, 'apikeys');
  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.getByRole('cell', { name: 'PUT /api/fleet/gateways/:id/limit' }).first().waitFor();
  // Filtered by the manager: the drain only (action and target), then nothing for a stranger.
  await page.getByLabel('Action').fill('gateways');
  await page.getByLabel('Target').fill(f.gatewayB);
  await page.getByLabel('Result').selectOption('ok');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await waitForAsync(async () => (await page.getByTestId('audit-row').count()) === 1, 'one drain entry');
  assert.match(
    (await page.getByTestId('audit-row').textContent()) ?? '',
    /PUT \/api\/fleet\/gateways\/:id\/limit/,
  );
  await shot(page, 'audit');
  await page.getByLabel('Actor').fill('user:nobody');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByText('No entries match.').waitFor();

  // Sign out.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();

  // A viewer sees no action, and the server refuses one anyway. This session has no WebSocket
  // (as behind API Gateway): the console polls and still shows the fleet.
  await page.context().routeWebSocket(/\/api\/fleet\/live\/ws/, (ws) => ws.close());
  // Signed in with the keyboard only: type, Tab, type, Enter.
  await page.goto(f.url);
  await page.getByLabel('User name').focus();
  await page.keyboard.type(VIEWER.name);
  await page.keyboard.press('Tab');
  await page.keyboard.type(VIEWER.password);
  await page.keyboard.press('Enter');
  await page.getByTestId('who').waitFor();
  await page.getByTestId('live-mode').filter({ hasText: 'polling' }).waitFor();
  await page
    .getByTestId('connected-count')
    .filter({ hasText: String(AGENTS) })
    .waitFor();
  // Usable on a narrow screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, 'overview-narrow');
  await page.setViewportSize({ width: 1280, height: 800 });
  const actions =
    /Add tag|Remove tag|Create task|New task|Drain|Set limit|Clear limit|Rebalance|Cancel task|Review and save|Create user|Revoke/;
  for (const where of ['agents', 'gateways', 'tasks', 'configs']) {
    await page.goto(`${f.url}#/${where}`);
    await page.getByRole('heading', { level: 1 }).waitFor();
    await page.waitForLoadState('networkidle');
    assert.equal(await page.getByRole('button', { name: actions }).count(), 0, `no action on ${where}`);
    assert.equal(await page.getByRole('link', { name: actions }).count(), 0, `no action link on ${where}`);
    assert.equal(await page.getByRole('checkbox').count(), 0, `no selection on ${where}`);
  }
  await page.goto(`${f.url}#/agents`);
  await page.getByTestId('agent-row').first().waitFor();
  await shot(page, 'viewer-agents');
  const refused = await page.evaluate(async (gw) => {
    const storage = (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } })
      .sessionStorage;
    const token = storage.getItem('fleetgate.token');
    const r = await fetch(`/api/fleet/gateways/${encodeURIComponent(gw)}/limit`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ limit: 0 }),
    });
    return r.status;
  }, f.gatewayA);
  assert.equal(refused, 403);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  await shot(page, 'sign-in');

  assert.deepEqual(
    errors.filter((e) => /Content Security Policy|Refused to|TypeError|ReferenceError/.test(e)),
    [],
  );
});
