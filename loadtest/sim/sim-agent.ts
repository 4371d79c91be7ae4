/**
 * One simulated Elkeid agent (docs/elkeid-protocol.md §1.8–§1.11): asks discovery and dials in the
 * order given (or a fixed gateway), holds one Transfer stream, batches records every send tick,
 * heartbeats every minute, applies config commands (reported in its next heartbeats), answers
 * plugin tasks with a result record carrying the token, restarts on 1060, uploads on 1050, and
 * reconnects after a fixed delay when its stream ends.
 */
import type { ClientHttp2Session } from 'node:http2';
import { encodeItem } from '../../gateway/agent/item.js';
import { frameMessage, MessageReader } from '../../gateway/grpc/message-reader.js';
import { encodeSnappyFrames } from '../../gateway/grpc/snappy-framing.js';
import { grpc } from '../../proto/gen/elkeid.js';
import {
  type AgentEncoding,
  type AgentTls,
  agentHeaders,
  connectAgent,
  openTransfer,
  type TransferStream,
} from '../agent/raw-agent.js';
import { agentHeader, execRecord, heartbeatRecord, prng } from '../bench/payloads.js';
import { AGENT, type EventKind, pickEvent, type Scenario } from './scenario.js';
import { numberBody } from './sequence.js';

export interface SimEnv {
  tls: AgentTls;
  /** Discovery base URL (`http://host:port`); when unset, `gateway` is dialled. */
  discovery?: string;
  gateway?: { host: string; port: number };
  localAddress?: string;
  scenario: Scenario;
  stats: SimStats;
  /** Called with every command the agent receives (tests count deliveries per agent and token). */
  onCommand?: (agentId: string, command: grpc.Command) => void;
  /** Message encoding (default snappy, as agents send; identity for gateways without snappy). */
  encoding?: AgentEncoding;
  /** Called when a stream starts (true) and ends (false): disruption measurements (fleet.ts). */
  onStream?: (index: number, up: boolean) => void;
  /** The run id numbered records carry (sequence.ts); unset: records are sent unnumbered. */
  run?: string;
}

/** The counters agents add to: summed over a fleet, its processes (fleet.ts) and reports (report.ts). */
export const SIM_COUNTERS = [
  'connects',
  'recordsSent',
  'bytesSent',
  'commands',
  'taskResults',
  'configsApplied',
  'restarts',
  'uploads',
] as const;
export type SimCounters = Record<(typeof SIM_COUNTERS)[number], number>;

/** The counters of `s` alone (or all zero). */
export function simCounters(s?: SimCounters): SimCounters {
  return Object.fromEntries(SIM_COUNTERS.map((k) => [k, s?.[k] ?? 0])) as SimCounters;
}

/** Adds the counts in `from` to `into` (errors by kind). */
export function addCounts(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

export interface SimStats extends SimCounters {
  connected: number;
  errors: Map<string, number>;
  /** The first message seen for each error kind: a count alone does not say what went wrong. */
  errorSamples: Map<string, string>;
  /** ms from a stream's end to the next successful stream. */
  reconnectMs: number[];
  /** ms from a command's `sent_ms` (when the sender embedded one) to its arrival. */
  commandLatencyMs: number[];
  /** Arrivals of the simulator's own rolling task (its data names `rolling_task`): rolling-task.ts. */
  taskArrivals: TaskArrival[];
}

/** A rolling-task command as one agent received it (wall clock, to match its batch's release). */
export interface TaskArrival {
  agentId: string;
  token: string;
  atMs: number;
}

export function newStats(): SimStats {
  return {
    connected: 0,
    ...simCounters(),
    errors: new Map(),
    errorSamples: new Map(),
    reconnectMs: [],
    commandLatencyMs: [],
    taskArrivals: [],
  };
}

function countError(stats: SimStats, kind: string, sample: unknown): void {
  stats.errors.set(kind, (stats.errors.get(kind) ?? 0) + 1);
  if (!stats.errorSamples.has(kind)) {
    const text =
      sample instanceof Error
        ? `${sample.message}${sample.cause ? ` (${String(sample.cause)})` : ''}`
        : String(sample);
    stats.errorSamples.set(kind, text.slice(0, 300));
  }
}

/**
 * Event bodies are drawn from a small pool per event kind, built once per process: building an
 * Elkeid-shaped execve Item costs tens of µs, which at tens of thousands of agents would make
 * the simulator, not the gateway, the bottleneck. Sizes and field sets are those of the mix.
 */
const POOL_VARIANTS = 64;

/** Result data types whose `status` decides a subtask in a stock manager (docs/tasks.md). */
const RESULT_TYPES_DECIDING: ReadonlySet<number> = new Set([5100, 8010, 6000]);
const eventPool = new Map<number, Uint8Array[]>();
function pooledEvent(kind: EventKind, rand: () => number, now: number): grpc.Record.$Properties {
  let pool = eventPool.get(kind.dataType);
  if (!pool) {
    pool = [];
    for (let i = 0; i < POOL_VARIANTS; i++) {
      const r = prng(kind.dataType * 1000 + i + 1);
      pool.push(
        execRecord(r, now, `node-${String(i).padStart(5, '0')}.prod.example.internal`, kind.bytes).Body!,
      );
    }
    eventPool.set(kind.dataType, pool);
  }
  return { DataType: kind.dataType, Timestamp: now, Body: pool[Math.floor(rand() * pool.length)]! };
}

/**
 * One timer per process for every agent's 100 ms send tick, in 10 slots (an agent's slot is its
 * index mod 10), instead of one interval per agent: with 25,000 agents in a process, per-agent
 * intervals cost 250,000 timer callbacks a second before any work is done.
 */
const TICK_SLOTS = 10;
class SendTicker {
  readonly #slots: Array<Set<() => void>> = Array.from({ length: TICK_SLOTS }, () => new Set());
  #size = 0;
  #at = 0;
  #timer: NodeJS.Timeout | undefined;

  add(index: number, fn: () => void): void {
    this.#slots[index % TICK_SLOTS]!.add(fn);
    this.#size++;
    if (!this.#timer) {
      this.#timer = setInterval(() => {
        for (const f of this.#slots[this.#at]!) f();
        this.#at = (this.#at + 1) % TICK_SLOTS;
      }, AGENT.sendTickMs / TICK_SLOTS);
      this.#timer.unref();
    }
  }

  delete(index: number, fn: () => void): void {
    if (this.#slots[index % TICK_SLOTS]!.delete(fn)) this.#size--;
    if (this.#size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
const ticker = new SendTicker();

/**
 * Dials in flight at once in this simulator process (unbounded unless set). A real agent has its
 * host's CPU to itself; tens of thousands of simulated agents share one event loop, and when all
 * of them dial at once (a storm) their own TLS work starves past the 15 s dial timeout and the
 * simulator, not the gateway, collapses into retries. With a bound, agents queue for a dial slot
 * — the wait counts in their reconnect time, not against their dial timeout — and the process
 * dials as fast as its core allows. `fleetgate sim --max-dials`, `bench:fleet --sim-max-dials`.
 */
class DialPool {
  max = Number.POSITIVE_INFINITY;
  #inFlight = 0;
  readonly #waiting: Array<() => void> = [];
  async acquire(): Promise<void> {
    if (this.#inFlight < this.max) {
      this.#inFlight++;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }
  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#inFlight--;
  }
}
const dialPool = new DialPool();

/** Bounds this process's dials in flight (DialPool); 0 or Infinity: unbounded (stock behaviour). */
export function setMaxDialsInFlight(n: number): void {
  dialPool.max = n > 0 ? n : Number.POSITIVE_INFINITY;
}

export class SimAgent {
  readonly id: string;
  readonly index: number;
  readonly #env: SimEnv;
  readonly #rand: () => number;
  #session: ClientHttp2Session | undefined;
  #stream: TransferStream | undefined;
  #pending: grpc.Record.$Properties[] = [];
  #plugins = new Map<string, string>(); // name -> version
  #version: string = AGENT.version;
  #stopped = false;
  #timers: NodeJS.Timeout[] = [];
  #disconnectedAt = 0;
  #eventCarry = 0;
  #lastTickAt = 0;
  /** The last sequence number sent (sequence.ts): 1, 2, 3, … over the agent's whole life. */
  #sent = 0;
  readonly #header: grpc.RawData.$Properties;
  readonly #onTick = () => this.#tick();
  #started = false;

  constructor(id: string, index: number, env: SimEnv) {
    this.id = id;
    this.index = index;
    this.#env = env;
    this.#rand = prng(index + 1);
    this.#header = agentHeader(id, index);
  }

  get connected(): boolean {
    return this.#stream !== undefined;
  }

  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#lastTickAt = Date.now();
    void this.#connectLoop();
    ticker.add(this.index, this.#onTick);
    this.#every(AGENT.heartbeatS * 1000, () => this.#heartbeat());
  }

  /**
   * Stops the agent. Its stream is half-closed first and the gateway's status awaited (up to
   * `graceMs`), so every record sent was read and stored before the connection goes: a run's
   * end loses nothing, and `fleetgate sim verify` counts only real loss.
   */
  /** Stops sending (no more ticks, heartbeats or reconnects); `stop` then closes the stream. */
  halt(): void {
    this.#stopped = true;
    ticker.delete(this.index, this.#onTick);
    for (const t of this.#timers) clearInterval(t);
  }

  async stop(graceMs = 5000): Promise<void> {
    this.halt();
    const s = this.#stream;
    if (s && !s.stream.closed && !s.stream.destroyed) {
      s.stream.end();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([s.status, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    this.#session?.destroy();
  }

  /** Drops the connection as a network failure would (no status). */
  drop(): void {
    this.#session?.destroy();
  }

  #every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.#timers.push(t);
  }

  async #candidates(): Promise<Array<{ host: string; port: number }>> {
    const { discovery, gateway } = this.#env;
    if (discovery) {
      try {
        const res = await fetch(
          `${discovery}/registry/detail?name=${AGENT.discoveryName}&count=${AGENT.discoveryCount}`,
          {
            signal: AbortSignal.timeout(5000),
          },
        );
        const body = (await res.json()) as { data?: Array<{ ip: string; port: number }> };
        const list = (body.data ?? []).map((d) => ({ host: d.ip, port: d.port }));
        if (list.length > 0) return list;
        countError(
          this.#env.stats,
          'discovery_empty',
          `${discovery}: HTTP ${res.status}, no gateway in the answer`,
        );
      } catch (err) {
        countError(this.#env.stats, 'discovery_error', err);
      }
    }
    return gateway ? [gateway] : [];
  }

  async #connectLoop(): Promise<void> {
    while (!this.#stopped) {
      let connected = false;
      for (const addr of await this.#candidates()) {
        await dialPool.acquire();
        try {
          this.#session = await connectAgent(
            { ...addr, ...(this.#env.localAddress ? { localAddress: this.#env.localAddress } : {}) },
            this.#env.tls,
            { timeoutMs: AGENT.dialTimeoutMs },
          );
          // Stopped while dialling: the new connection must not outlive the run (it kept the
          // process from exiting after its report).
          if (this.#stopped) {
            this.#session.destroy();
            return;
          }
          connected = true;
          break;
        } catch (err) {
          // dial_timeout, dial_ECONNRESET, dial_ERR_SSL_…: what failed tells a storm from a bug.
          const code = (err as { code?: string }).code;
          countError(
            this.#env.stats,
            code ? `dial_${code}` : /timed out/.test(String(err)) ? 'dial_timeout' : 'dial',
            `${addr.host}:${addr.port}: ${String((err as Error)?.message ?? err)}`,
          );
        } finally {
          dialPool.release();
        }
      }
      if (connected && this.#session) {
        await this.#runStream(this.#session);
        this.#session.destroy();
      }
      if (this.#stopped) return;
      this.#disconnectedAt = Date.now();
      await new Promise((r) => setTimeout(r, this.#env.scenario.reconnectDelayMs).unref());
    }
  }

  async #runStream(session: ClientHttp2Session): Promise<void> {
    const stats = this.#env.stats;
    const stream = openTransfer(session, undefined, this.#env.encoding);
    this.#stream = stream;
    stats.connected++;
    stats.connects++;
    if (this.#disconnectedAt) stats.reconnectMs.push(Date.now() - this.#disconnectedAt);
    this.#env.onStream?.(this.index, true);
    // The agent heartbeats at start, then every minute; plugins report too.
    this.#heartbeat();
    this.#tick();
    stream.onCommand((c) => this.#onCommand(c));
    const status = await stream.status;
    stats.connected--;
    this.#stream = undefined;
    this.#env.onStream?.(this.index, false);
    if (status.code !== 0)
      countError(stats, `status_${status.code}`, status.message || `grpc-status ${status.code}`);
  }

  #tick(): void {
    const s = this.#stream;
    const { scenario, stats } = this.#env;
    // Events accrue at the scenario's rate; a fraction carries over to the next tick.
    // Events happen on the host whether or not the tick is late: they accrue by elapsed time.
    const at = Date.now();
    const elapsedMs = this.#lastTickAt > 0 ? at - this.#lastTickAt : AGENT.sendTickMs;
    this.#lastTickAt = at;
    this.#eventCarry += (scenario.eventsPerAgentPerS * elapsedMs) / 1000;
    if (this.#eventCarry >= 1) {
      const now = Math.floor(Date.now() / 1000);
      while (this.#eventCarry >= 1) {
        this.#eventCarry -= 1;
        this.#pending.push(pooledEvent(pickEvent(this.#rand), this.#rand, now));
      }
    }
    // The agent's ring holds 2,048 records; beyond that, plugin records are dropped (as stock).
    if (this.#pending.length > AGENT.ringSlots) {
      countError(
        stats,
        'ring_overflow',
        `${this.#pending.length} records waiting, ring of ${AGENT.ringSlots}`,
      );
      this.#pending.splice(0, this.#pending.length - AGENT.ringSlots);
    }
    if (!s || this.#pending.length === 0) return;
    const records = this.#pending.splice(0);
    // Numbered when sent, so records the ring dropped never get a number: every number was sent.
    const run = this.#env.run;
    if (run !== undefined) {
      for (let i = 0; i < records.length; i++) {
        records[i] = { ...records[i], Body: numberBody(records[i]!.Body ?? undefined, run, ++this.#sent) };
      }
    }
    const raw = grpc.RawData.encode({ ...this.#header, Version: this.#version, Data: records }).finish();
    const frame =
      this.#env.encoding === 'identity'
        ? frameMessage(raw, false)
        : frameMessage(encodeSnappyFrames(raw), true);
    s.sendFrame(frame);
    stats.recordsSent += records.length;
    stats.bytesSent += frame.length;
  }

  #heartbeat(): void {
    const now = Math.floor(Date.now() / 1000);
    this.#pending.push(heartbeatRecord(this.#rand, now));
    for (const [name, version] of this.#plugins) {
      this.#pending.push({
        DataType: 1001,
        Timestamp: now,
        Body: encodeItem({
          name,
          pversion: version,
          cpu: '0.00100000',
          rss: '12000000',
          pid: '4242',
          nfd: '9',
        }),
      });
    }
  }

  #onCommand(c: grpc.Command): void {
    const stats = this.#env.stats;
    stats.commands++;
    this.#env.onCommand?.(this.id, c);
    const task = c.Task;
    if (task) {
      // Simulator conventions in the task data (a real plugin ignores them): `sent_ms` for the
      // command latency; `rolling_task` marks the rolling-task run's command, whose arrival is
      // matched to its batch's release; `result_data_type` picks the result record's data type
      // (a stock manager decides subtasks only by 5100/8010/6000 records, docs/tasks.md).
      // Without one, a task of a data type the manager decides subtasks by (5100, 8010, 6000) is
      // answered with that type, so docs/openapi.yaml's plugin-task example completes; others 2001.
      let resultType = RESULT_TYPES_DECIDING.has(task.DataType ?? 0) ? task.DataType! : 2001;
      try {
        const data = JSON.parse(task.Data || '{}') as {
          sent_ms?: number;
          rolling_task?: string;
          result_data_type?: number;
        };
        if (typeof data.sent_ms === 'number') stats.commandLatencyMs.push(Date.now() - data.sent_ms);
        if (typeof data.rolling_task === 'string')
          stats.taskArrivals.push({ agentId: this.id, token: task.Token ?? '', atMs: Date.now() });
        if (Number.isInteger(data.result_data_type)) resultType = data.result_data_type as number;
      } catch {
        // task data need not be JSON
      }
      if (task.Name === AGENT.product) {
        if (task.DataType === 1060) {
          stats.restarts++;
          this.drop(); // the agent exits; systemd restarts it
        } else if (task.DataType === 1050) {
          void this.#upload(task.Token ?? '');
        }
        return;
      }
      // A plugin task: the plugin answers with a result record carrying the token.
      stats.taskResults++;
      this.#pending.push({
        DataType: resultType,
        Timestamp: Math.floor(Date.now() / 1000),
        Body: encodeItem({
          token: task.Token ?? '',
          status: this.#plugins.has(task.Name ?? '') ? 'succeed' : 'failed',
          msg: '',
        }),
      });
      return;
    }
    // Config is the complete desired plugin set; an elkeid-agent item with another version upgrades.
    stats.configsApplied++;
    const next = new Map<string, string>();
    for (const item of c.Config) {
      if (item.Name === AGENT.product) {
        if (item.Version && item.Version !== this.#version) {
          this.#version = item.Version;
          stats.restarts++;
          this.drop();
        }
      } else next.set(item.Name ?? '', item.Version ?? '');
    }
    this.#plugins = next;
  }

  async #upload(token: string): Promise<void> {
    const session = this.#session;
    if (!session || session.destroyed) return;
    const stream = session.request(agentHeaders('/grpc.FileExt/Upload', this.#env.encoding));
    stream.on('error', () => {});
    const reader = new MessageReader(1024 * 1024);
    const done = new Promise<number>((resolve) => {
      let status = -1;
      stream.on('data', (chunk: Buffer) => {
        for (const m of reader.push(chunk)) status = grpc.UploadResponse.decode(m.payload).Status;
      });
      stream.on('close', () => resolve(status));
    });
    for (let i = 0; i < 3; i++) {
      const data = Buffer.alloc(16 * 1024, i);
      const req = grpc.UploadRequest.encode({ Token: token, Data: data }).finish();
      stream.write(
        this.#env.encoding === 'identity'
          ? frameMessage(req, false)
          : frameMessage(encodeSnappyFrames(req), true),
      );
    }
    stream.end();
    const status = await done;
    if (status === 0) this.#env.stats.uploads++;
    else {
      countError(this.#env.stats, 'upload', `upload of ${token}: FileExt answered status ${status}`);
      this.#pending.push({
        DataType: 5100,
        Timestamp: Math.floor(Date.now() / 1000),
        Body: encodeItem({ token, status: 'failed', msg: 'upload failed' }),
      });
    }
  }
}
