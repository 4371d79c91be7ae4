/**
 * The gateway's TLS material from the PKI dir (Elkeid's file names) and its reload without a
 * restart: on SIGHUP or when a file changes (polled), the server gets a new secure context for
 * new handshakes, and live sessions whose certificate a new CRL revokes are closed.
 */
import { existsSync, readFileSync, type Stats, statSync, unwatchFile, watchFile } from 'node:fs';
import type { SecureServerOptions } from 'node:http2';
import path from 'node:path';
import { revokedSerials } from './certs.js';
import { gatewayRevocation, type RevocationList } from './revocation.js';
import { validatePkiDir } from './validate.js';

/** Optional CRL file in the PKI dir (PEM); absent means nothing is revoked. */
export const CRL_FILE = 'crl.pem';

export interface TlsMaterial {
  options: SecureServerOptions;
  revoked: Set<string>;
  /**
   * The CRL as the gateway checks it itself at the end of each handshake (revocation.ts), when
   * the PKI is one CA and its CRL; undefined when there is no CRL or OpenSSL checks it (`options.crl`).
   */
  revocation: RevocationList | undefined;
}

export function loadTlsMaterial(pkiDir: string): TlsMaterial {
  // Every file checked first: a bad one fails the start (exit 2) or the reload (old set kept).
  validatePkiDir(pkiDir);
  const read = (name: string) => readFileSync(path.join(pkiDir, name));
  const crlPath = path.join(pkiDir, CRL_FILE);
  const crl = existsSync(crlPath) ? readFileSync(crlPath, 'utf8') : undefined;
  const ca = read('ca.crt');
  const revocation = crl ? gatewayRevocation(ca.toString('utf8'), crl) : undefined;
  const options: SecureServerOptions = {
    key: read('server.key'),
    cert: read('server.crt'),
    ca,
    // OpenSSL gets the CRL only when the gateway cannot check it itself (revocation.ts).
    ...(crl && !revocation ? { crl } : {}),
  };
  return { options, revoked: crl ? revokedSerials(crl) : new Set(), revocation };
}

export interface TlsReloader {
  reload(): boolean;
  stop(): void;
}

/**
 * Watches the PKI files (stat polling: robust on every filesystem and against editors that
 * replace files) and reloads on change; `reload()` is also what SIGHUP calls.
 */
export function watchTls(
  pkiDir: string,
  apply: (m: TlsMaterial) => void,
  onResult: (ok: boolean, err?: unknown) => void,
  intervalMs = 2000,
): TlsReloader {
  const files = ['server.key', 'server.crt', 'ca.crt', CRL_FILE].map((f) => path.join(pkiDir, f));
  const reload = (): boolean => {
    try {
      apply(loadTlsMaterial(pkiDir));
      onResult(true);
      return true;
    } catch (err) {
      // Keep serving with the old context: a half-written file must not take the gateway down.
      onResult(false, err);
      return false;
    }
  };
  let pending: NodeJS.Timeout | undefined;
  const onChange = (curr: Stats, prev: Stats) => {
    // watchFile also fires when a file is only read (atime): our own reload reads them.
    if (curr.mtimeMs === prev.mtimeMs && curr.size === prev.size && curr.ino === prev.ino) return;
    // Debounce: a key and its certificate are usually replaced together.
    if (pending) clearTimeout(pending);
    pending = setTimeout(reload, 200);
    pending.unref();
  };
  for (const f of files) watchFile(f, { interval: intervalMs, persistent: false }, onChange);
  return {
    reload,
    stop() {
      if (pending) clearTimeout(pending);
      for (const f of files) unwatchFile(f, onChange);
    },
  };
}

export function pkiExists(pkiDir: string): boolean {
  return ['ca.crt', 'server.crt', 'server.key'].every((f) => {
    try {
      return statSync(path.join(pkiDir, f)).isFile();
    } catch {
      return false;
    }
  });
}
