/**
 * One simulated Elkeid agent (elkeid-protocol.md §1.8–§1.11): asks discovery and dials in the
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
  type AgentTls,
  agentHeaders,
  connectAgent,
  openTransfer,
  type TransferStream,
} from '../agent/raw-agent.js';
import { agentHeader, execRecord, heartbeatRecord, prng } from '../bench/payloads.js';
import { AGENT, pickEvent, type Scenario } from './scenario.js';

export interface SimEnv {
  tls: AgentTls;
  /** Discovery base URL (`http://host:port`); when unset, `gateway` is dialled. */
  discovery?: string;
  gateway?: { host: string; port: number };
  localAddress?: string;
  scenario: Scenario;
  stats: SimStats;
}

export interface SimStats {
  connected: number;
  connects: number;
  recordsSent: number;
  bytesSent: number;
  commands: number;
  taskResults: number;
  configsApplied: number;
  restarts: number;
  uploads: number;
  errors: Map<string, number>;
  /** ms from a stream's end to the next successful stream. */
  reconnectMs: number[];
  /** ms from a command's `sent_ms` (when the sender embedded one) to its arrival. */
  commandLatencyMs: number[];
}

export function newStats(): SimStats {
  return {
    connected: 0,
    connects: 0,
    recordsSent: 0,
    bytesSent: 0,
    commands: 0,
    taskResults: 0,
    configsApplied: 0,
    restarts: 0,
    uploads: 0,
    errors: new Map(),
    reconnectMs: [],
    commandLatencyMs: [],
  };
}

const countError = (stats: SimStats, kind: string) =>
  stats.errors.set(kind, (stats.errors.get(kind) ?? 0) + 1);

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

  constructor(id: string, index: number, env: SimEnv) {
    this.id = id;
    this.index = index;
    this.#env = env;
    this.#rand = prng(index + 1);
  }

  start(): void {
    void this.#connectLoop();
    this.#every(AGENT.sendTickMs, () => this.#tick());
    this.#every(AGENT.heartbeatS * 1000, () => this.#heartbeat());
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
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
        countError(this.#env.stats, 'discovery_empty');
      } catch {
        countError(this.#env.stats, 'discovery_error');
      }
    }
    return gateway ? [gateway] : [];
  }

  async #connectLoop(): Promise<void> {
    while (!this.#stopped) {
      let connected = false;
      for (const addr of await this.#candidates()) {
        try {
          this.#session = await connectAgent(
            { ...addr, ...(this.#env.localAddress ? { localAddress: this.#env.localAddress } : {}) },
            this.#env.tls,
          );
          connected = true;
          break;
        } catch {
          countError(this.#env.stats, 'dial');
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
    const stream = openTransfer(session);
    this.#stream = stream;
    stats.connected++;
    stats.connects++;
    if (this.#disconnectedAt) stats.reconnectMs.push(Date.now() - this.#disconnectedAt);
    // The agent heartbeats at start, then every minute; plugins report too.
    this.#heartbeat();
    this.#tick();
    stream.onCommand((c) => this.#onCommand(c));
    const status = await stream.status;
    stats.connected--;
    this.#stream = undefined;
    if (status.code !== 0) countError(stats, `status_${status.code}`);
  }

  #tick(): void {
    const s = this.#stream;
    const { scenario, stats } = this.#env;
    // Events accrue at the scenario's rate; a fraction carries over to the next tick.
    this.#eventCarry += (scenario.eventsPerAgentPerS * AGENT.sendTickMs) / 1000;
    const now = Math.floor(Date.now() / 1000);
    const hostname = agentHeader(this.id, this.index).Hostname ?? '';
    while (this.#eventCarry >= 1) {
      this.#eventCarry -= 1;
      const kind = pickEvent(this.#rand);
      const r = execRecord(this.#rand, now, hostname, kind.bytes);
      r.DataType = kind.dataType;
      this.#pending.push(r);
    }
    // The agent's ring holds 2,048 records; beyond that, plugin records are dropped (as stock).
    if (this.#pending.length > AGENT.ringSlots) {
      countError(stats, 'ring_overflow');
      this.#pending.splice(0, this.#pending.length - AGENT.ringSlots);
    }
    if (!s || this.#pending.length === 0) return;
    const records = this.#pending.splice(0);
    const frame = frameMessage(
      encodeSnappyFrames(
        grpc.RawData.encode({
          ...agentHeader(this.id, this.index),
          Version: this.#version,
          Data: records,
        }).finish(),
      ),
      true,
    );
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
    const task = c.Task;
    if (task) {
      try {
        const data = JSON.parse(task.Data || '{}') as { sent_ms?: number };
        if (typeof data.sent_ms === 'number') stats.commandLatencyMs.push(Date.now() - data.sent_ms);
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
        DataType: 2001,
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
    const stream = session.request(agentHeaders('/grpc.FileExt/Upload'));
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
      stream.write(
        frameMessage(
          encodeSnappyFrames(grpc.UploadRequest.encode({ Token: token, Data: data }).finish()),
          true,
        ),
      );
    }
    stream.end();
    const status = await done;
    if (status === 0) this.#env.stats.uploads++;
    else {
      countError(this.#env.stats, 'upload');
      this.#pending.push({
        DataType: 5100,
        Timestamp: Math.floor(Date.now() / 1000),
        Body: encodeItem({ token, status: 'failed', msg: 'upload failed' }),
      });
    }
  }
}
