/**
 * The length-prefixed message reader (PROTOCOL-HTTP2.md "Length-Prefixed-Message") fed the way
 * HTTP/2 DATA frames arrive: arbitrary splits, several messages per chunk, hostile prefixes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type FramedMessage, frameMessage, MessageReader } from '../../gateway/grpc/message-reader.js';
import { GrpcError, Status } from '../../gateway/grpc/status.js';
import { grpcFrame } from '../helpers/snappy-spec.js';

const MAX = 1024 * 1024;

function expectStatus(fn: () => unknown, code: number, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof GrpcError, `expected a GrpcError, got ${String(err)}`);
    assert.equal(err.code, code, `status ${err.code} (${err.message})`);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

function feed(reader: MessageReader, chunks: Buffer[]): FramedMessage[] {
  const out: FramedMessage[] = [];
  for (const c of chunks) out.push(...reader.push(c));
  return out;
}

/** Plain values for deepEqual (Buffer vs subarray views compare by content). */
function plain(ms: FramedMessage[]): Array<{ compressed: boolean; payload: string }> {
  return ms.map((m) => ({ compressed: m.compressed, payload: m.payload.toString('hex') }));
}

describe('MessageReader', () => {
  test('frameMessage writes the spec prefix', () => {
    assert.deepEqual(frameMessage(Buffer.from('abc')), Buffer.from([0, 0, 0, 0, 3, 0x61, 0x62, 0x63]));
    assert.deepEqual(frameMessage(Buffer.from('abc'), true), grpcFrame(Buffer.from('abc'), true));
  });

  test('one message split in two at every offset, and byte by byte', () => {
    const payload = randomBytes(23);
    const frame = grpcFrame(payload, true);
    for (let cut = 0; cut <= frame.length; cut++) {
      const r = new MessageReader(MAX);
      const first = r.push(frame.subarray(0, cut));
      assert.equal(first.length, cut === frame.length ? 1 : 0, `cut ${cut}`);
      assert.equal(r.idle, cut === 0 || cut === frame.length, `idle after ${cut} bytes`);
      const rest = r.push(frame.subarray(cut));
      const all = [...first, ...rest];
      assert.deepEqual(plain(all), [{ compressed: true, payload: payload.toString('hex') }], `cut ${cut}`);
      assert.ok(r.idle);
      r.finish();
    }
    const r = new MessageReader(MAX);
    const out = feed(
      r,
      [...frame].map((b) => Buffer.from([b])),
    );
    assert.deepEqual(plain(out), [{ compressed: true, payload: payload.toString('hex') }]);
  });

  test('the prefix split at every pair of offsets across three chunks', () => {
    const payload = Buffer.from('xyz');
    const frame = grpcFrame(payload, false);
    for (let i = 0; i <= 5; i++) {
      for (let j = i; j <= 5; j++) {
        const r = new MessageReader(MAX);
        const out = feed(r, [frame.subarray(0, i), frame.subarray(i, j), frame.subarray(j)]);
        assert.deepEqual(plain(out), [{ compressed: false, payload: '78797a' }], `splits ${i},${j}`);
      }
    }
  });

  test('many messages in one chunk, in order', () => {
    const payloads = Array.from({ length: 100 }, (_, i) => Buffer.from(`message-${i}`));
    const chunk = Buffer.concat(payloads.map((p, i) => grpcFrame(p, i % 2 === 0)));
    const out = new MessageReader(MAX).push(chunk);
    assert.equal(out.length, 100);
    out.forEach((m, i) => {
      assert.equal(m.payload.toString(), `message-${i}`);
      assert.equal(m.compressed, i % 2 === 0);
    });
  });

  test('zero-length messages', () => {
    const r = new MessageReader(MAX);
    const out = r.push(Buffer.concat([grpcFrame(Buffer.alloc(0), false), grpcFrame(Buffer.alloc(0), true)]));
    assert.deepEqual(plain(out), [
      { compressed: false, payload: '' },
      { compressed: true, payload: '' },
    ]);
    assert.ok(r.idle);
    r.finish();
  });

  test('a declared length over the limit is RESOURCE_EXHAUSTED at the prefix, before the body', () => {
    const r = new MessageReader(1000);
    // Exactly the limit is fine.
    assert.equal(r.push(grpcFrame(Buffer.alloc(1000), false)).length, 1);
    const prefix = Buffer.from([0, 0, 0, 0x03, 0xe9]); // 1001
    // Only the 5-byte prefix is pushed: no body has arrived, the reader must already refuse.
    expectStatus(() => r.push(prefix), Status.RESOURCE_EXHAUSTED, /1001 vs\. 1000/);
    // 10 MiB + 1 against the Elkeid limit, prefix split in two chunks.
    const elkeid = new MessageReader(10 * 1024 * 1024);
    const big = Buffer.alloc(5);
    big.writeUInt32BE(10 * 1024 * 1024 + 1, 1);
    assert.deepEqual(elkeid.push(big.subarray(0, 3)), []);
    expectStatus(() => elkeid.push(big.subarray(3)), Status.RESOURCE_EXHAUSTED);
    // 0xffffffff does not wrap around.
    expectStatus(
      () => new MessageReader(MAX).push(Buffer.from([1, 0xff, 0xff, 0xff, 0xff])),
      Status.RESOURCE_EXHAUSTED,
    );
  });

  test('compressed flag other than 0 or 1 is INTERNAL', () => {
    for (const flag of [2, 3, 0x80, 0xff]) {
      const r = new MessageReader(MAX);
      expectStatus(() => r.push(Buffer.from([flag, 0, 0, 0, 1, 0x41])), Status.INTERNAL, /compressed flag/);
    }
  });

  test('finish() inside a message is INTERNAL, at a boundary it is fine', () => {
    const frame = grpcFrame(Buffer.from('hello'), false);
    for (let cut = 1; cut < frame.length; cut++) {
      const r = new MessageReader(MAX);
      r.push(frame.subarray(0, cut));
      expectStatus(() => r.finish(), Status.INTERNAL, /truncated/);
    }
    const r = new MessageReader(MAX);
    r.push(frame);
    r.finish();
    new MessageReader(MAX).finish();
  });

  test('property: any split of a valid concatenation yields the same messages', () => {
    const message = fc.record({ compressed: fc.boolean(), payload: fc.uint8Array({ maxLength: 300 }) });
    fc.assert(
      fc.property(
        fc.array(message, { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (messages, rawCuts) => {
          const stream = Buffer.concat(messages.map((m) => grpcFrame(m.payload, m.compressed)));
          const cuts = [
            ...new Set(rawCuts.map((c) => (stream.length === 0 ? 0 : c % (stream.length + 1)))),
          ].sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let prev = 0;
          for (const c of [...cuts, stream.length]) {
            chunks.push(stream.subarray(prev, c));
            prev = c;
          }
          const r = new MessageReader(MAX);
          const out = feed(r, chunks);
          r.finish();
          assert.deepEqual(
            plain(out),
            messages.map((m) => ({
              compressed: m.compressed,
              payload: Buffer.from(m.payload).toString('hex'),
            })),
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  test('property: random bytes never throw anything but GrpcError', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }),
        fc.boolean(),
        (chunks, end) => {
          const r = new MessageReader(512);
          try {
            for (const c of chunks) {
              for (const m of r.push(Buffer.from(c))) assert.ok(m.payload.length <= 512);
            }
            if (end) r.finish();
          } catch (err) {
            assert.ok(err instanceof GrpcError, `untyped error: ${String(err)}`);
            assert.ok(
              err.code === Status.INTERNAL || err.code === Status.RESOURCE_EXHAUSTED,
              `unexpected status ${err.code}`,
            );
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
