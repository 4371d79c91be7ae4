/**
 * One process per spool directory: two writers would interleave segments and acks.
 *
 * The lock is a Unix domain socket the owner listens on, `<dir>/LOCK.sock`. Node has no
 * flock(2), but a listening socket is released by the kernel the same way: when the owner dies
 * (kill -9, crash, OOM kill) its socket closes, a connect to the path is refused at once, and
 * the next gateway or `fleetgate spool` takes the lock over. No pid is trusted for liveness (a
 * dead gateway's pid can be a zombie, or reused, e.g. in a container). The owner answers each
 * connection with its pid, so a refusal can still say which process holds the spool.
 *
 * Taking over a stale socket file (its owner died) is done inside a `LOCK.takeover` directory
 * made with mkdir (atomic), after probing again: a live socket file cannot be replaced by
 * another process meanwhile (binding an existing path fails), so only a dead one is removed.
 * When `<dir>/LOCK.sock` is longer than a socket path may be (107 bytes), Linux's abstract
 * socket namespace is used instead, named from the directory's device and inode (it has no
 * file and vanishes with its owner).
 */
import { mkdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Spool, type SpoolOptions } from './spool.js';

export class SpoolLockedError extends Error {}

const SOCKET = 'LOCK.sock';
const TAKEOVER = 'LOCK.takeover';
const MAX_SOCKET_PATH = 107;
/** A takeover directory older than this was left by a process that died inside it. */
const TAKEOVER_STALE_MS = 5000;

/** The address the lock of `dir` listens on. */
export function lockAddress(dir: string): { address: string; abstract: boolean } {
  const file = path.resolve(dir, SOCKET);
  if (Buffer.byteLength(file) <= MAX_SOCKET_PATH) return { address: file, abstract: false };
  const st = statSync(dir);
  return { address: `\0fleetgate-spool-${st.dev}-${st.ino}`, abstract: true };
}

/** Connects to the lock: the owner's pid when it is alive, undefined when nobody listens. */
function probe(address: string): Promise<{ pid: string } | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(address);
    let data = '';
    socket.setTimeout(2000, () => socket.destroy());
    socket.on('data', (d) => {
      data += String(d);
    });
    socket.on('connect', () => {
      socket.on('close', () => resolve({ pid: data.trim() || 'unknown' }));
    });
    socket.on('error', () => resolve(undefined));
  });
}

function listen(address: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((c) => c.end(`${process.pid}\n`));
    server.once('error', reject);
    server.listen(address, () => {
      server.off('error', reject);
      // The lock must not keep an otherwise finished process alive.
      server.unref();
      resolve(server);
    });
  });
}

/** Removes a stale socket file inside the takeover section; false if another process is in it. */
async function takeOverStale(dir: string, address: string): Promise<boolean> {
  const mutex = path.join(dir, TAKEOVER);
  try {
    mkdirSync(mutex);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const age = Date.now() - statSync(mutex, { throwIfNoEntry: false })!.mtimeMs;
    if (Number.isFinite(age) && age > TAKEOVER_STALE_MS) rmdirSync(mutex);
    return false;
  }
  try {
    if ((await probe(address)) === undefined) {
      try {
        unlinkSync(address);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return true;
  } finally {
    rmdirSync(mutex);
  }
}

/** Takes the lock of `dir`; resolves with the function that releases it. */
export async function lockSpoolDir(dir: string): Promise<() => Promise<void>> {
  const { address, abstract } = lockAddress(dir);
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      const server = await listen(address);
      return () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
        });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
    const owner = await probe(address);
    if (owner) throw new SpoolLockedError(`spool ${dir} is in use by process ${owner.pid}; stop it first`);
    // Nobody listens: the socket file of a process that died. (An abstract name never lingers.)
    if (!abstract && (await takeOverStale(dir, address))) continue;
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 40));
  }
  throw new SpoolLockedError(`could not lock spool ${dir}`);
}

/** Opens a spool for exclusive use; closing the returned spool releases the lock. */
export async function openSpoolExclusive(dir: string, opts?: SpoolOptions): Promise<Spool> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const release = await lockSpoolDir(dir);
  try {
    const spool = await Spool.open(dir, opts);
    const close = spool.close.bind(spool);
    spool.close = async () => {
      try {
        await close();
      } finally {
        await release();
      }
    };
    return spool;
  } catch (err) {
    await release();
    throw err;
  }
}
