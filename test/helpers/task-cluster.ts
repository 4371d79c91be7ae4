/**
 * A task-dispatch cluster for tests: one dynalite, N real gateways (mTLS gRPC + the signed
 * control API with its delivery guard), each with a HeartbeatWriter (agent status, controlAddr in
 * its aggregate) and a batching TaskResultSink into the task service, and simulated agents whose
 * received commands are recorded per agent (deliveries per (agent, token) are countable).
 * Dispatchers are created by the test (several may share the store).
 */
import type { TestContext } from 'node:test';
import { Registry } from 'prom-client';
import { newStats, SimAgent, type SimStats } from '../../loadtest/sim/sim-agent.js';
import { createHeartbeatWriter, type HeartbeatWriter } from '../../manager/agent-status-writer.js';
import { createStoreConfigSource } from '../../manager/configs.js';
import type { TaskContext } from '../../manager/tasks/context.js';
import {
  contextFrom,
  createDispatcher,
  type Dispatcher,
  type DispatcherOptions,
} from '../../manager/tasks/dispatcher.js';
import { createResultSink, deliverDirect, type ResultSink } from '../../manager/tasks/result-sink.js';
import { createTaskService, type TaskServiceOptions } from '../../manager/tasks/service.js';
import type { TaskService } from '../../manager/tasks/types.js';
import { silentLogger } from '../../platform/obs/logger.js';
import type { grpc } from '../../proto/gen/elkeid.js';
import { startTestDynamo, type TestDynamo } from './dynalite.js';
import { startTestControlApi, startTestGateway, type TestGateway, waitFor } from './gateway.js';
import { AK, SK } from './manager-harness.js';

export interface ClusterGateway {
  g: TestGateway;
  id: string;
  controlAddr: string;
  writer: HeartbeatWriter;
  sink: ResultSink;
}

export interface Received {
  agentId: string;
  command: grpc.Command;
}

export interface TaskCluster {
  db: TestDynamo;
  ctx: TaskContext;
  service: TaskService;
  gateways: ClusterGateway[];
  agents: Map<string, SimAgent>;
  stats: SimStats;
  received: Received[];
  registry: Registry;
  /** Starts `n` simulated agents `<prefix>-<i>` on gateway `gw`; resolves when all are online in the store. */
  addAgents(prefix: string, n: number, gw: number, from?: number): Promise<string[]>;
  /** A dispatcher on the shared store, stopped at the end of the test. */
  dispatcher(o?: Partial<DispatcherOptions>): Dispatcher;
  /** Deliveries per `agent token` pair for Task commands. */
  tokenDeliveries(): Map<string, number>;
  /** Waits until every subtask of a task satisfies `ok`, returns the subtasks. */
  waitSubtasks(
    taskId: string,
    ok: (states: string[]) => boolean,
    ms?: number,
  ): Promise<Awaited<ReturnType<TaskService['subtasks']>>['items']>;
}

export const FAST_DISPATCH: Partial<DispatcherOptions> = {
  leaseMs: 1500,
  busyMs: 50,
  idleMs: 100,
  backoff: { baseMs: 100, capMs: 400 },
};

export async function startTaskCluster(
  t: TestContext,
  o: {
    gateways: number;
    service?: Partial<TaskServiceOptions>;
    /** Gateways push the store's effective config at first heartbeat (createStoreConfigSource). */
    configSource?: boolean;
    /** The engine's clock (service and dispatchers); default Date.now. */
    now?: () => number;
  },
): Promise<TaskCluster> {
  const stack: Array<() => unknown> = [];
  t.after(async () => {
    for (const fn of stack.reverse()) await fn();
  });
  const db = await startTestDynamo();
  stack.push(() => db.close());
  const registry = new Registry();
  const ctx = contextFrom({
    client: db.client,
    tablePrefix: db.prefix,
    logger: silentLogger(),
    registry,
    ...(o.now ? { now: o.now } : {}),
  });
  const service = createTaskService(ctx, { aksk: [[AK, SK]], ...o.service });
  const gateways: ClusterGateway[] = [];
  for (let i = 0; i < o.gateways; i++) {
    const sink = createResultSink({
      deliver: deliverDirect(service),
      logger: silentLogger(),
      metrics: ctx.metrics,
      flushMs: 100,
    });
    sink.start();
    const g = await startTestGateway(t, {
      taskResults: sink,
      ...(o.configSource
        ? { configSource: createStoreConfigSource({ client: db.client, tablePrefix: db.prefix }) }
        : {}),
    });
    const api = await startTestControlApi(g, { guard: true, aksk: [AK, SK] });
    const id = `127.0.0.1:${g.gateway.grpcPort}`;
    const controlAddr = `127.0.0.1:${api.port}`;
    const writer = createHeartbeatWriter({
      client: db.client,
      tablePrefix: db.prefix,
      gatewayId: id,
      controlAddr,
      sessions: g.gateway.sessions,
      logger: silentLogger(),
      sweepMs: 50,
      flushMs: 50,
      refreshMs: 60_000,
      refreshJitterMs: 0,
      staleAfterMs: 120_000,
      aggregateMs: 200,
      loadTags: false,
    });
    writer.start();
    stack.push(async () => {
      await sink.close();
      await writer.close().catch(() => {});
      api.close();
    });
    gateways.push({ g, id, controlAddr, writer, sink });
  }
  const stats = newStats();
  const received: Received[] = [];
  const agents = new Map<string, SimAgent>();
  stack.push(() => {
    for (const a of agents.values()) a.stop();
  });
  const dispatchers: Dispatcher[] = [];
  // As the manager role does: a run wakes the dispatchers.
  ctx.onRun = () => {
    for (const d of dispatchers) d.wake();
  };
  stack.push(async () => {
    for (const d of dispatchers) await d.stop();
  });
  const online = async (ids: string[], gw: string, ms = 15_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const items = await Promise.all(ids.map((id) => ctx.agents.get(id)));
      const gws = await ctx.agents.gateways({ fresh: true });
      if (items.every((i) => i?.online === true && i.gateway === gw) && gws.get(gw)?.controlAddr) return;
      if (Date.now() > deadline) throw new Error(`agents not online at ${gw} in time`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return {
    db,
    ctx,
    service,
    gateways,
    agents,
    stats,
    received,
    registry,
    async addAgents(prefix, n, gw, from = 0) {
      const target = gateways[gw]!;
      const ids: string[] = [];
      for (let i = from; i < from + n; i++) {
        const id = `${prefix}-${String(i).padStart(4, '0')}`;
        ids.push(id);
        const a = new SimAgent(id, i, {
          tls: target.g.tls,
          gateway: target.g.address,
          scenario: {
            name: 'tasks',
            description: 'task dispatch tests',
            durationS: 600,
            rampS: 0,
            eventsPerAgentPerS: 0,
            reconnectDelayMs: 60_000,
          },
          stats,
          onCommand: (agentId, command) => received.push({ agentId, command }),
        });
        agents.set(id, a);
        a.start();
      }
      await waitFor(
        () => ids.every((id) => target.g.gateway.sessions.get(id)?.detail !== undefined),
        15_000,
        `${n} agents on gateway ${gw}`,
      );
      await online(ids, target.id);
      return ids;
    },
    dispatcher(d = {}) {
      const disp = createDispatcher({
        ...FAST_DISPATCH,
        ...d,
        ctx,
        aksk: [[AK, SK]],
        logger: silentLogger(),
      });
      dispatchers.push(disp);
      return disp;
    },
    tokenDeliveries() {
      const out = new Map<string, number>();
      for (const r of received) {
        const token = r.command.Task?.Token;
        if (!token) continue;
        const k = `${r.agentId} ${token}`;
        out.set(k, (out.get(k) ?? 0) + 1);
      }
      return out;
    },
    async waitSubtasks(taskId, ok, ms = 20_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const items: Awaited<ReturnType<TaskService['subtasks']>>['items'] = [];
        let cursor: string | undefined;
        do {
          const page = await service.subtasks(taskId, { limit: 500, ...(cursor ? { cursor } : {}) });
          items.push(...page.items);
          cursor = page.cursor;
        } while (cursor);
        if (ok(items.map((s) => s.status))) return items;
        if (Date.now() > deadline) {
          const states: Record<string, number> = {};
          for (const s of items) states[s.status] = (states[s.status] ?? 0) + 1;
          throw new Error(`task ${taskId}: subtasks still ${JSON.stringify(states)}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}
