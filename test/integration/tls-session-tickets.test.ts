/**
 * No TLS 1.3 session tickets from the gateway as the image runs it (OPENSSL_CONF=bin/openssl.cnf):
 * stock agents (grpc-go without a session cache) never resume, so every ticket was server work
 * thrown away on each agent handshake. The gateway runs in its own process, started as the
 * benchmark starts it, since OpenSSL reads its configuration once per process.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { writeBenchPki } from '../../loadtest/bench/bench-setup.js';
import { spawnChild } from '../../loadtest/bench/child-protocol.js';
import { ROOT, tempDir } from '../helpers/gateway.js';

const CONFIG = path.join(ROOT, 'bin', 'openssl.cnf');

/** Handshakes as an agent does (client certificate, ALPN h2) and counts the tickets received before the server's first HTTP/2 bytes. */
function ticketsFrom(
  port: number,
  pkiDir: string,
): Promise<{ tickets: number; alpn: string | false | null; protocol: string | null }> {
  const read = (f: string) => readFileSync(path.join(pkiDir, f));
  return new Promise((resolve, reject) => {
    let tickets = 0;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'elkeid.com',
      ca: read('ca.crt'),
      cert: read('client.crt'),
      key: read('client.key'),
      ALPNProtocols: ['h2'],
      checkServerIdentity: () => undefined,
    });
    socket.on('session', () => tickets++);
    socket.on('error', reject);
    // OpenSSL sends the tickets right after the handshake, before the server's HTTP/2 SETTINGS.
    socket.once('data', () => {
      resolve({ tickets, alpn: socket.alpnProtocol, protocol: socket.getProtocol() });
      socket.destroy();
    });
  });
}

async function gatewayProcess(t: import('node:test').TestContext, nodeArgs: string[]) {
  const pkiDir = tempDir(t, 'fg-tickets-');
  await writeBenchPki(pkiDir);
  const child = await spawnChild(
    'gateway',
    [...nodeArgs, '--import', 'tsx'],
    path.join(ROOT, 'loadtest/bench/gateway-server.ts'),
    ['--pki', pkiDir, '--port', '0'],
  );
  t.after(() => child.stop(5000));
  return { port: Number(child.hello.port), pkiDir };
}

test('with bin/openssl.cnf the gateway completes agent handshakes without any session ticket', async (t) => {
  const g = await gatewayProcess(t, [`--openssl-config=${CONFIG}`]);
  const r = await ticketsFrom(g.port, g.pkiDir);
  assert.deepEqual(r, { tickets: 0, alpn: 'h2', protocol: 'TLSv1.3' });
});

test("without it OpenSSL's default applies: two tickets after each full handshake", async (t) => {
  const g = await gatewayProcess(t, []);
  const r = await ticketsFrom(g.port, g.pkiDir);
  assert.deepEqual(r, { tickets: 2, alpn: 'h2', protocol: 'TLSv1.3' });
});

test('the image runs the gateway with bin/openssl.cnf', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  assert.match(dockerfile, /OPENSSL_CONF=\/app\/bin\/openssl\.cnf/);
  assert.match(dockerfile, /COPY --from=build \/app\/bin \.\/bin/);
});
