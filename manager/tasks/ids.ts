/**
 * Identifiers of the task system, in Elkeid's formats (docs/elkeid-protocol.md §4.5) so v1 clients
 * that parse or sort them keep working:
 *   task id        `<unixnano><6 letters>`  — sorts by creation time as a string (19 digits until 2286)
 *   token          20-char xid-like string   — what the agent echoes in its result record
 *   quick task id  `task-<xid>`
 * Randomness comes from crypto: a token is a capability (whoever knows it can post a result for
 * that subtask through a gateway), so it must not be guessable from time or a counter.
 */
import { randomBytes, randomInt } from 'node:crypto';

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
/** xid's alphabet: base32hex, lower case. */
const XID_ALPHABET = '0123456789abcdefghijklmnopqrstuv';

let lastNano = 0n;

/** Nanoseconds since the epoch, strictly increasing within this process. */
function unixNano(nowMs: number): bigint {
  const frac = process.hrtime.bigint() % 1_000_000n;
  let n = BigInt(Math.floor(nowMs)) * 1_000_000n + frac;
  if (n <= lastNano) n = lastNano + 1n;
  lastNano = n;
  return n;
}

/** Elkeid's task id: unix nanoseconds then six random lower-case letters. */
export function newTaskId(nowMs: number = Date.now()): string {
  let letters = '';
  for (let i = 0; i < 6; i++) letters += LETTERS[randomInt(26)];
  return `${unixNano(nowMs)}${letters}`;
}

export const TASK_ID_PATTERN = /^\d{19}[a-z]{6}$/;
export const TOKEN_PATTERN = /^[0-9a-v]{20}$/;
export const QUICK_TASK_ID_PATTERN = /^task-[0-9a-v]{20}$/;

/**
 * An xid-shaped string: 20 base32hex characters (100 bits). xid puts a timestamp, machine id
 * and counter in those bits; ours are all random (crypto), which keeps the shape Elkeid's tools
 * expect while making tokens unguessable.
 */
export function newToken(): string {
  const bytes = randomBytes(20);
  let out = '';
  for (let i = 0; i < 20; i++) out += XID_ALPHABET[bytes[i]! & 31];
  return out;
}

export function newQuickTaskId(): string {
  return `task-${newToken()}`;
}

export function isTaskId(v: unknown): v is string {
  return typeof v === 'string' && (TASK_ID_PATTERN.test(v) || QUICK_TASK_ID_PATTERN.test(v));
}
