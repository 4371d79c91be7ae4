/**
 * Issue 14, item 8: the control API checks what the headers can tell (key known, timestamp in
 * the window) before it reads a body, and bounds the unverified body bytes buffered at once: an
 * unsigned 4 MiB upload is refused without its body being read, and past the budget further
 * well-formed but unverified uploads are refused with 503 at once; signed calls go on working.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { signRequest } from '../../platform/http/aksk.js';
import { CONTROL_AK, CONTROL_SK, startTestControlApi, startTestGateway } from '../helpers/gateway.js';

const FOUR_MIB = 4 * 1024 * 1024;

/** Sends only the head of a POST declaring a 4 MiB body; resolves with what the server answered. */
function headOnly(
  port: number,
  headers: Record<string, string>,
): { answer: Promise<string>; socket: net.Socket } {
  const socket = net.connect(port, '127.0.0.1');
  const lines = Object.entries({ host: '127.0.0.1', 'content-length': String(FOUR_MIB), ...headers }).map(
    ([k, v]) => `${k}: ${v}`,
  );
  socket.write(`POST /command HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`);
  const answer = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (d) => {
      text += String(d);
      if (/\r\n\r\n/.test(text) && /\}$/.test(text.trim())) resolve(text);
    });
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
  });
  return { answer, socket };
}

const within = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([
    p,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer: ${what}`)), ms)),
  ]);

test('unsigned uploads are refused from their headers; unverified bodies are bounded; signed calls work', async (t) => {
  const g = await startTestGateway(t);
  const api = await startTestControlApi(g);
  t.after(() => api.close());

  // Unknown key: answered from the headers, the 4 MiB are never sent (nor buffered).
  const unknown = headOnly(api.port, {
    accesskey: 'nobody',
    timestamp: String(Math.floor(Date.now() / 1000)),
    signature: 'x',
  });
  t.after(() => unknown.socket.destroy());
  assert.match(await within(unknown.answer, 10_000, 'unknown AK'), /User not exist/);
  const stale = headOnly(api.port, { accesskey: CONTROL_AK, timestamp: '1000', signature: 'x' });
  t.after(() => stale.socket.destroy());
  assert.match(await within(stale.answer, 10_000, 'stale timestamp'), /timestamp error/);

  // Known key, fresh timestamp, body still to come: unverified. 16 MiB of them at most (4 × 4 MiB),
  // the rest refused at once with 503.
  const held = Array.from({ length: 10 }, () =>
    headOnly(api.port, {
      accesskey: CONTROL_AK,
      timestamp: String(Math.floor(Date.now() / 1000)),
      signature: 'f'.repeat(64),
    }),
  );
  t.after(() => {
    for (const h of held) h.socket.destroy();
  });
  const answers = await Promise.all(
    held.map((h) =>
      Promise.race([
        h.answer,
        new Promise<string>((r) => setTimeout(() => r('(waiting for the body)'), 3000)),
      ]),
    ),
  );
  const busy = answers.filter((a) => /^HTTP\/1\.1 503/.test(a)).length;
  assert.equal(
    busy,
    6,
    `past 16 MiB of unverified bodies, refused: ${answers.map((a) => a.split('\r\n')[0]).join(' | ')}`,
  );

  // The held uploads go away; a signed call is served.
  for (const h of held) h.socket.destroy();
  await new Promise((r) => setTimeout(r, 200));
  const body = JSON.stringify({ agent_id: 'nobody-here', command: { AgentCtrl: 1 } });
  const res = await fetch(`http://127.0.0.1:${api.port}/command`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...signRequest({ method: 'POST', path: '/command', query: '', body, ak: CONTROL_AK, sk: CONTROL_SK }),
    },
    body,
  });
  const answer = (await res.json()) as { code: number; msg: string };
  assert.doesNotMatch(answer.msg, /signature|User not exist|unverified/, JSON.stringify(answer));
});
