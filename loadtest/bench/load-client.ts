/**
 * Load generator child of the gateway benchmark: raw node:http2 TLS clients that speak the
 * Elkeid agent transport (see loadtest/agent/raw-agent.ts), driven over the line protocol of
 * child-protocol.ts. Runs in its own process so the server's CPU and memory are its own.
 *
 *   node --import tsx loadtest/bench/load-client.ts --pki DIR
 *
 * Commands: idle, closeAll, handshakes, records, ingest, stop (see the handlers below).
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { frameMessage } from '../../gateway/grpc/message-reader.js';
import { encodeSnappyFrames } from '../../gateway/grpc/snappy-framing.js';
import { grpc } from '../../proto/gen/elkeid.js';
import { readAgentTls } from '../agent/raw-agent.js';
import { openFileLimit, reply, serveCommands } from './child-protocol.js';
import {
  dataMessage,
  encodeFrame,
  firstMessage,
  newAgentId,
  prng,
  transferHeaders,
  type WireEncoding,
} from './payloads.js';
import {
  findStamps,
  MAX_RECORDS_PER_MESSAGE,
  monotonicUs,
  STAMP_FIELD,
  stampPlaceholder,
  writeStamp,
} from './stamp.js';

const { values } = parseArgs({
  options: { pki: { type: 'string' }, seed: { type: 'string', default: '1' } },
});
if (!values.pki) throw new Error('--pki DIR is required');
const pkiDir = values.pki;
// One secure context for every connection: parsing the CA and key per connection would cost the
// client CPU and memory that has nothing to do with the server under test.
const secureContext = tls.createSecureContext(readAgentTls(pkiDir));
const rand = prng(Number(values.seed));

interface Target {
  host: string;
  port: number;
}

type Counts = Record<string, number>;
const bump = (m: Counts, key: string) => {
  m[key] = (m[key] ?? 0) + 1;
};
const errKey = (err: unknown) =>
  ((err as NodeJS.ErrnoException).code ?? (err as Error).message ?? String(err)).slice(0, 120);

/** TLS + h2 session as a stock agent opens it (SAN elkeid.com verified against our CA). */
function connect(
  target: Target,
  localAddress: string | undefined,
  timeoutMs = 15_000,
): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://${target.host}:${target.port}`, {
      secureContext,
      servername: 'elkeid.com',
      ALPNProtocols: ['h2'],
      checkServerIdentity: (_h, cert) => tls.checkServerIdentity('elkeid.com', cert),
      ...(localAddress ? { localAddress } : {}),
    });
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error('connect timeout')), timeoutMs);
    session.on('error', fail);
    session.once('close', () => fail(new Error('closed before connect')));
    session.once('connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(session);
    });
  });
}

/** Runs `fn(i)` for i in [0, count) with at most `concurrency` in flight. */
async function pool(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
}

// ---- idle agents -------------------------------------------------------------------------------

interface Held {
  session: ClientHttp2Session;
  stream: ClientHttp2Stream;
}
const held: Held[] = [];
let heldClosedEarly = 0;
let closing = false;

async function idle(cmd: Record<string, unknown>) {
  const target = cmd.target as Target;
  const encoding = cmd.encoding as WireEncoding;
  const count = Number(cmd.count);
  const indexBase = Number(cmd.indexBase ?? 0);
  const locals = (cmd.localAddresses as string[] | undefined) ?? [];
  const started = Date.now();
  let connected = 0;
  let failed = 0;
  const errors: Counts = {};
  const headers = transferHeaders(encoding);
  await pool(count, Number(cmd.concurrency ?? 50), async (i) => {
    const index = indexBase + i;
    try {
      const session = await connect(target, locals.length > 0 ? locals[index % locals.length] : undefined);
      session.on('error', () => {});
      const stream = session.request(headers);
      stream.on('error', () => {});
      // Keep reading (commands) so the server's writes never stall on us.
      stream.on('data', () => {});
      stream.on('close', () => {
        if (!closing) heldClosedEarly++;
      });
      stream.write(encodeFrame(firstMessage(newAgentId(), index, rand), encoding));
      held.push({ session, stream });
      connected++;
    } catch (err) {
      failed++;
      bump(errors, errKey(err));
    }
  });
  return { connected, failed, errors, held: held.length, ms: Date.now() - started };
}

async function closeAll() {
  closing = true;
  const n = held.length;
  await Promise.all(
    held.splice(0).map(
      ({ session }) =>
        new Promise<void>((resolve) => {
          if (session.destroyed) return resolve();
          session.once('close', () => resolve());
          session.destroy();
        }),
    ),
  );
  const early = heldClosedEarly;
  heldClosedEarly = 0;
  closing = false;
  return { closed: n, closedEarlyByServer: early };
}

// ---- handshakes and records (run until `stop`) ---------------------------------------------

let running: { stop: () => Promise<Record<string, unknown>> } | undefined;

function handshakeOnce(target: Target, local: string | undefined, index: number, encoding: WireEncoding) {
  return connect(target, local).then((session) => {
    session.on('error', () => {});
    return new Promise<void>((resolve, reject) => {
      const stream = session.request(transferHeaders(encoding));
      let status: number | undefined;
      stream.on('response', (h) => {
        if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']);
      });
      stream.on('trailers', (t) => {
        status = Number(t['grpc-status']);
      });
      stream.on('data', () => {});
      stream.on('error', () => {});
      stream.on('close', () => {
        // Graceful close: GOAWAY, then the socket ends once the peer has it.
        const done = () => (status === 0 ? resolve() : reject(new Error(`grpc-status ${status ?? 'none'}`)));
        if (session.destroyed) return done();
        session.once('close', done);
        session.close();
      });
      // First message (AgentID + heartbeat), then half-close: the server ends the call with OK.
      stream.end(encodeFrame(firstMessage(newAgentId(), index, rand), encoding));
    });
  });
}

function handshakes(cmd: Record<string, unknown>) {
  if (running) throw new Error('a load is already running');
  const target = cmd.target as Target;
  const encoding = cmd.encoding as WireEncoding;
  const locals = (cmd.localAddresses as string[] | undefined) ?? [];
  const concurrency = Number(cmd.concurrency ?? 8);
  let active = true;
  let completed = 0;
  let failed = 0;
  let n = 0;
  const errors: Counts = {};
  const worker = async () => {
    while (active) {
      const i = n++;
      try {
        await handshakeOnce(target, locals.length > 0 ? locals[i % locals.length] : undefined, i, encoding);
        completed++;
      } catch (err) {
        failed++;
        bump(errors, errKey(err));
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  running = {
    async stop() {
      active = false;
      await Promise.all(workers);
      return { completed, failed, errors };
    },
  };
  return { started: true };
}

async function records(cmd: Record<string, unknown>) {
  if (running) throw new Error('a load is already running');
  const target = cmd.target as Target;
  const encoding = cmd.encoding as WireEncoding;
  const agents = Number(cmd.agents);
  const indexBase = Number(cmd.indexBase ?? 0);
  const perMessage = Number(cmd.recordsPerMessage ?? 20);
  const recordBytes = Number(cmd.recordBytes ?? 600);
  const variants = Number(cmd.variants ?? 8);
  const locals = (cmd.localAddresses as string[] | undefined) ?? [];
  const headers = transferHeaders(encoding);
  let active = true;
  let messagesSent = 0;
  let rawBytes = 0;
  let wireBytes = 0;
  let frames = 0;
  let recordBodyBytes = 0;
  const errors: Counts = {};
  const agentsUp: Array<{ session: ClientHttp2Session; stream: ClientHttp2Stream; pump: () => void }> = [];
  let streamsLost = 0;
  await pool(agents, 16, async (i) => {
    const index = indexBase + i;
    const agentId = newAgentId();
    const batch: Buffer[] = [];
    for (let v = 0; v < variants; v++) {
      const raw = dataMessage(agentId, index, rand, perMessage, recordBytes);
      const frame = encodeFrame(raw, 'identity');
      rawBytes += frame.length - 5;
      for (const r of raw.Data ?? []) recordBodyBytes += r.Body?.length ?? 0;
      const wire = encoding === 'identity' ? frame : encodeFrame(raw, encoding);
      wireBytes += wire.length;
      frames++;
      batch.push(wire);
    }
    let session: ClientHttp2Session;
    try {
      session = await connect(target, locals.length > 0 ? locals[index % locals.length] : undefined);
    } catch (err) {
      bump(errors, errKey(err));
      return;
    }
    session.on('error', (err) => bump(errors, errKey(err)));
    const stream = session.request(headers);
    stream.on('error', (err) => bump(errors, errKey(err)));
    stream.on('data', () => {});
    stream.on('close', () => {
      if (active) streamsLost++;
    });
    stream.write(encodeFrame(firstMessage(agentId, index, rand), encoding));
    let k = 0;
    const pump = () => {
      while (active && !stream.destroyed) {
        messagesSent++;
        if (!stream.write(batch[k++ % batch.length]!)) {
          stream.once('drain', pump);
          return;
        }
      }
    };
    agentsUp.push({ session, stream, pump });
  });
  for (const a of agentsUp) a.pump();
  running = {
    async stop() {
      active = false;
      await Promise.all(
        agentsUp.map(
          ({ session }) =>
            new Promise<void>((resolve) => {
              if (session.destroyed) return resolve();
              session.once('close', () => resolve());
              session.destroy();
            }),
        ),
      );
      return { messagesSent, recordsSent: messagesSent * perMessage, streamsLost, errors };
    },
  };
  return {
    connected: agentsUp.length,
    errors,
    // Per message, averaged over the variants: protobuf RawData bytes, bytes on the wire
    // (after snappy framing when used, with the 5-byte prefix) and Item body bytes per record.
    rawBytesPerMessage: frames > 0 ? rawBytes / frames : 0,
    wireBytesPerMessage: frames > 0 ? wireBytes / frames : 0,
    bodyBytesPerRecord: frames > 0 ? recordBodyBytes / (frames * perMessage) : 0,
  };
}

// ---- ingest: stamped records, closed loop or paced, ended gracefully ------------------------

/**
 * `records` with what the ingest benchmark needs: every record body carries a send-time stamp
 * (stamp.ts), patched into a pre-encoded template right before its write (then snappy-framed
 * when asked: one native compression per message, as a real agent does); `rate` paces the
 * messages of this client (0: as fast as flow control allows); `stop` ends every stream
 * gracefully (half-close, then the server's status), so every message written has been taken by
 * the server, and reports exactly what was sent.
 */
async function ingest(cmd: Record<string, unknown>) {
  if (running) throw new Error('a load is already running');
  const target = cmd.target as Target;
  const encoding = cmd.encoding as WireEncoding;
  const agents = Number(cmd.agents);
  const indexBase = Number(cmd.indexBase ?? 0);
  const perMessage = Number(cmd.recordsPerMessage ?? 20);
  const recordBytes = Number(cmd.recordBytes ?? 600);
  const variants = Number(cmd.variants ?? 8);
  const rate = Number(cmd.rate ?? 0);
  const locals = (cmd.localAddresses as string[] | undefined) ?? [];
  if (perMessage < 1 || perMessage > MAX_RECORDS_PER_MESSAGE) throw new RangeError('recordsPerMessage');
  const headers = transferHeaders(encoding);
  const cpu0 = process.cpuUsage();
  interface Agent {
    agentId: string;
    session: ClientHttp2Session;
    stream: ClientHttp2Stream;
    templates: Array<{ bytes: Buffer; stamps: number[] }>;
    next: number;
    seq: number;
    sent: number;
    blocked: boolean;
    status: number | undefined;
    closed: Promise<void>;
  }
  let active = true;
  let messagesSent = 0;
  let rawBytes = 0;
  let wireBytes = 0;
  let frames = 0;
  let recordBodyBytes = 0;
  let streamsLost = 0;
  let maxBehind = 0;
  const errors: Counts = {};
  const up: Agent[] = [];

  const send = (a: Agent): boolean => {
    const t = a.templates[a.next++ % a.templates.length]!;
    const us = monotonicUs();
    const seq = a.seq++;
    for (const at of t.stamps) writeStamp(t.bytes, at, us, seq);
    // frameMessage copies, so the template may be patched again while this frame is queued.
    const frame =
      encoding === 'snappy' ? frameMessage(encodeSnappyFrames(t.bytes), true) : frameMessage(t.bytes, false);
    a.sent++;
    messagesSent++;
    return a.stream.write(frame);
  };
  const unblock = (a: Agent) => () => {
    a.blocked = false;
    if (rate === 0) pump(a);
  };
  const pump = (a: Agent): void => {
    while (active && !a.blocked && !a.stream.destroyed) {
      if (!send(a)) {
        a.blocked = true;
        a.stream.once('drain', unblock(a));
      }
    }
  };

  await pool(agents, 16, async (i) => {
    const index = indexBase + i;
    const agentId = newAgentId();
    const templates: Agent['templates'] = [];
    for (let v = 0; v < variants; v++) {
      const raw = dataMessage(agentId, index, rand, perMessage, recordBytes, (r) => ({
        [STAMP_FIELD]: stampPlaceholder(r),
      }));
      const bytes = Buffer.from(grpc.RawData.encode(raw).finish());
      const stamps = findStamps(bytes);
      if (stamps.length !== perMessage) throw new Error(`found ${stamps.length} stamps, want ${perMessage}`);
      rawBytes += bytes.length;
      for (const r of raw.Data ?? []) recordBodyBytes += r.Body?.length ?? 0;
      wireBytes += encoding === 'snappy' ? 5 + encodeSnappyFrames(bytes).length : 5 + bytes.length;
      frames++;
      templates.push({ bytes, stamps });
    }
    let session: ClientHttp2Session;
    try {
      session = await connect(target, locals.length > 0 ? locals[index % locals.length] : undefined);
    } catch (err) {
      bump(errors, errKey(err));
      return;
    }
    session.on('error', (err) => bump(errors, errKey(err)));
    const stream = session.request(headers);
    const a: Agent = {
      agentId,
      session,
      stream,
      templates,
      next: 0,
      seq: 0,
      sent: 0,
      blocked: false,
      status: undefined,
      closed: new Promise<void>((resolve) => stream.once('close', () => resolve())),
    };
    stream.on('error', (err) => bump(errors, errKey(err)));
    stream.on('response', (h) => {
      if (h['grpc-status'] !== undefined) a.status = Number(h['grpc-status']);
    });
    stream.on('trailers', (t) => {
      a.status = Number(t['grpc-status']);
    });
    stream.on('data', () => {});
    stream.on('close', () => {
      if (active) streamsLost++;
    });
    stream.write(encodeFrame(firstMessage(agentId, index, rand), encoding));
    up.push(a);
  });

  let ticker: NodeJS.Timeout | undefined;
  if (rate === 0) {
    for (const a of up) pump(a);
  } else {
    // Open loop: each agent owes floor(elapsed × its rate) messages; a tick sends what is due
    // unless the stream is backpressured (then the agent is behind, which is reported).
    const perAgent = rate / Math.max(1, up.length);
    const started = performance.now();
    ticker = setInterval(() => {
      const elapsedS = (performance.now() - started) / 1000;
      for (const a of up) {
        let due = Math.floor(elapsedS * perAgent) - a.sent;
        if (due > maxBehind) maxBehind = due;
        while (due-- > 0 && active && !a.blocked && !a.stream.destroyed) {
          if (!send(a)) {
            a.blocked = true;
            a.stream.once('drain', unblock(a));
          }
        }
      }
    }, 5);
  }

  running = {
    async stop() {
      active = false;
      if (ticker) clearInterval(ticker);
      const startedAt = performance.now();
      // Half-close: whatever was written still reaches the server, which ends the call with its
      // status once it has taken every message (ours: accepted by the sink; grpc-js: handled).
      for (const a of up) if (!a.stream.destroyed) a.stream.end();
      const graceMs = Number(cmd.stopGraceMs ?? 60_000);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(up.map((a) => a.closed)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
      const endMs = performance.now() - startedAt;
      let recordsConfirmed = 0;
      let recordsUnconfirmed = 0;
      const statuses: Counts = {};
      const perAgent: Record<string, number> = {};
      for (const a of up) {
        const n = 1 + a.sent * perMessage; // the first message carries one heartbeat
        perAgent[a.agentId] = a.sent;
        bump(statuses, a.status === undefined ? 'none' : String(a.status));
        if (a.status === 0) recordsConfirmed += n;
        else recordsUnconfirmed += n;
      }
      await Promise.all(
        up.map(
          ({ session }) =>
            new Promise<void>((resolve) => {
              if (session.destroyed) return resolve();
              session.once('close', () => resolve());
              session.close();
              setTimeout(() => session.destroy(), 5000).unref();
            }),
        ),
      );
      const cpu = process.cpuUsage(cpu0);
      return {
        agents: up.length,
        messagesSent,
        recordsSent: up.length + messagesSent * perMessage,
        recordsConfirmed,
        recordsUnconfirmed,
        statuses,
        perAgent,
        streamsLost,
        maxBehind,
        endMs: Math.round(endMs),
        cpuUser: cpu.user,
        cpuSystem: cpu.system,
        errors,
      };
    },
  };
  return {
    connected: up.length,
    errors,
    rawBytesPerMessage: frames > 0 ? rawBytes / frames : 0,
    wireBytesPerMessage: frames > 0 ? wireBytes / frames : 0,
    bodyBytesPerRecord: frames > 0 ? recordBodyBytes / (frames * perMessage) : 0,
  };
}

async function stop() {
  const r = running;
  running = undefined;
  if (!r) return { stopped: false };
  return { stopped: true, ...(await r.stop()) };
}

serveCommands(
  {
    idle,
    closeAll,
    handshakes,
    records,
    ingest,
    stop,
    stats: () => ({ held: held.length, rss: process.memoryUsage().rss, ...process.cpuUsage() }),
  },
  () => process.exit(0),
);
reply({ ready: true, pid: process.pid, nofile: openFileLimit() ?? null });
