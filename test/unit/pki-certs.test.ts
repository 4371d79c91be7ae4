import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import tls from 'node:tls';
import {
  createCa,
  createClientCert,
  createCrl,
  createServerCert,
  loadCa,
  type Pem,
  revokedSerials,
  serialOf,
  writeAgentCert,
  writePkiDir,
} from '../../platform/pki/certs.js';

const DAY_MS = 86_400_000;
const HANDSHAKE_TIMEOUT_MS = 3000;

interface Fixtures {
  ca: Pem;
  otherCa: Pem;
  server: Pem;
  client: Pem;
  revoked: Pem;
  expired: Pem;
  foreign: Pem;
}

let fx: Fixtures;

before(async () => {
  const ca = await createCa();
  const otherCa = await createCa({ commonName: 'someone else CA' });
  fx = {
    ca,
    otherCa,
    server: await createServerCert(ca, { hosts: ['10.1.2.3', 'gw.example.com'] }),
    client: await createClientCert(ca, { identity: 'agent-1' }),
    revoked: await createClientCert(ca, { identity: 'agent-revoked' }),
    expired: await createClientCert(ca, {
      identity: 'agent-expired',
      notBefore: new Date(Date.now() - 3 * DAY_MS),
      notAfter: new Date(Date.now() - DAY_MS),
    }),
    foreign: await createClientCert(otherCa, { identity: 'agent-1' }),
  };
});

function x(pem: string): X509Certificate {
  return new X509Certificate(pem);
}

function validityDays(cert: X509Certificate): number {
  return (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / DAY_MS;
}

type After = { after: (fn: () => void | Promise<void>) => void };

interface Server {
  port: number;
  /** CNs of client certificates the server accepted as authorized. */
  accepted: string[];
  /** `authorizationError` of clients let in unauthorized (only with `rejectUnauthorized: false`). */
  unauthorized: string[];
}

/**
 * A real mTLS server on 127.0.0.1:0 that greets every client it lets in with `ok`. A refusing
 * server (`rejectUnauthorized: true`, the production setting) just drops the connection without
 * telling anyone why, so the reason is checked separately with a non-refusing twin.
 */
async function startServer(
  t: After,
  opts: { pem: Pem; ca: string; crl?: string; rejectUnauthorized?: boolean },
): Promise<Server> {
  const accepted: string[] = [];
  const unauthorized: string[] = [];
  const server = tls.createServer(
    {
      key: opts.pem.key,
      cert: opts.pem.cert,
      ca: opts.ca,
      requestCert: true,
      rejectUnauthorized: opts.rejectUnauthorized ?? true,
      ...(opts.crl === undefined ? {} : { crl: opts.crl }),
    },
    (socket) => {
      if (socket.authorized) accepted.push(String(socket.getPeerCertificate().subject.CN));
      else unauthorized.push(String(socket.authorizationError));
      socket.on('error', () => {});
      // Read (and drop) what the client sends: a paused socket never sees EOF, so it would never
      // close and `server.close()` would wait forever.
      socket.resume();
      socket.end('ok');
    },
  );
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as AddressInfo).port, accepted, unauthorized };
}

type Outcome = { kind: 'accepted'; data: string; authorized: boolean } | { kind: 'refused'; error?: Error };

/**
 * Connects and classifies the result. With TLS 1.3 the client's handshake completes before the
 * server has judged the client certificate, so a refusal may only show on the first read: the
 * client writes a byte and waits for the server's greeting, an error, or a close without data.
 * Neither within the timeout fails the test.
 */
function connect(port: number, opts: tls.ConnectionOptions): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...opts });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TLS connection neither accepted nor refused within ${HANDSHAKE_TIMEOUT_MS} ms`));
    }, HANDSHAKE_TIMEOUT_MS);
    const done = (outcome: Outcome): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    socket.on('secureConnect', () => socket.write('x'));
    socket.on('data', (chunk: Buffer) =>
      done({ kind: 'accepted', data: chunk.toString(), authorized: socket.authorized }),
    );
    socket.on('error', (error) => done({ kind: 'refused', error }));
    socket.on('close', () => done({ kind: 'refused' }));
  });
}

function errorCode(outcome: Outcome): string | undefined {
  return outcome.kind === 'refused' ? (outcome.error as NodeJS.ErrnoException | undefined)?.code : undefined;
}

function clientOpts(pem: Pem, ca: string): tls.ConnectionOptions {
  return { key: pem.key, cert: pem.cert, ca, servername: 'elkeid.com' };
}

/**
 * The production server refuses `client`, and a non-refusing twin with the same trust settings
 * names `reason` as the verification error (so a refusal for some other cause fails the test).
 */
async function assertRefused(
  t: After,
  client: Partial<Pem>,
  reason: string,
  trust: { crl?: string } = {},
): Promise<void> {
  const opts = { pem: fx.server, ca: fx.ca.cert, ...trust };
  const strict = await startServer(t, opts);
  const outcome = await connect(strict.port, { ...client, ca: fx.ca.cert, servername: 'elkeid.com' });
  assert.equal(outcome.kind, 'refused', 'the handshake must be refused');
  assert.deepEqual(strict.accepted, [], 'the server must not accept the client');

  const lenient = await startServer(t, { ...opts, rejectUnauthorized: false });
  const seen = await connect(lenient.port, { ...client, ca: fx.ca.cert, servername: 'elkeid.com' });
  assert.equal(seen.kind, 'accepted');
  assert.deepEqual(lenient.unauthorized, [reason]);
}

describe('certificate contents', () => {
  test('CA is self-signed P-256 with CA:true and 10-year default validity', () => {
    const ca = x(fx.ca.cert);
    assert.equal(ca.ca, true);
    assert.equal(ca.subject, 'CN=fleetgate CA');
    assert.ok(ca.checkIssued(ca));
    assert.ok(ca.verify(ca.publicKey));
    assert.equal(ca.publicKey.asymmetricKeyType, 'ec');
    assert.equal(ca.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(Date.parse(ca.validFrom) <= Date.now() - 59 * 60_000, 'back-dated by an hour');
    assert.ok(validityDays(ca) >= 3650 && validityDays(ca) <= 3653);
    assert.match(fx.ca.key, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.ok(ca.checkPrivateKey(createPrivateKey(fx.ca.key)));
  });

  test('server certificate: elkeid.com SAN, local names, given hosts, serverAuth, issued by CA', () => {
    const ca = x(fx.ca.cert);
    const srv = x(fx.server.cert);
    const sans = (srv.subjectAltName ?? '').split(', ');
    for (const san of [
      'DNS:elkeid.com',
      'DNS:localhost',
      'IP Address:127.0.0.1',
      'IP Address:10.1.2.3',
      'DNS:gw.example.com',
    ]) {
      assert.ok(sans.includes(san), `${san} in ${srv.subjectAltName}`);
    }
    assert.equal(srv.subject, 'CN=elkeid@elkeid.com\nO=hids-svr');
    assert.equal(srv.ca, false);
    assert.deepEqual(srv.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    assert.ok(srv.checkIssued(ca));
    assert.ok(srv.verify(ca.publicKey));
    assert.equal(srv.verify(x(fx.otherCa.cert).publicKey), false);
    assert.equal(srv.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(validityDays(srv) >= 730 && validityDays(srv) <= 731);
    assert.ok(srv.checkPrivateKey(createPrivateKey(fx.server.key)));
    assert.doesNotThrow(() => tls.createSecureContext({ key: fx.server.key, cert: fx.server.cert }));
  });

  test('client certificate: CN and URI SAN carry the identity, clientAuth, 1-year validity', () => {
    const cli = x(fx.client.cert);
    assert.equal(cli.subject, 'CN=agent-1');
    assert.equal(cli.subjectAltName, 'URI:urn:fleetgate:agent:agent-1');
    assert.deepEqual(cli.keyUsage, ['1.3.6.1.5.5.7.3.2']);
    assert.ok(cli.checkIssued(x(fx.ca.cert)));
    assert.ok(cli.verify(x(fx.ca.cert).publicKey));
    assert.equal(cli.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(validityDays(cli) >= 365 && validityDays(cli) <= 366);
  });

  test('client identity is validated', async () => {
    for (const identity of ['', 'bad/id', 'a b', '../x', 'é', 'a'.repeat(129)]) {
      await assert.rejects(createClientCert(fx.ca, { identity }), /invalid client identity/);
    }
    const ok = await createClientCert(fx.ca, { identity: `host-1.example:A_${'b'.repeat(100)}` });
    assert.match(x(ok.cert).subject, /^CN=host-1\.example:A_b+$/);
  });

  test('notAfter before notBefore is refused', async () => {
    await assert.rejects(
      createClientCert(fx.ca, { identity: 'a', notBefore: new Date(), notAfter: new Date(Date.now() - 1) }),
      /notAfter/,
    );
  });
});

describe('serials and CRLs', () => {
  test("serialOf is Node's serialNumber lower-cased: even-length hex, no leading zero byte", () => {
    const serials = Object.values(fx).map((p) => serialOf(p.cert));
    for (const [i, p] of Object.values(fx).entries()) {
      assert.equal(serials[i], x(p.cert).serialNumber.toLowerCase());
      assert.match(serials[i] ?? '', /^(?!00)([0-9a-f]{2}){1,16}$/);
    }
    assert.equal(new Set(serials).size, serials.length, 'serials are random');
  });

  test('createCrl lists the given serials; revokedSerials reads them back in the same format', async () => {
    const serial = serialOf(fx.revoked.cert);
    const crl = await createCrl(fx.ca, [serial, serial.toUpperCase(), 'A', '00FF']);
    assert.match(crl, /^-----BEGIN X509 CRL-----\n/);
    assert.deepEqual(revokedSerials(crl), new Set([serial, '0a', 'ff']));
    assert.deepEqual(revokedSerials(await createCrl(fx.ca, [])), new Set());
    await assert.rejects(createCrl(fx.ca, ['xyz']), /invalid certificate serial/);
  });
});

describe('TLS handshakes through real sockets', () => {
  test('a valid client certificate is accepted', async (t) => {
    const server = await startServer(t, { pem: fx.server, ca: fx.ca.cert });
    const outcome = await connect(server.port, clientOpts(fx.client, fx.ca.cert));
    assert.deepEqual(outcome, { kind: 'accepted', data: 'ok', authorized: true });
    assert.deepEqual(server.accepted, ['agent-1']);
  });

  test('a client certificate revoked by the CRL is refused; others still pass', async (t) => {
    const crl = await createCrl(fx.ca, [serialOf(fx.revoked.cert)]);
    await assertRefused(t, fx.revoked, 'CERT_REVOKED', { crl });
    const server = await startServer(t, { pem: fx.server, ca: fx.ca.cert, crl });
    const ok = await connect(server.port, clientOpts(fx.client, fx.ca.cert));
    assert.equal(ok.kind, 'accepted', 'the CRL must not block unrevoked certificates');
    assert.deepEqual(server.accepted, ['agent-1']);
  });

  test('an expired client certificate is refused', async (t) => {
    await assertRefused(t, fx.expired, 'CERT_HAS_EXPIRED');
  });

  test('a client certificate from another CA is refused', async (t) => {
    await assertRefused(t, fx.foreign, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  test('a client without a certificate is refused', async (t) => {
    await assertRefused(t, {}, 'UNABLE_TO_GET_ISSUER_CERT');
  });

  test('the server certificate verifies as elkeid.com and 127.0.0.1 with default checks', async (t) => {
    const server = await startServer(t, { pem: fx.server, ca: fx.ca.cert });
    const asElkeid = await connect(server.port, clientOpts(fx.client, fx.ca.cert));
    assert.deepEqual(asElkeid, { kind: 'accepted', data: 'ok', authorized: true });
    const byIp = await connect(server.port, { key: fx.client.key, cert: fx.client.cert, ca: fx.ca.cert });
    assert.equal(byIp.kind, 'accepted');
    const wrongName = await connect(server.port, {
      ...clientOpts(fx.client, fx.ca.cert),
      servername: 'evil.test',
    });
    assert.equal(wrongName.kind, 'refused');
    assert.equal(errorCode(wrongName), 'ERR_TLS_CERT_ALTNAME_INVALID');
    const wrongCa = await connect(server.port, clientOpts(fx.client, fx.otherCa.cert));
    assert.equal(wrongCa.kind, 'refused');
    assert.equal(errorCode(wrongCa), 'SELF_SIGNED_CERT_IN_CHAIN');
  });
});

describe('PKI directory', () => {
  const KEYS = ['ca.key', 'server.key', 'client.key'];
  const CERTS = ['ca.crt', 'server.crt', 'client.crt'];

  function mode(file: string): number {
    return fs.statSync(file).mode & 0o777;
  }

  function tempDir(t: After): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  test('writePkiDir writes the six Elkeid files, keys 0600, and refuses to overwrite', async (t) => {
    const dir = path.join(tempDir(t), 'nested', 'pki');
    const { written } = await writePkiDir(dir, ['10.9.8.7']);
    assert.deepEqual(written.map((f) => path.basename(f)).sort(), [...CERTS, ...KEYS].sort());
    for (const f of KEYS) assert.equal(mode(path.join(dir, f)), 0o600, f);
    for (const f of CERTS) assert.equal(mode(path.join(dir, f)), 0o644, f);

    const read = (f: string): string => fs.readFileSync(path.join(dir, f), 'utf8');
    const ca = x(read('ca.crt'));
    assert.ok(x(read('server.crt')).checkIssued(ca));
    assert.match(x(read('server.crt')).subjectAltName ?? '', /IP Address:10\.9\.8\.7/);
    assert.equal(x(read('client.crt')).subject, 'CN=fleet');
    assert.deepEqual(await loadCa(dir), { cert: read('ca.crt'), key: read('ca.key') });

    const before = read('ca.crt');
    await assert.rejects(writePkiDir(dir), (err: Error) => err.message.includes(path.join(dir, 'ca.crt')));
    assert.equal(read('ca.crt'), before, 'nothing overwritten');

    fs.chmodSync(path.join(dir, 'ca.key'), 0o644);
    await writePkiDir(dir, [], { force: true });
    assert.notEqual(read('ca.crt'), before, 'force replaces the PKI');
    assert.equal(mode(path.join(dir, 'ca.key')), 0o600, 'force restores key mode');
  });

  test('writePkiDir checks every file before writing any', async (t) => {
    const dir = tempDir(t);
    fs.writeFileSync(path.join(dir, 'client.key'), 'mine');
    await assert.rejects(writePkiDir(dir), /client\.key/);
    assert.deepEqual(fs.readdirSync(dir), ['client.key']);
    assert.equal(fs.readFileSync(path.join(dir, 'client.key'), 'utf8'), 'mine');
  });

  test('writeAgentCert issues a per-agent pair that completes a handshake', async (t) => {
    const dir = tempDir(t);
    await writePkiDir(dir);
    const paths = await writeAgentCert(dir, 'host-42');
    assert.deepEqual(paths, {
      cert: path.join(dir, 'agent-host-42.crt'),
      key: path.join(dir, 'agent-host-42.key'),
    });
    assert.equal(mode(paths.key), 0o600);
    const agent = { cert: fs.readFileSync(paths.cert, 'utf8'), key: fs.readFileSync(paths.key, 'utf8') };
    assert.equal(x(agent.cert).subjectAltName, 'URI:urn:fleetgate:agent:host-42');

    const ca = await loadCa(dir);
    const pem = {
      cert: fs.readFileSync(path.join(dir, 'server.crt'), 'utf8'),
      key: fs.readFileSync(path.join(dir, 'server.key'), 'utf8'),
    };
    const server = await startServer(t, { pem, ca: ca.cert });
    const outcome = await connect(server.port, clientOpts(agent, ca.cert));
    assert.equal(outcome.kind, 'accepted');
    assert.deepEqual(server.accepted, ['host-42']);

    await assert.rejects(writeAgentCert(dir, '../escape'), /invalid client identity/);
    assert.ok(!fs.readdirSync(dir).some((f) => f.includes('escape')));
  });
});
