/**
 * HTTP/2-level abuse against a started gateway (docs/hardening.md §1, tests 2, 4, 5, 6), bounded in
 * frames and seconds: ping abuse, server keepalive, idle and silent connections, advertised
 * SETTINGS, Rapid Reset and a header bomb. An honest agent must keep working throughout.
 */
import assert from 'node:assert/strict';
import http2, { type ClientHttp2Session } from 'node:http2';
import net from 'node:net';
import { type TestContext, test } from 'node:test';
import tls, { type TLSSocket } from 'node:tls';
import { encodeItem } from '../../gateway/agent/item.js';
import { Status } from '../../gateway/grpc/status.js';
import {
  agentHeaders,
  connectAgent,
  openTransfer,
  type TransferStream,
} from '../../loadtest/agent/raw-agent.js';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import { metricValue } from '../helpers/metrics.js';
import { orTimeout, sleep, within } from '../helpers/time.js';

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR } = http2.constants;
const TRANSFER = '/grpc.Transfer/Transfer';

function watchUncaught(t: TestContext): unknown[] {
  const seen: unknown[] = [];
  const spy = (err: unknown) => seen.push(err);
  process.on('uncaughtException', spy);
  t.after(() => process.off('uncaughtException', spy));
  return seen;
}

async function connect(t: TestContext, g: TestGateway): Promise<ClientHttp2Session> {
  const s = await connectAgent(g.address, g.tls);
  t.after(() => s.destroy());
  return s;
}

interface Goaway {
  code: number;
  debug: string;
  at: number;
}

/** Resolves with the GOAWAY the session receives (or undefined on close without one). */
function goawayOf(s: ClientHttp2Session): Promise<Goaway | undefined> {
  return new Promise((resolve) => {
    s.once('goaway', (code, _last, data) =>
      resolve({ code, debug: data ? Buffer.from(data).toString() : '', at: Date.now() }),
    );
    s.once('close', () => resolve(undefined));
  });
}

function closeOf(s: ClientHttp2Session): Promise<number> {
  return new Promise((resolve) => {
    if (s.closed || s.destroyed) resolve(Date.now());
    else s.once('close', () => resolve(Date.now()));
  });
}

/** An honest agent streaming one record per `everyMs` on its own connection. */
async function honestAgent(
  t: TestContext,
  g: TestGateway,
  id: string,
  everyMs = 20,
): Promise<{ stream: TransferStream; delivered: () => number; stop: () => void }> {
  const s = await connect(t, g);
  const stream = openTransfer(s);
  let n = 0;
  const timer = setInterval(() => {
    if (!stream.stream.closed)
      stream.send({
        AgentID: id,
        Data: [{ DataType: 5003, Timestamp: n++, Body: encodeItem({ n: String(n) }) }],
      });
  }, everyMs);
  t.after(() => clearInterval(timer));
  return {
    stream,
    delivered: () => g.sink.batches.filter((b) => b.agentId === id).length,
    stop: () => clearInterval(timer),
  };
}

test('keepalive enforcement: pings every 100 ms get GOAWAY ENHANCE_YOUR_CALM and the session closes', async (t) => {
  const uncaught = watchUncaught(t);
  const g = await startTestGateway(t, { limits: { minClientPingIntervalMs: 1000, maxPingStrikes: 2 } });
  const s = await connect(t, g);
  const goaway = goawayOf(s);
  const closed = closeOf(s);
  const started = Date.now();
  const pinger = setInterval(() => {
    if (!s.closed && !s.destroyed) {
      try {
        s.ping(() => {});
      } catch {
        // the session may be closing
      }
    }
  }, 100);
  t.after(() => clearInterval(pinger));
  const ga = await within(goaway, 3000, 'GOAWAY');
  clearInterval(pinger);
  assert.ok(ga, 'a GOAWAY frame, not a bare close');
  assert.equal(ga.code, NGHTTP2_ENHANCE_YOUR_CALM);
  assert.equal(ga.code, 11);
  assert.equal(ga.debug, 'too_many_pings');
  // 1 ping sets the clock, strikes 1..3 on the next three: about 400 ms.
  assert.ok(ga.at - started < 1500, `GOAWAY after ${ga.at - started} ms`);
  await within(closed, 2000, 'session close');
  assert.equal(
    await metricValue(g.gateway.metrics.registry, 'fleetgate_http2_sessions_closed_total', {
      reason: 'too_many_pings',
    }),
    1,
  );
  assert.deepEqual(uncaught, []);
});

test('pings at the allowed rate are fine', async (t) => {
  const g = await startTestGateway(t, { limits: { minClientPingIntervalMs: 100, maxPingStrikes: 2 } });
  const s = await connect(t, g);
  for (let i = 0; i < 5; i++) {
    await new Promise<void>((resolve, reject) => s.ping((err) => (err ? reject(err) : resolve())));
    await sleep(150);
  }
  assert.equal(s.closed, false);
  const a = openTransfer(s);
  a.send({ AgentID: 'pinger', Data: [] });
  await waitFor(() => g.gateway.sessions.get('pinger') !== undefined, 2000, 'agent on the pinging session');
});

test('server keepalive: the gateway pings connected clients', async (t) => {
  const g = await startTestGateway(t, { limits: { keepaliveTimeMs: 300, keepaliveTimeoutMs: 300 } });
  const s = await connect(t, g);
  let pings = 0;
  s.on('ping', () => pings++);
  const a = openTransfer(s);
  a.send({ AgentID: 'keepalive', Data: [] });
  await waitFor(() => pings >= 2, 3000, 'two server PINGs');
  assert.equal(s.closed, false, 'a client that answers PINGs stays connected');
});

test('idle session (TLS + h2, no stream) is closed after idleSessionMs', async (t) => {
  const g = await startTestGateway(t, { limits: { idleSessionMs: 500 } });
  const idle = await connect(t, g);
  const busy = await connect(t, g);
  const a = openTransfer(busy);
  a.send({ AgentID: 'busy', Data: [] });
  const started = Date.now();
  const ga = goawayOf(idle);
  const closedAt = await within(closeOf(idle), 2000, 'idle session closed');
  assert.ok(closedAt - started >= 400, `closed after ${closedAt - started} ms, not before the idle time`);
  assert.ok(closedAt - started < 1500, `closed after ${closedAt - started} ms`);
  assert.equal((await ga)?.code, NGHTTP2_NO_ERROR);
  assert.equal(busy.closed, false, 'a session with an open stream is not idle');
  assert.ok(g.gateway.sessions.get('busy')?.live);
});

test('a TCP connection that never starts the handshake is closed within handshakeTimeoutMs + 1 s', async (t) => {
  const g = await startTestGateway(t, { limits: { handshakeTimeoutMs: 500 } });
  const sock = net.connect(g.address.port, g.address.host);
  t.after(() => sock.destroy());
  sock.on('error', () => {});
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  const started = Date.now();
  await within(new Promise((resolve) => sock.once('close', resolve)), 1500, 'silent socket closed');
  assert.ok(Date.now() - started >= 400, 'not closed before the handshake timeout');
  assert.equal(
    await metricValue(g.gateway.metrics.registry, 'fleetgate_tls_handshake_failures_total', {
      reason: 'timeout',
    }),
    1,
  );
});

test('advertised SETTINGS carry the configured maxConcurrentStreams', async (t) => {
  const g = await startTestGateway(t, { limits: { maxConcurrentStreams: 7 } });
  const s = http2.connect(`https://${g.address.host}:${g.address.port}`, {
    ...g.tls,
    servername: 'elkeid.com',
  });
  t.after(() => s.destroy());
  s.on('error', () => {});
  const settings = await within(
    new Promise<http2.Settings>((resolve) => s.once('remoteSettings', resolve)),
    2000,
    'SETTINGS',
  );
  assert.equal(settings.maxConcurrentStreams, 7);
  assert.equal(s.remoteSettings.maxConcurrentStreams, 7);
  assert.equal(settings.enablePush, false);
});

// --- A raw HTTP/2 frame writer: node:http2's client will not send HEADERS beyond the peer's
// MAX_CONCURRENT_STREAMS (it queues them, and a cancelled queued stream never reaches the wire),
// so the Rapid Reset pattern (HEADERS then RST_STREAM, repeated) is written frame by frame.

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

function hpackString(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  if (b.length > 126) throw new Error('string too long for the 1-byte form');
  return Buffer.concat([Buffer.from([b.length]), b]); // H = 0: no Huffman
}

/** grpc-go's request headers as one HPACK block of static-table references and literals (RFC 7541). */
const REQUEST_BLOCK = Buffer.concat([
  Buffer.from([0x83]), // :method POST (static 3)
  Buffer.from([0x87]), // :scheme https (static 7)
  Buffer.from([0x04]), // literal without indexing, name :path (static 4)
  hpackString(TRANSFER),
  Buffer.from([0x01]), // :authority (static 1)
  hpackString('elkeid.com'),
  Buffer.from([0x0f, 0x10]), // content-type (static 31 = 15 + 16)
  hpackString('application/grpc'),
  Buffer.from([0x00]), // literal, new name
  hpackString('te'),
  hpackString('trailers'),
]);

interface RawH2 {
  socket: TLSSocket;
  /** PING frames received (never acknowledged by this client). */
  pings: () => number;
  goaway: Promise<{ code: number; at: number } | undefined>;
  closed: Promise<number>;
}

async function rawH2(g: TestGateway): Promise<RawH2> {
  const socket = tls.connect({
    host: g.address.host,
    port: g.address.port,
    ca: g.tls.ca,
    cert: g.tls.cert,
    key: g.tls.key,
    servername: 'elkeid.com',
    ALPNProtocols: ['h2'],
  });
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  assert.equal(socket.alpnProtocol, 'h2');
  let resolveGoaway: (v: { code: number; at: number } | undefined) => void = () => {};
  const goaway = new Promise<{ code: number; at: number } | undefined>((r) => {
    resolveGoaway = r;
  });
  const closed = new Promise<number>((resolve) =>
    socket.once('close', () => {
      resolveGoaway(undefined);
      resolve(Date.now());
    }),
  );
  let buf = Buffer.alloc(0);
  let pings = 0;
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const type = buf[3];
      const flags = buf[4]!;
      const payload = buf.subarray(9, 9 + len);
      buf = buf.subarray(9 + len);
      if (type === 0x4 && (flags & 0x1) === 0) socket.write(frame(0x4, 0x1, 0, Buffer.alloc(0))); // SETTINGS ACK
      if (type === 0x6 && (flags & 0x1) === 0) pings++;
      if (type === 0x7) resolveGoaway({ code: payload.readUInt32BE(4), at: Date.now() });
    }
  });
  socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'));
  socket.write(frame(0x4, 0, 0, Buffer.alloc(0))); // our (empty) SETTINGS
  return { socket, goaway, closed, pings: () => pings };
}

// Regression: after nghttp2's own Rapid Reset limit the socket stayed open ~37 s; the gateway now
// closes a session whose client keeps cancelling fresh streams (gateway/grpc/session-policy.ts).
test('Rapid Reset: 2,000 streams opened and cancelled get GOAWAY while an honest agent keeps delivering', async (t) => {
  const uncaught = watchUncaught(t);
  const g = await startTestGateway(t);
  const honest = await honestAgent(t, g, 'honest-rr');
  await waitFor(() => honest.delivered() >= 3, 3000, 'honest agent streaming');

  const attacker = await rawH2(g);
  t.after(() => attacker.socket.destroy());
  let handled = 0;
  g.gateway.grpc.server.on('stream', () => handled++);
  const started = Date.now();
  const cancel = Buffer.alloc(4);
  cancel.writeUInt32BE(NGHTTP2_CANCEL, 0);
  const frames: Buffer[] = [];
  for (let i = 0; i < 2000; i++) {
    const id = 2 * i + 1;
    frames.push(frame(0x1, 0x4, id, REQUEST_BLOCK), frame(0x3, 0, id, cancel)); // HEADERS(END_HEADERS), RST_STREAM
  }
  attacker.socket.write(Buffer.concat(frames));

  const ga = await within(attacker.goaway, 2000, 'GOAWAY to the attacker');
  const closedAt = await orTimeout(attacker.closed, 3000);
  t.diagnostic(
    `handler calls ${handled}, GOAWAY code ${ga?.code} after ${ga ? ga.at - started : '-'} ms, socket ${
      closedAt ? `closed after ${closedAt - started} ms` : 'still open after 3 s'
    }`,
  );
  const before = honest.delivered();
  await waitFor(
    () => honest.delivered() >= before + 5,
    3000,
    'honest agent still delivering after the attack',
  );
  assert.equal(honest.stream.stream.closed, false, 'honest stream untouched');
  assert.ok(ga, 'GOAWAY sent before the close');
  // docs/hardening.md asks for 1 s on an idle machine; 2 s leaves room for a loaded CI runner.
  assert.ok(ga.at - started < 2000, 'GOAWAY within 2 s');
  // docs/hardening.md §1 test 2: the attacking socket is destroyed within 3 s (§0.2: after nghttp2's
  // own GOAWAY, Node stops reading but leaves the socket open unless the application closes it).
  assert.ok(closedAt !== undefined && closedAt - started < 3000, 'attacking socket destroyed within 3 s');
  assert.ok(handled <= 2000);
  assert.deepEqual(uncaught, []);
  honest.stop();
});

test('server keepalive: a client that never answers PINGs is disconnected', async (t) => {
  const g = await startTestGateway(t, { limits: { keepaliveTimeMs: 300, keepaliveTimeoutMs: 300 } });
  const raw = await rawH2(g);
  t.after(() => raw.socket.destroy());
  const started = Date.now();
  const closedAt = await within(raw.closed, 2500, 'unresponsive client closed');
  assert.ok(raw.pings() >= 1, 'it was pinged');
  assert.ok(closedAt - started >= 300, `closed after ${closedAt - started} ms`);
  assert.equal(
    await metricValue(g.gateway.metrics.registry, 'fleetgate_http2_sessions_closed_total', {
      reason: 'keepalive_timeout',
    }),
    1,
  );
});

test('header bomb: a request with 200 headers is refused and others are unaffected', async (t) => {
  const uncaught = watchUncaught(t);
  const g = await startTestGateway(t);
  const honest = await honestAgent(t, g, 'honest-hb');
  const s = await connect(t, g);
  const headers: http2.OutgoingHttpHeaders = agentHeaders(TRANSFER);
  for (let i = 0; i < 200; i++) headers[`x-bomb-${i}`] = `v${i}`;
  let handled = 0;
  g.gateway.grpc.server.on('stream', (_st, h) => {
    if (h['x-bomb-0'] !== undefined) handled++;
  });
  const req = s.request(headers);
  req.on('error', () => {});
  let responded = false;
  req.on('response', () => {
    responded = true;
  });
  req.write(Buffer.alloc(5));
  await within(new Promise((r) => req.once('close', r)), 3000, 'bomb stream closed');
  assert.equal(responded, false, 'no gRPC response to the bomb');
  assert.notEqual(req.rstCode, NGHTTP2_NO_ERROR, `stream reset with an error code (${req.rstCode})`);
  assert.equal(handled, 0, 'the handler never saw the bomb');
  // Others: a new agent on a fresh connection, and the honest agent, keep working.
  const other = await connect(t, g);
  const a = openTransfer(other);
  a.send({ AgentID: 'after-bomb', Data: [{ DataType: 1, Timestamp: 1, Body: new Uint8Array() }] });
  await waitFor(() => g.sink.batches.some((b) => b.agentId === 'after-bomb'), 3000, 'agent after the bomb');
  const before = honest.delivered();
  await waitFor(() => honest.delivered() > before, 3000, 'honest agent still delivering');
  t.diagnostic(`bomb rst ${req.rstCode}; its session ${s.closed || s.destroyed ? 'closed' : 'still open'}`);
  if (!s.closed && !s.destroyed) {
    // The bomb cost only its stream: the same session still carries an agent.
    const same = openTransfer(s);
    same.send({ AgentID: 'same-session', Data: [] });
    await waitFor(
      () => g.gateway.sessions.get('same-session') !== undefined,
      3000,
      'agent on the bomb session',
    );
    same.stream.end();
    assert.equal((await same.status).code, Status.OK);
  }
  honest.stop();
  assert.deepEqual(uncaught, []);
});
