/**
 * The kafkajs request-queue fix (workers/kafka/kafkajs-request-queue.ts) on kafkajs' own
 * RequestQueue: an idle queue arms no timer (stock kafkajs arms a 1 ms one after every response,
 * for ever), and requests that must wait (for an in-flight slot, for a broker's throttle) still
 * go out.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixKafkajsIdleTimer, kafkajsRequestQueue } from '../../workers/kafka/kafkajs-request-queue.js';

interface Queue {
  push(r: { entry: Record<string, unknown>; expectResponse: boolean; sendRequest(): void }): void;
  fulfillRequest(r: { correlationId: number; payload: Buffer; size: number }): void;
  maybeThrottle(ms: number): void;
  destroy(): void;
  pending: unknown[];
  throttleCheckTimeoutId: NodeJS.Timeout | null;
}

const silent = { debug() {}, info() {}, warn() {}, error() {} };

function queue(maxInFlightRequests: number): { q: Queue; sent: number[]; push(id: number): void } {
  fixKafkajsIdleTimer();
  const RequestQueue = kafkajsRequestQueue() as unknown as new (o: Record<string, unknown>) => Queue;
  const q = new RequestQueue({
    maxInFlightRequests,
    requestTimeout: 30_000,
    enforceRequestTimeout: false,
    clientId: 'test',
    broker: 'test:9092',
    logger: silent,
  });
  const sent: number[] = [];
  const push = (id: number) =>
    q.push({
      entry: { correlationId: id, apiKey: 0, apiName: 'Produce', apiVersion: 3, resolve() {}, reject() {} },
      expectResponse: true,
      sendRequest: () => sent.push(id),
    });
  return { q, sent, push };
}

const response = (correlationId: number) => ({ correlationId, payload: Buffer.alloc(0), size: 0 });

test('a queue with nothing waiting arms no timer after a response', (t) => {
  const { q, sent, push } = queue(1);
  t.after(() => q.destroy());
  push(1);
  assert.deepEqual(sent, [1]);
  q.fulfillRequest(response(1));
  assert.equal(
    q.throttleCheckTimeoutId,
    null,
    'stock kafkajs arms a 1 ms timer here, and again each time it fires',
  );
});

test('a request waiting for an in-flight slot goes out when the slot frees', (t) => {
  const { q, sent, push } = queue(1);
  t.after(() => q.destroy());
  push(1);
  push(2);
  assert.deepEqual(sent, [1]);
  assert.equal(q.pending.length, 1);
  assert.notEqual(q.throttleCheckTimeoutId, null, 'queued: the check timer is armed');
  q.fulfillRequest(response(1));
  assert.deepEqual(sent, [1, 2]);
});

test('a throttled queue keeps its timer and sends once the throttle ends', async (t) => {
  const { q, sent, push } = queue(5);
  t.after(() => q.destroy());
  q.maybeThrottle(30);
  push(1);
  assert.deepEqual(sent, [], 'held while throttled');
  assert.notEqual(q.throttleCheckTimeoutId, null);
  const deadline = Date.now() + 5_000;
  while (sent.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(sent, [1]);
});

test('patching twice wraps once', () => {
  fixKafkajsIdleTimer();
  const before = kafkajsRequestQueue().prototype.scheduleCheckPendingRequests;
  fixKafkajsIdleTimer();
  assert.equal(kafkajsRequestQueue().prototype.scheduleCheckPendingRequests, before);
});
