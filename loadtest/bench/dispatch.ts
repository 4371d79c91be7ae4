/**
 * `npm run bench:dispatch`: a config task to 10,000 simulated agents on three gateways, this
 * machine. Measures the time from `run` until every subtask is result_succeed (and until every
 * agent has its command), and the DynamoDB requests per agent (counted by a middleware on the
 * manager's client). Baseline, side by side: Elkeid's way (docs/elkeid-protocol.md §4.5–§4.6) — one
 * signed `POST /command` per agent, 100 in flight per job, each preceded by a read of the agent's
 * item (where it is) and followed by a write of its subtask — against the same gateways, agents and store.
 *
 * Layout: this process holds dynalite (on disk, as `fleetgate all`), the three gateways with
 * their control APIs and heartbeat writers, and the manager's task service and dispatcher; the
 * agents run in one child process per gateway (mTLS over loopback, several source addresses).
 * Everything shares two cores, so the numbers are what one small machine does end to end.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GetCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { Registry } from 'prom-client';
import type { IngestSink } from '../../gateway/ingest/sink.js';
import { startControlApi } from '../../gateway/process/control-api.js';
import { type Gateway, startGateway } from '../../gateway/process/gateway.js';
import { createHeartbeatWriter, type HeartbeatWriter } from '../../manager/agent-status-writer.js';
import { createConfigStore } from '../../manager/configs.js';
import { mapLimit } from '../../manager/store.js';
import { createConfigPlanner } from '../../manager/tasks/config-plan.js';
import { contextFrom, createDispatcher } from '../../manager/tasks/dispatcher.js';
import { createTaskService } from '../../manager/tasks/service.js';
import type { ConfigItem } from '../../manager/tasks/types.js';
import { signRequest } from '../../platform/http/aksk.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { createDynamoClient, ensureTables } from '../../platform/store/dynamo-client.js';
import { startEmbeddedDynamo } from '../../platform/store/embedded.js';
import { loopbackSources, writeBenchPki } from './bench-setup.js';
import {
  childScripts,
  loadAverageNow,
  printProblems,
  progressWriter,
  runDriver,
  sleep,
  writeJsonReport,
} from './driver.js';
import { machineInfo } from './machine.js';

const HELP = `Usage: npm run bench:dispatch -- [options]

A config task to N simulated agents on three gateways: time until every subtask is
result_succeed, and DynamoDB requests per agent; Elkeid's one-POST-per-agent dispatch as the
baseline, side by side.

Options:
  --agents N       simulated agents (default 10000)
  --gateways N     gateways (default 3)
  --parallel N     chunks the dispatcher processes at once (default 32)
  --no-baseline    skip the baseline
  --memory-store   dynalite in memory instead of on disk (\`fleetgate all\` uses disk)
  --in-process-store
                   dynalite in this process, as \`fleetgate all\` runs it (default: its own
                   process, as DynamoDB is a service of its own in production)
  --json FILE      also write the results as JSON
  --help           this text

Progress goes to stderr; the result table to stdout. Bounded: every wait gives up after 180 s.`;

const { values } = parseArgs({
  options: {
    agents: { type: 'string' },
    gateways: { type: 'string' },
    'no-baseline': { type: 'boolean', default: false },
    parallel: { type: 'string' },
    'memory-store': { type: 'boolean', default: false },
    'in-process-store': { type: 'boolean', default: false },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const AGENTS = Number(values.agents ?? 10_000);
const GATEWAYS = Number(values.gateways ?? 3);
if (!Number.isInteger(AGENTS) || AGENTS < 1 || !Number.isInteger(GATEWAYS) || GATEWAYS < 1) {
  console.error('--agents and --gateways must be positive integers');
  process.exit(2);
}
const PARALLEL = Number(values.parallel ?? 32);
const GOAL_S = 5;
const WAIT_MS = 180_000;
const AK = 'benchdispatchak01';
const SK = 'bench-dispatch-secret-key-0123456789';

const { tsNodeArgs, script } = childScripts(import.meta.url);
const t0 = Date.now();
const progress = progressWriter('bench', t0);

interface Result {
  name: string;
  value: number | null;
  unit: string;
  goal?: number;
  meetsGoal?: boolean;
}

const nullSink: IngestSink = {
  name: 'null',
  write() {},
  async flush() {},
  async close() {},
};

const collector = (version: string): ConfigItem => ({
  name: 'collector',
  type: 'tar.gz',
  version,
  sha256: 'c'.repeat(64),
  download_url: ['https://dl.example/collector.tar.gz'],
});

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(50);
  }
}

interface ChildReport {
  connected: number;
  commands: number;
  byVersion: Record<string, { agents: number; twice: number }>;
}

async function main(): Promise<number> {
  const machine = machineInfo();
  progress(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory}, node ${machine.node}, load ${machine.loadAverageAtStart.join(' ')}`,
  );
  const work = mkdtempSync(path.join(os.tmpdir(), 'fg-bench-dispatch-'));
  const pkiDir = path.join(work, 'pki');
  mkdirSync(pkiDir);
  await writeBenchPki(pkiDir);
  const sources = await loopbackSources(8);

  const onDisk = !values['memory-store'];
  const inProcess = values['in-process-store'] === true;
  const dir = onDisk ? path.join(work, 'dynamodb') : undefined;
  const dynamo: { endpoint: string; close(): Promise<void> } = inProcess
    ? await startEmbeddedDynamo({ dir })
    : await new Promise((resolve, reject) => {
        const child = fork(script('dynalite-server'), [], {
          execArgv: tsNodeArgs,
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        child.once('error', reject);
        child.once('message', (m: { endpoint: string }) =>
          resolve({
            endpoint: m.endpoint,
            close: () =>
              new Promise<void>((done) => {
                child.once('exit', () => done());
                child.send('stop');
              }),
          }),
        );
        child.send(dir ? { dir } : {});
      });
  const prefix = 'bench-';
  const gwClient = createDynamoClient({ endpoint: dynamo.endpoint, requestTimeoutMs: 10_000 });
  const mgrClient = createDynamoClient({ endpoint: dynamo.endpoint, requestTimeoutMs: 10_000 });
  await ensureTables(gwClient, prefix);
  // Every DynamoDB call the manager side makes (retries of the SDK not included), by operation.
  const calls = new Map<string, number>();
  mgrClient.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String((context as { commandName?: string }).commandName ?? 'unknown').replace(
        /Command$/,
        '',
      );
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name: 'fleetgateBenchCounter' },
  );
  const snapshotCalls = () => new Map(calls);
  const callsSince = (before: Map<string, number>) => {
    const out: Record<string, number> = {};
    let total = 0;
    for (const [k, v] of calls) {
      const d = v - (before.get(k) ?? 0);
      if (d > 0) {
        out[k] = d;
        total += d;
      }
    }
    return { total, byOperation: out };
  };

  // Gateways with their control APIs and status writers.
  const gateways: Array<{ gateway: Gateway; writer: HeartbeatWriter; controlAddr: string; close(): void }> =
    [];
  for (let i = 0; i < GATEWAYS; i++) {
    const dataDir = path.join(work, `gw${i}`);
    mkdirSync(dataDir);
    const gateway = await startGateway({
      config: {
        dataDir,
        pkiDir,
        identity: 'fleet',
        host: '127.0.0.1',
        grpcPort: 0,
        maxConnections: Math.ceil(AGENTS / GATEWAYS) + 1000,
      },
      logger: silentLogger(),
      sink: nullSink,
    });
    const api = await startControlApi({
      host: '127.0.0.1',
      port: 0,
      sessions: gateway.sessions,
      guard: gateway.guard,
      metrics: gateway.metrics,
      logger: silentLogger(),
      aksk: [[AK, SK]],
      ready: () => true,
    });
    const controlAddr = `127.0.0.1:${api.port}`;
    const writer = createHeartbeatWriter({
      client: gwClient,
      tablePrefix: prefix,
      gatewayId: `127.0.0.1:${gateway.grpcPort}`,
      controlAddr,
      sessions: gateway.sessions,
      logger: silentLogger(),
      aggregateMs: 1000,
      loadTags: false,
    });
    writer.start();
    gateways.push({ gateway, writer, controlAddr, close: () => api.close() });
  }
  progress(
    `${GATEWAYS} gateways up; dynalite at ${dynamo.endpoint} (on disk); ${sources.length} extra loopback sources`,
  );

  // Agents, one child process per gateway.
  const per = Math.ceil(AGENTS / GATEWAYS);
  const reports = new Map<number, ChildReport>();
  const children: ChildProcess[] = [];
  for (let i = 0; i < GATEWAYS; i++) {
    const n = Math.min(per, AGENTS - i * per);
    if (n <= 0) continue;
    const child = fork(script('dispatch-agents'), [], {
      execArgv: tsNodeArgs,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (m: ChildReport) => reports.set(i, m));
    child.send({
      agents: n,
      firstIndex: i * per,
      pkiDir,
      gateway: { host: '127.0.0.1', port: gateways[i]!.gateway.grpcPort },
      sources,
    });
    children.push(child);
  }
  const sum = (f: (r: ChildReport) => number) => [...reports.values()].reduce((a, r) => a + f(r), 0);
  const agentsWith = (version: string) => sum((r) => r.byVersion[version]?.agents ?? 0);
  const twiceWith = (version: string) => sum((r) => r.byVersion[version]?.twice ?? 0);

  const results: Result[] = [];
  const baseline: Result[] = [];
  const notes: string[] = [];
  const problems: string[] = [];
  try {
    let last = 0;
    await until('every agent connected', () => {
      const c = sum((r) => r.connected);
      if (Date.now() - last > 2000) {
        last = Date.now();
        progress(`agents connected: ${c} / ${AGENTS}`);
      }
      return c >= AGENTS;
    });
    // Status in the store: every agent online with its gateway (the writers' connect writes).
    const registry = new Registry();
    const ctx = contextFrom({ client: mgrClient, tablePrefix: prefix, logger: silentLogger(), registry });
    const onlineIds = async (): Promise<string[]> => {
      const ids: string[] = [];
      let start: Record<string, unknown> | undefined;
      do {
        const page = await ctx.store.doc.send(
          new ScanCommand({
            TableName: ctx.tables.agents,
            ProjectionExpression: 'agentId, #o',
            ExpressionAttributeNames: { '#o': 'online' },
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
        for (const i of page.Items ?? []) if (i.online === true) ids.push(String(i.agentId));
        start = page.LastEvaluatedKey as Record<string, unknown> | undefined;
      } while (start);
      return ids;
    };
    let ids: string[] = [];
    await until('every agent online in the store', async () => {
      await Promise.all(gateways.map((g) => g.writer.settle()));
      ids = await onlineIds();
      progress(`agents online in the store: ${ids.length} / ${AGENTS}`);
      if (ids.length < AGENTS) await sleep(1000);
      return ids.length >= AGENTS;
    });
    await Promise.all(gateways.map((g) => g.writer.publishAggregate()));
    // A default config of two plugins: what each agent is sent is the merged full list.
    await createConfigStore({ client: gwClient, tablePrefix: prefix }).replace(
      'default',
      [
        { ...collector('0.9.0'), signature: '', detail: '' } as never,
        {
          name: 'driver',
          type: 'tar.gz',
          version: '1.0.0',
          sha256: 'd'.repeat(64),
          download_url: ['https://dl.example/driver.tar.gz'],
          signature: '',
          detail: '',
        },
      ],
      'bench',
    );

    const service = createTaskService(ctx, { aksk: [[AK, SK]], fanoutConfirmAbove: AGENTS + 1 });
    const dispatcher = createDispatcher({
      ctx,
      aksk: [[AK, SK]],
      logger: silentLogger(),
      parallelChunks: PARALLEL,
    });
    dispatcher.start();
    // As the manager role does: a run wakes the dispatcher of its process.
    ctx.onRun = () => dispatcher.wake();

    // ---- ours ----------------------------------------------------------------------------
    progress(`ours: creating a config task for ${ids.length} agents`);
    const beforeCreate = snapshotCalls();
    let t = Date.now();
    const created = await service.create({
      type: 'Agent_Config',
      target: { id_list: ids },
      data: { config: [collector('bench-1')] },
      user: 'bench',
    });
    const createMs = Date.now() - t;
    const createCalls = callsSince(beforeCreate);
    progress(`ours: created ${created.task_id} (${created.count} subtasks) in ${createMs} ms; running`);
    const beforeRun = snapshotCalls();
    t = Date.now();
    await service.run({ task_id: created.task_id, user: 'bench' });
    let agentsAt = 0;
    let doneAt = 0;
    let lastLog = 0;
    await until('every subtask result_succeed', async () => {
      if (!agentsAt && agentsWith('bench-1') >= ids.length) agentsAt = Date.now();
      const v = await service.get(created.task_id);
      const done = v?.counts.result_succeed ?? 0;
      if (Date.now() - lastLog > 1000) {
        lastLog = Date.now();
        progress(`ours: ${done} result_succeed, ${agentsWith('bench-1')} agents have the command`);
      }
      if (done >= ids.length && !doneAt) doneAt = Date.now();
      return doneAt > 0 && agentsAt > 0;
    });
    const dispatchMs = doneAt - t;
    const dispatchCalls = callsSince(beforeRun);
    await dispatcher.stop();
    // Every subtask, read back, not only the counters.
    let final = 0;
    let cursor: string | undefined;
    do {
      const page = await service.subtasks(created.task_id, { limit: 500, ...(cursor ? { cursor } : {}) });
      final += page.items.filter((s) => s.status === 'result_succeed').length;
      cursor = page.cursor;
    } while (cursor);
    if (final !== ids.length)
      problems.push(`ours: ${final} of ${ids.length} subtasks result_succeed on read-back`);
    if (twiceWith('bench-1') > 0)
      problems.push(`ours: ${twiceWith('bench-1')} agents received the command twice`);
    results.push(
      {
        name: 'dispatch: run → every subtask result_succeed',
        value: dispatchMs / 1000,
        unit: 's',
        goal: GOAL_S,
      },
      { name: 'dispatch: run → every agent has its command', value: (agentsAt - t) / 1000, unit: 's' },
      { name: 'create: subtasks and chunks written', value: createMs / 1000, unit: 's' },
      {
        name: 'DynamoDB requests per agent (run → done)',
        value: dispatchCalls.total / ids.length,
        unit: 'requests/agent',
      },
      {
        name: 'DynamoDB requests per agent (create)',
        value: createCalls.total / ids.length,
        unit: 'requests/agent',
      },
      { name: 'agents that received the command twice', value: twiceWith('bench-1'), unit: 'agents' },
    );
    notes.push(`ours run → done by operation: ${JSON.stringify(dispatchCalls.byOperation)}`);
    notes.push(`ours create by operation: ${JSON.stringify(createCalls.byOperation)}`);

    // ---- baseline: Elkeid's per-agent POST /command -------------------------------------
    if (!values['no-baseline']) {
      const b = await service.create({
        type: 'Agent_Config',
        target: { id_list: ids },
        data: { config: [collector('bench-2')] },
        user: 'bench',
      });
      const planner = createConfigPlanner(ctx);
      const gwMap = await ctx.agents.gateways({ fresh: true });
      progress(`baseline: one signed POST /command per agent, 100 in flight`);
      const beforeBase = snapshotCalls();
      t = Date.now();
      let ok = 0;
      let failed = 0;
      lastLog = 0;
      await mapLimit(ids, 100, async (agentId) => {
        // Where the agent is (Elkeid reads its heartbeat document), its merged config, the POST,
        // then the subtask's state (Elkeid updates the subtask after each POST).
        const a = await ctx.store.doc.send(
          new GetCommand({ TableName: ctx.tables.agents, Key: { agentId } }),
        );
        const addr = gwMap.get(String(a.Item?.gateway))?.controlAddr;
        const config = (await planner.forAgents([agentId], [collector('bench-2')] as never)).get(agentId);
        const body = JSON.stringify({ agent_id: agentId, command: { config } });
        let state = 'result_failed';
        try {
          const res = await fetch(`http://${addr}/command`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              ...signRequest({ method: 'POST', path: '/command', query: '', body, ak: AK, sk: SK }),
            },
            body,
            signal: AbortSignal.timeout(15_000),
          });
          const json = (await res.json()) as { code?: number };
          if (json.code === 0) state = 'result_succeed';
        } catch {
          // counted as failed
        }
        if (state === 'result_succeed') ok++;
        else failed++;
        await ctx.store.doc.send(
          new UpdateCommand({
            TableName: ctx.tables.subtasks,
            Key: { taskId: b.task_id, agentId },
            UpdateExpression: 'SET #s = :s, #u = :u',
            ExpressionAttributeNames: { '#s': 'state', '#u': 'updatedAt' },
            ExpressionAttributeValues: { ':s': state, ':u': Date.now() },
          }),
        );
        if (Date.now() - lastLog > 1000) {
          lastLog = Date.now();
          progress(`baseline: ${ok + failed} / ${ids.length}`);
        }
      });
      const baseMs = Date.now() - t;
      const baseCalls = callsSince(beforeBase);
      await until('baseline commands at the agents', () => agentsWith('bench-2') >= ok, 30_000).catch(() => {
        problems.push(`baseline: only ${agentsWith('bench-2')} agents report the command`);
      });
      if (failed > 0) problems.push(`baseline: ${failed} POSTs failed`);
      baseline.push(
        {
          name: 'dispatch: run → every subtask result_succeed',
          value: baseMs / 1000,
          unit: 's',
          goal: GOAL_S,
        },
        { name: 'dispatch: run → every agent has its command', value: baseMs / 1000, unit: 's' },
        { name: 'create: subtasks and chunks written', value: null, unit: 's' },
        {
          name: 'DynamoDB requests per agent (run → done)',
          value: baseCalls.total / ids.length,
          unit: 'requests/agent',
        },
        { name: 'DynamoDB requests per agent (create)', value: null, unit: 'requests/agent' },
        { name: 'agents that received the command twice', value: twiceWith('bench-2'), unit: 'agents' },
      );
      notes.push(`baseline by operation: ${JSON.stringify(baseCalls.byOperation)}`);
    }
  } finally {
    for (const c of children) c.send('stop');
    await sleep(500);
    for (const g of gateways) {
      await g.gateway.shutdown(1000).catch(() => {});
      await g.writer.close().catch(() => {});
      g.close();
    }
    gwClient.destroy();
    mgrClient.destroy();
    await dynamo.close();
    rmSync(work, { recursive: true, force: true });
  }

  for (const r of [...results, ...baseline]) {
    if (r.goal !== undefined && r.value !== null) r.meetsGoal = r.value <= r.goal;
  }
  const loadAverageAtEnd = loadAverageNow();
  const fmt = (v: number | null, unit: string) =>
    v === null ? '—' : unit === 's' ? v.toFixed(2) : v >= 100 ? v.toFixed(0) : v.toFixed(2);
  console.log(
    `\nfleetgate dispatch: a config task to ${AGENTS} agents on ${GATEWAYS} gateways — ${machine.cpu}, ${machine.cores} cores, node ${machine.node}`,
  );
  console.log(`load average ${machine.loadAverageAtStart.join('/')} → ${loadAverageAtEnd.join('/')}\n`);
  const w = Math.max(...results.map((r) => r.name.length));
  console.log(`${'measure'.padEnd(w)}  ${'ours'.padStart(10)}  ${'Elkeid-style'.padStart(12)}  unit`);
  for (const [i, r] of results.entries()) {
    const b = baseline[i];
    const goal = r.goal !== undefined ? `  (goal ≤ ${r.goal}${r.meetsGoal ? ', met' : ', missed'})` : '';
    console.log(
      `${r.name.padEnd(w)}  ${fmt(r.value, r.unit).padStart(10)}  ${(b ? fmt(b.value, b.unit) : '—').padStart(12)}  ${r.unit}${goal}`,
    );
  }
  for (const n of notes) console.log(`note: ${n}`);
  printProblems(problems);
  if (values.json) {
    const doc = {
      bench: 'dispatch',
      machine: { ...machine, loadAverageAtEnd },
      config: {
        agents: AGENTS,
        gateways: GATEWAYS,
        store: `dynalite (${onDisk ? 'on disk' : 'in memory'}, ${inProcess ? 'in the measured process' : 'its own process'})`,
        chunk: 100,
        parallelChunks: PARALLEL,
      },
      results,
      baseline: {
        name: "Elkeid's dispatch: one signed POST /command per agent, 100 in flight",
        results: baseline,
      },
      notes,
      problems,
    };
    writeJsonReport(values.json, doc, { t0, progress });
  }
  progress(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return problems.length > 0 ? 1 : 0;
}

runDriver(main);
