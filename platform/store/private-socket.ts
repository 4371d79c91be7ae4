/**
 * Where the embedded store's unix socket lives: `<dataDir>/run/dynamodb.sock`, in a directory
 * of mode 0700 owned by this account. The directory's mode is what keeps every other local user
 * out (connecting to a unix socket needs search permission on its directory), so an existing
 * directory is tightened to 0700 and one owned by someone else, or a symlink, is refused.
 *
 * Unix socket paths are limited to ~107 bytes; a data dir too deep for that gets a private
 * directory from mkdtemp (0700 by construction) under the system temp dir instead, which
 * `fleetgate users` cannot find (it then opens the store itself, as when nothing runs).
 */
import { chmodSync, lstatSync, mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** sun_path is 108 bytes on Linux, 104 on macOS; keep room for the terminating NUL. */
const MAX_SOCKET_PATH = 100;

export function privateRunDir(dataDir: string): string {
  return path.join(dataDir, 'run');
}

/** The socket path a running `fleetgate all`/`discovery` listens on for this data dir. */
export function embeddedSocketPath(dataDir: string): string {
  return path.join(privateRunDir(dataDir), 'dynamodb.sock');
}

/** Creates (or tightens) the private directory and returns the socket path to listen on. */
export function preparePrivateSocket(dataDir: string): string {
  const wanted = embeddedSocketPath(dataDir);
  if (Buffer.byteLength(wanted) > MAX_SOCKET_PATH) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fleetgate-'));
    return path.join(dir, 'dynamodb.sock');
  }
  const dir = privateRunDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} must be a directory (it is a symlink or a file)`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new Error(`${dir} belongs to uid ${st.uid}, not to this process (uid ${uid}): refusing to use it`);
  }
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
  return wanted;
}
