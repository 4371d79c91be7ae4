/**
 * Checks the gateway's PKI files before they are used: at start (a bad file stops the start with
 * exit 2, naming it) and at every reload (a bad file keeps the previous good set; tls-context.ts).
 * Node's TLS accepts a CA bundle with no certificate in it, and then refuses every agent as
 * untrusted while the gateway says it is up; these checks turn that into one clear message.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { revokedSerials } from './certs.js';

export class PkiError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'PkiError';
  }
}

/** The files the gateway needs in its PKI dir (Elkeid's names). */
export const REQUIRED_PKI_FILES = ['ca.crt', 'server.crt', 'server.key'] as const;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new PkiError(
      file,
      `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

/** Every certificate of a PEM bundle; at least one, each parseable. */
function certificates(file: string): X509Certificate[] {
  const blocks = read(file).match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new PkiError(file, 'holds no PEM certificate');
  return blocks.map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch (err) {
      throw new PkiError(file, `certificate ${i + 1} does not parse (${(err as Error).message})`);
    }
  });
}

/**
 * Validates the PKI dir: CA bundle, server certificate and key (parse, match, signed by the CA,
 * within validity), and the CRL when present. Throws PkiError naming the first bad file.
 */
export function validatePkiDir(pkiDir: string, now = new Date()): void {
  const missing = REQUIRED_PKI_FILES.filter((f) => !existsSync(path.join(pkiDir, f)));
  if (missing.length > 0) {
    throw new PkiError(
      pkiDir,
      `missing ${missing.join(', ')} (a PKI needs ${REQUIRED_PKI_FILES.join(', ')})`,
    );
  }
  const caFile = path.join(pkiDir, 'ca.crt');
  const cas = certificates(caFile);
  const serverFile = path.join(pkiDir, 'server.crt');
  const [server] = certificates(serverFile);
  const keyFile = path.join(pkiDir, 'server.key');
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(read(keyFile));
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError(keyFile, `is not a PEM private key (${(err as Error).message})`);
  }
  if (!server!.checkPrivateKey(key)) {
    throw new PkiError(keyFile, 'does not match the public key of server.crt (mismatched key pair)');
  }
  if (!cas.some((ca) => server!.checkIssued(ca) && server!.verify(ca.publicKey))) {
    throw new PkiError(serverFile, 'is not signed by any certificate of ca.crt');
  }
  if (new Date(server!.validTo) < now) throw new PkiError(serverFile, `expired on ${server!.validTo}`);
  const crlFile = path.join(pkiDir, 'crl.pem');
  if (existsSync(crlFile)) {
    try {
      revokedSerials(read(crlFile));
    } catch (err) {
      if (err instanceof PkiError) throw err;
      throw new PkiError(crlFile, `is not a PEM CRL (${(err as Error).message})`);
    }
  }
}
