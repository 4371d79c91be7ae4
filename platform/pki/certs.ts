// Generating the gateway's PKI: a CA, the server certificate agents verify, client certificates
// (shared `fleet` or one per agent), and CRLs. Everything here is pure generation plus writing
// files; loading the TLS context and reloading it belongs to the TLS-context module.
//
// Keys are ECDSA P-256 with SHA-256 signatures: every OpenSSL and Go TLS stack (the stock Elkeid
// agent is Go) supports it, the keys are small, and generation is fast enough to issue one
// certificate per agent on demand (an RSA-2048 key takes tens to hundreds of milliseconds).

import { X509Certificate as NodeX509, randomBytes, webcrypto } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect
// metadata API at load time (the library's README asks the app to load the polyfill first).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

/** A certificate and its private key, both PEM (key is unencrypted PKCS#8 "PRIVATE KEY"). */
export interface Pem {
  cert: string;
  key: string;
}

type CryptoKey = webcrypto.CryptoKey;

const KEY_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
const HOUR_MS = 3_600_000;
// Back-dating tolerates agents whose clocks are a little behind the gateway's.
const BACKDATE_MS = HOUR_MS;
// Stock Elkeid agents pin `elkeid.com` as the TLS server name, whatever address they dial, so
// the server certificate must carry it or no unmodified agent can connect.
const ELKEID_SERVER_NAME = 'elkeid.com';
const IDENTITY_RE = /^[A-Za-z0-9._:-]{1,128}$/;

interface Validity {
  notBefore?: Date;
  notAfter?: Date;
}

function validity(opts: Validity, years: number): { notBefore: Date; notAfter: Date } {
  const notBefore = opts.notBefore ?? new Date(Date.now() - BACKDATE_MS);
  let notAfter = opts.notAfter;
  if (notAfter === undefined) {
    notAfter = new Date(notBefore);
    notAfter.setUTCFullYear(notAfter.getUTCFullYear() + years);
  }
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new Error(`certificate notAfter (${notAfter.toISOString()}) must be after notBefore`);
  }
  return { notBefore, notAfter };
}

/** 16 random bytes with the top bit cleared, so the DER INTEGER is positive (RFC 5280 4.1.2.2). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

/**
 * The one serial format of this module: lowercase hex, even length, no leading `00` bytes —
 * exactly Node's `new crypto.X509Certificate(pem).serialNumber` (OpenSSL BN_bn2hex) lower-cased.
 * E.g. serial 10 is `0a`, a serial with the top bit set is `80…` (no DER sign byte).
 */
export function normalizeSerial(serial: string): string {
  const hex = serial.trim().toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex)) throw new Error(`invalid certificate serial (want hex): ${serial}`);
  let out = hex.length % 2 === 1 ? `0${hex}` : hex;
  while (out.length > 2 && out.startsWith('00')) out = out.slice(2);
  return out;
}

async function newKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALG, true, ['sign', 'verify']);
}

async function keyToPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function parseCa(ca: Pem): Promise<{ cert: x509.X509Certificate; signingKey: CryptoKey }> {
  const cert = new x509.X509Certificate(ca.cert);
  const der = x509.PemConverter.decodeFirst(ca.key);
  let signingKey: CryptoKey;
  try {
    signingKey = await webcrypto.subtle.importKey('pkcs8', der, KEY_ALG, false, ['sign']);
  } catch (err) {
    throw new Error('CA key must be an ECDSA P-256 PKCS#8 key', { cause: err });
  }
  return { cert, signingKey };
}

/**
 * AuthorityKeyIdentifier taken from the CA's own SubjectKeyIdentifier when it has one, so a CA
 * made elsewhere (with another key-id method) still chains: OpenSSL rejects an AKI/SKI mismatch.
 */
async function authorityKeyId(caCert: x509.X509Certificate): Promise<x509.Extension> {
  const ski = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski) return new x509.AuthorityKeyIdentifierExtension(ski.keyId);
  return x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey);
}

interface LeafParams {
  subject: x509.JsonName;
  usage: x509.ExtendedKeyUsage;
  keyUsage: x509.KeyUsageFlags;
  sans: x509.JsonGeneralName[];
  dates: { notBefore: Date; notAfter: Date };
}

async function issueLeaf(ca: Pem, p: LeafParams): Promise<Pem> {
  const { cert: caCert, signingKey } = await parseCa(ca);
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: p.subject,
    issuer: caCert.subjectName,
    ...p.dates,
    publicKey: keys.publicKey,
    signingKey,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(p.keyUsage, true),
      new x509.ExtendedKeyUsageExtension([p.usage]),
      new x509.SubjectAlternativeNameExtension(p.sans),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await authorityKeyId(caCert),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyToPem(keys.privateKey) };
}

/** Self-signed CA. Default CN `fleetgate CA`, valid 10 years from one hour ago. */
export async function createCa(opts: { commonName?: string } & Validity = {}): Promise<Pem> {
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [opts.commonName ?? 'fleetgate CA'] }],
    ...validity(opts, 10),
    keys,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyToPem(keys.privateKey) };
}

/**
 * Server certificate. The SAN always holds DNS `elkeid.com` (what stock agents verify), plus
 * `localhost` and 127.0.0.1 for local runs, plus each host given (IPs as IP SANs, else DNS).
 * Subject defaults to Elkeid's own `CN=elkeid@elkeid.com, O=hids-svr`; valid 2 years.
 */
export async function createServerCert(
  ca: Pem,
  opts: { hosts?: string[]; commonName?: string } & Validity,
): Promise<Pem> {
  const names = new Map<string, x509.JsonGeneralName>();
  for (const host of [ELKEID_SERVER_NAME, 'localhost', '127.0.0.1', ...(opts.hosts ?? [])]) {
    const h = host.trim();
    if (h === '') continue;
    const type = isIP(h) === 0 ? 'dns' : 'ip';
    names.set(`${type}:${h.toLowerCase()}`, { type, value: h });
  }
  return issueLeaf(ca, {
    subject: [{ CN: [opts.commonName ?? 'elkeid@elkeid.com'] }, { O: ['hids-svr'] }],
    usage: x509.ExtendedKeyUsage.serverAuth,
    keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
    sans: [...names.values()],
    dates: validity(opts, 2),
  });
}

/**
 * Client certificate for an agent (or the shared `fleet` identity): CN = identity and a URI SAN
 * `urn:fleetgate:agent:<identity>` that per-agent identity mode matches against; valid 1 year.
 */
export async function createClientCert(ca: Pem, opts: { identity: string } & Validity): Promise<Pem> {
  if (!IDENTITY_RE.test(opts.identity)) {
    throw new Error(`invalid client identity ${JSON.stringify(opts.identity)}: want ${IDENTITY_RE.source}`);
  }
  return issueLeaf(ca, {
    subject: [{ CN: [opts.identity] }],
    usage: x509.ExtendedKeyUsage.clientAuth,
    keyUsage: x509.KeyUsageFlags.digitalSignature,
    sans: [{ type: 'url', value: `urn:fleetgate:agent:${opts.identity}` }],
    dates: validity(opts, 1),
  });
}

/** CRL number (RFC 5280 5.2.3: MUST be present and increase): Unix seconds as a DER INTEGER. */
function crlNumberExtension(): x509.Extension {
  const hex = normalizeSerial(Math.floor(Date.now() / 1000).toString(16));
  const body = Buffer.from(`${/^[89a-f]/.test(hex) ? '00' : ''}${hex}`, 'hex');
  return new x509.Extension('2.5.29.20', false, Buffer.concat([Buffer.from([0x02, body.length]), body]));
}

/**
 * PEM CRL signed by the CA listing `revokedSerials` (format of `serialOf`). thisUpdate defaults
 * to one hour ago (clock skew), nextUpdate to 7 days later; the CRL number is the Unix time.
 */
export async function createCrl(
  ca: Pem,
  revokedSerials: string[],
  opts: { thisUpdate?: Date; nextUpdate?: Date } = {},
): Promise<string> {
  const { cert: caCert, signingKey } = await parseCa(ca);
  const thisUpdate = opts.thisUpdate ?? new Date(Date.now() - BACKDATE_MS);
  const nextUpdate = opts.nextUpdate ?? new Date(thisUpdate.getTime() + 7 * 24 * HOUR_MS);
  const unique = [...new Set(revokedSerials.map(normalizeSerial))];
  const crl = await x509.X509CrlGenerator.create({
    issuer: caCert.subjectName,
    thisUpdate,
    nextUpdate,
    signingKey,
    signingAlgorithm: SIGN_ALG,
    entries: unique.map((serialNumber) => ({ serialNumber, revocationDate: thisUpdate })),
    extensions: [await authorityKeyId(caCert), crlNumberExtension()],
  });
  // The library's PEM label is `CRL`; OpenSSL (Node's `crl` option) only reads `X509 CRL`.
  return x509.PemConverter.encode(crl.rawData, 'X509 CRL');
}

/** Serial of a PEM certificate: lowercase hex, even length, no leading zero bytes. */
export function serialOf(certPem: string): string {
  return normalizeSerial(new NodeX509(certPem).serialNumber);
}

/** Revoked serials listed in a PEM CRL, in the format of `serialOf`. */
export function revokedSerials(crlPem: string): Set<string> {
  const crl = new x509.X509Crl(crlPem);
  return new Set(crl.entries.map((e) => normalizeSerial(e.serialNumber)));
}

/** Reads `ca.crt` / `ca.key` from a PKI directory. */
export async function loadCa(dir: string): Promise<Pem> {
  const [cert, key] = await Promise.all([
    readFile(path.join(dir, 'ca.crt'), 'utf8'),
    readFile(path.join(dir, 'ca.key'), 'utf8'),
  ]);
  return { cert, key };
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? false : Promise.reject(err)),
  );
}

/**
 * Writes a PEM file, keys 0o600. Replacing goes through a fresh temp file and a rename, so an old
 * key file never holds a new key under its old (maybe wider) mode; 'wx' never clobbers a file.
 */
async function writePem(file: string, data: string, secret: boolean, replace: boolean): Promise<void> {
  const mode = secret ? 0o600 : 0o644;
  const target = replace ? `${file}.${randomBytes(6).toString('hex')}.tmp` : file;
  await writeFile(target, data, { mode, flag: 'wx' });
  await chmod(target, mode); // the umask may have narrowed `mode`
  if (target !== file) await rename(target, file);
}

/**
 * Writes a fresh PKI under Elkeid's file names (so an Elkeid deployment can use it unchanged):
 * ca, server (for `hosts`) and the shared client identity `fleet`. Refuses to overwrite any
 * existing file unless `force`, checking all six before writing anything.
 */
export async function writePkiDir(
  dir: string,
  hosts: string[] = [],
  opts: { force?: boolean } = {},
): Promise<{ written: string[] }> {
  const force = opts.force === true;
  await mkdir(dir, { recursive: true });
  for (const f of force ? [] : ['ca', 'server', 'client'].flatMap((n) => [`${n}.crt`, `${n}.key`])) {
    const file = path.join(dir, f);
    if (await exists(file)) throw new Error(`refusing to overwrite existing ${file} (use force)`);
  }
  const ca = await createCa();
  const pems: Record<string, Pem> = {
    ca,
    server: await createServerCert(ca, { hosts }),
    client: await createClientCert(ca, { identity: 'fleet' }),
  };
  const written: string[] = [];
  for (const [name, pem] of Object.entries(pems)) {
    const [crt, key] = [path.join(dir, `${name}.crt`), path.join(dir, `${name}.key`)];
    await writePem(key, pem.key, true, force);
    await writePem(crt, pem.cert, false, force);
    written.push(crt, key);
  }
  return { written };
}

/**
 * Issues a per-agent client certificate from the CA in `dir`, writing `agent-<id>.crt/.key`.
 * Re-issuing for the same id replaces the previous pair (revoke the old serial via the CRL).
 */
export async function writeAgentCert(dir: string, agentId: string): Promise<{ cert: string; key: string }> {
  const pem = await createClientCert(await loadCa(dir), { identity: agentId });
  const cert = path.join(dir, `agent-${agentId}.crt`);
  const key = path.join(dir, `agent-${agentId}.key`);
  await writePem(key, pem.key, true, true);
  await writePem(cert, pem.cert, false, true);
  return { cert, key };
}
