/**
 * The bad-framing table of docs/hardening.md §6 (test 38) over real HTTP/2 streams to a started
 * gateway: each bad stream gets exactly its status, and afterwards the same HTTP/2 session and
 * another session still carry a good agent. Also a message built byte for byte as a stock
 * Elkeid agent sends it (hand-built protobuf and snappy framing, no encoder of ours).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ClientHttp2Session, OutgoingHttpHeaders } from 'node:http2';
import { test } from 'node:test';
import { encodeItem } from '../../gateway/agent/item.js';
import { decodeGrpcMessage, encodeGrpcMessage, Status } from '../../gateway/grpc/status.js';
import { agentHeaders, connectAgent, openTransfer } from '../../loadtest/agent/raw-agent.js';
import { startTestGateway, type TestGateway, waitFor } from '../helpers/gateway.js';
import {
  grpcFrame,
  SPEC_STREAM_ID,
  specChunk,
  specCompressedChunk,
  specCopy1,
  specFrameUncompressed,
  specLiteral,
  specUncompressedChunk,
  specVarint,
} from '../helpers/snappy-spec.js';

const TRANSFER = '/grpc.Transfer/Transfer';
const MAX_MESSAGE = 10 * 1024 * 1024;

interface RawResult {
  httpStatus: number | undefined;
  grpcStatus: number | undefined;
  /** grpc-message exactly as it came off the wire (percent-encoded). */
  grpcMessage: string | undefined;
  rstCode: number | undefined;
}

/** Opens one stream with `headers`, writes `body` (and END_STREAM when `end`), waits for its close. */
function rawCall(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  body: Buffer | undefined,
  end: boolean,
): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const method = String(headers[':method'] ?? 'POST');
    const stream = session.request(headers, { endStream: method === 'GET' });
    const result: RawResult = {
      httpStatus: undefined,
      grpcStatus: undefined,
      grpcMessage: undefined,
      rstCode: undefined,
    };
    const take = (h: Record<string, unknown>) => {
      if (h['grpc-status'] !== undefined) result.grpcStatus = Number(h['grpc-status']);
      if (h['grpc-message'] !== undefined) result.grpcMessage = String(h['grpc-message']);
    };
    const timer = setTimeout(() => {
      stream.close();
      reject(new Error('no status within 5 s'));
    }, 5000);
    stream.on('response', (h) => {
      result.httpStatus = Number(h[':status']);
      take(h);
    });
    stream.on('trailers', (h) => take(h));
    stream.on('data', () => {});
    stream.on('error', () => {});
    stream.on('close', () => {
      clearTimeout(timer);
      result.rstCode = stream.rstCode;
      resolve(result);
    });
    if (method !== 'GET') {
      if (body) stream.write(body);
      if (end) stream.end();
    }
  });
}

let seq = 0;
/** A good agent on `session`: one message, its record must reach the sink; then half-close → OK. */
async function goodAgent(g: TestGateway, session: ClientHttp2Session, label: string): Promise<void> {
  const id = `good-${label}-${++seq}`;
  const t = openTransfer(session);
  t.send({ AgentID: id, Data: [{ DataType: 5003, Timestamp: 1, Body: encodeItem({ n: String(seq) }) }] });
  await waitFor(() => g.sink.batches.some((b) => b.agentId === id), 3000, `record of ${id}`);
  t.stream.end();
  const s = await t.status;
  assert.equal(s.code, Status.OK, `${id} ended with ${s.code} ${s.message}`);
}

function snappyMessage(data: Buffer): Buffer {
  return grpcFrame(specFrameUncompressed(data), true);
}

interface Case {
  name: string;
  headers?: (h: OutgoingHttpHeaders) => OutgoingHttpHeaders;
  body?: Buffer;
  end: boolean;
  http?: number;
  grpc?: number;
  message?: RegExp;
}

const prefix = (flag: number, length: number) => {
  const b = Buffer.alloc(5);
  b[0] = flag;
  b.writeUInt32BE(length, 1);
  return b;
};
const validRaw = Buffer.from([0x12, 0x03, 0x61, 0x62, 0x63]); // RawData{AgentID: "abc"}

const cases: Case[] = [
  { name: 'truncated prefix at END_STREAM', body: Buffer.from([1, 0, 0]), end: true, grpc: Status.INTERNAL },
  {
    name: 'length prefix larger than the remaining DATA at END_STREAM',
    body: Buffer.concat([prefix(1, 100), Buffer.alloc(10)]),
    end: true,
    grpc: Status.INTERNAL,
    message: /truncated/,
  },
  {
    // Only the prefix is sent and the stream stays open: the status must come without the body.
    name: 'declared length 10 MiB + 1',
    body: prefix(1, MAX_MESSAGE + 1),
    end: false,
    grpc: Status.RESOURCE_EXHAUSTED,
    message: /larger than max/,
  },
  {
    name: 'compressed flag without grpc-encoding',
    headers: (h) => {
      const { 'grpc-encoding': _omit, ...rest } = h;
      return rest;
    },
    body: snappyMessage(validRaw),
    end: false,
    grpc: Status.INTERNAL,
  },
  {
    name: 'compressed flag with grpc-encoding: identity',
    headers: (h) => ({ ...h, 'grpc-encoding': 'identity' }),
    body: grpcFrame(validRaw, true),
    end: false,
    grpc: Status.INTERNAL,
  },
  {
    name: 'corrupt snappy chunk',
    // A compressed chunk whose block is garbage (the CRC is even right for the claimed data).
    body: grpcFrame(
      Buffer.concat([SPEC_STREAM_ID, specCompressedChunk(Buffer.from([0x05, 0xff, 0xff, 0xff]), validRaw)]),
      true,
    ),
    end: false,
    grpc: Status.INTERNAL,
    message: /snappy/,
  },
  {
    name: 'snappy stream without the stream identifier',
    body: grpcFrame(specUncompressedChunk(validRaw), true),
    end: false,
    grpc: Status.INTERNAL,
    message: /snappy/,
  },
  {
    name: 'reserved unskippable snappy chunk',
    body: grpcFrame(Buffer.concat([SPEC_STREAM_ID, specChunk(0x02, validRaw)]), true),
    end: false,
    grpc: Status.INTERNAL,
  },
  {
    name: 'bad snappy CRC',
    body: grpcFrame(Buffer.concat([SPEC_STREAM_ID, specUncompressedChunk(validRaw, 0x12345678)]), true),
    end: false,
    grpc: Status.INTERNAL,
    message: /checksum/,
  },
  {
    name: 'garbage protobuf in the first message',
    body: snappyMessage(Buffer.from([0xff, 0xff, 0xff, 0xff])),
    end: false,
    grpc: Status.INTERNAL,
    message: /unmarshal/,
  },
  {
    name: 'zero-length first message (uncompressed)',
    body: grpcFrame(Buffer.alloc(0), false),
    end: false,
    grpc: Status.INVALID_ARGUMENT,
    message: /AgentID/,
  },
  {
    name: 'zero-length first message (snappy stream with no data)',
    body: grpcFrame(SPEC_STREAM_ID, true),
    end: false,
    grpc: Status.INVALID_ARGUMENT,
    message: /AgentID/,
  },
  {
    name: 'content-type text/plain',
    headers: (h) => ({ ...h, 'content-type': 'text/plain' }),
    body: snappyMessage(validRaw),
    end: false,
    http: 415,
  },
  {
    name: 'unknown grpc-encoding br',
    headers: (h) => ({ ...h, 'grpc-encoding': 'br' }),
    body: snappyMessage(validRaw),
    end: false,
    grpc: Status.UNIMPLEMENTED,
    message: /br/,
  },
  {
    name: 'malformed grpc-timeout abc',
    headers: (h) => ({ ...h, 'grpc-timeout': 'abc' }),
    body: snappyMessage(validRaw),
    end: false,
    grpc: Status.INTERNAL,
    message: /grpc-timeout/,
  },
  {
    name: 'GET instead of POST',
    headers: (h) => ({ ...h, ':method': 'GET' }),
    end: true,
    http: 405,
  },
];

test('bad framing over real HTTP/2 streams', async (t) => {
  const uncaught: unknown[] = [];
  const spy = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', spy);
  process.on('unhandledRejection', spy);
  t.after(() => {
    process.off('uncaughtException', spy);
    process.off('unhandledRejection', spy);
  });

  const g = await startTestGateway(t);
  // Another session with a live agent, used after every bad stream.
  const other = await connectAgent(g.address, g.tls);
  t.after(() => other.destroy());

  for (const c of cases) {
    await t.test(c.name, async () => {
      const session = await connectAgent(g.address, g.tls);
      try {
        const base = agentHeaders(TRANSFER);
        const r = await rawCall(session, c.headers ? c.headers(base) : base, c.body, c.end);
        if (c.http !== undefined) assert.equal(r.httpStatus, c.http, `HTTP status (${JSON.stringify(r)})`);
        else assert.equal(r.httpStatus, 200, 'gRPC errors travel with HTTP 200');
        if (c.grpc !== undefined) assert.equal(r.grpcStatus, c.grpc, `grpc-status (${JSON.stringify(r)})`);
        if (c.message) assert.match(decodeGrpcMessage(r.grpcMessage ?? ''), c.message);
        // The stream was refused, not the connection: a second stream on it still works.
        assert.equal(session.closed || session.destroyed, false, 'session still open');
        await goodAgent(g, session, 'same-session');
        await goodAgent(g, other, 'other-session');
      } finally {
        session.destroy();
      }
    });
  }

  await t.test('grpc-message is percent-encoded on the wire', async () => {
    const session = await connectAgent(g.address, g.tls);
    try {
      // Header values travel as latin-1 octets; the gateway quotes the value in its message.
      const r = await rawCall(
        session,
        { ...agentHeaders(TRANSFER), 'grpc-encoding': 'br%zz\u00e9' },
        snappyMessage(validRaw),
        false,
      );
      assert.equal(r.grpcStatus, Status.UNIMPLEMENTED);
      const wire = r.grpcMessage ?? '';
      assert.match(wire, /^[\x20-\x7e]*$/, 'only printable ASCII on the wire');
      assert.ok(wire.includes('br%25zz%C3%A9'), `'%' and non-ASCII escaped: ${wire}`);
      assert.equal(decodeGrpcMessage(wire), 'unsupported grpc-encoding "br%zz\u00e9"');
      await goodAgent(g, session, 'after-percent');
    } finally {
      session.destroy();
    }
    assert.equal(encodeGrpcMessage('100% sûr\n'), '100%25 s%C3%BBr%0A');
  });

  assert.deepEqual(uncaught, [], 'no uncaughtException or unhandledRejection');
});

// --- A message exactly as a stock agent puts it on the wire -----------------------------------

function pbKey(field: number, wire: number): Buffer {
  return specVarint(field * 8 + wire);
}
function pbLen(field: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([pbKey(field, 2), specVarint(bytes.length), bytes]);
}
function pbStr(field: number, s: string): Buffer {
  return pbLen(field, Buffer.from(s, 'utf8'));
}
function pbVarint(field: number, n: number): Buffer {
  return Buffer.concat([pbKey(field, 0), specVarint(n)]);
}
/** Payload (server: Item): `map<string,string> fields = 1`, one entry message per pair. */
function pbPayload(fields: Array<[string, string]>): Buffer {
  return Buffer.concat(fields.map(([k, v]) => pbLen(1, Buffer.concat([pbStr(1, k), pbStr(2, v)]))));
}
/** PackagedData in field-number order, as Go's proto.Marshal writes it. */
function pbPackagedData(records: Array<{ dataType: number; timestamp: number; data: Buffer }>): Buffer {
  return Buffer.concat([
    ...records.map((r) =>
      pbLen(1, Buffer.concat([pbVarint(1, r.dataType), pbVarint(2, r.timestamp), pbLen(3, r.data)])),
    ),
    pbStr(2, 'f7c8e2a4-1b3d-5e6f-8a9b-0c1d2e3f4a5b'),
    pbStr(3, '10.2.3.4'),
    pbStr(3, '192.168.7.8'),
    pbStr(5, 'fd00::12'),
    pbStr(7, 'web-01'),
    pbStr(8, '1.9.1.0'),
    pbStr(9, 'elkeid-agent'),
  ]);
}

test('a snappy-framed RawData built byte for byte as an Elkeid agent sends it', async (t) => {
  const g = await startTestGateway(t);
  const session = await connectAgent(g.address, g.tls);
  t.after(() => session.destroy());

  // A process record whose body carries incompressible bytes: golang/snappy's writer stores such
  // a block as an uncompressed chunk (compression would save less than 1/8).
  const body1 = pbPayload([
    ['pid', '4242'],
    ['exe', '/usr/bin/curl'],
    ['blob', randomBytes(96).toString('latin1')],
  ]);
  const heartbeat = pbPayload([
    ['cpu', '0.01234567'],
    ['platform_version', '12'],
  ]);
  const msg1 = pbPackagedData([
    { dataType: 59, timestamp: 1_700_000_000, data: body1 },
    { dataType: 1000, timestamp: 1_700_000_001, data: heartbeat },
  ]);
  const frame1 = grpcFrame(Buffer.concat([SPEC_STREAM_ID, specUncompressedChunk(msg1)]), true);
  assert.equal(frame1[0], 1, 'compressed flag');
  assert.equal(frame1.readUInt32BE(1), 10 + 4 + 4 + msg1.length);

  // A second message with a repetition, compressed by hand: a literal up to the middle of a run
  // of 16 'B's, a copy of the 8 bytes before it, then a literal of the rest.
  const body2 = pbPayload([['argv', 'sh -c BBBBBBBBBBBBBBBB done']]);
  const msg2 = pbPackagedData([{ dataType: 5003, timestamp: 1_700_000_002, data: body2 }]);
  const run = msg2.indexOf(Buffer.from('BBBBBBBBBBBBBBBB'));
  assert.ok(run > 0);
  const splitAt = run + 8;
  const block = Buffer.concat([
    specVarint(msg2.length),
    specLiteral(msg2.subarray(0, splitAt)),
    specCopy1(8, 8),
    specLiteral(msg2.subarray(splitAt + 8)),
  ]);
  const frame2 = grpcFrame(Buffer.concat([SPEC_STREAM_ID, specCompressedChunk(block, msg2)]), true);

  const stream = session.request(agentHeaders(TRANSFER));
  stream.on('error', () => {});
  stream.on('data', () => {});
  // Both frames in one write, split at an odd place, to cross DATA frame boundaries.
  const wire = Buffer.concat([frame1, frame2]);
  stream.write(wire.subarray(0, 7));
  stream.write(wire.subarray(7));
  await waitFor(() => g.sink.records === 3, 3000, 'three records');

  const [b1, b2] = g.sink.batches;
  assert.ok(b1 && b2);
  assert.deepEqual(b1.message, msg1, 'the decompressed message is the agent protobuf, byte for byte');
  assert.deepEqual(b2.message, msg2);
  assert.equal(b1.agentId, 'f7c8e2a4-1b3d-5e6f-8a9b-0c1d2e3f4a5b');
  assert.equal(b1.raw.Data[0]?.DataType, 59);
  assert.equal(Number(b1.raw.Data[0]?.Timestamp), 1_700_000_000);
  assert.deepEqual(Buffer.from(b1.raw.Data[0]!.Body!), body1, 'Body bytes untouched');
  assert.deepEqual(Buffer.from(b1.raw.Data[1]!.Body!), heartbeat);
  assert.deepEqual(Buffer.from(b2.raw.Data[0]!.Body!), body2);
  assert.deepEqual(b1.raw.IntranetIPv4, ['10.2.3.4', '192.168.7.8']);
  assert.deepEqual(b1.raw.IntranetIPv6, ['fd00::12']);
  assert.equal(b1.raw.Product, 'elkeid-agent');
  const session0 = g.gateway.sessions.get('f7c8e2a4-1b3d-5e6f-8a9b-0c1d2e3f4a5b');
  assert.equal(session0?.detail?.cpu, 0.01234567);
  assert.equal(session0?.detail?.platform_version, '12');
  assert.equal(session0?.detail?.hostname, 'web-01');
  stream.end();
});
