/**
 * Elkeid's AK/SK request signing, byte-compatible with the Go implementation that the manager,
 * AgentCenter and ServiceDiscovery share, so Elkeid components and ours can call each other.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { HttpRequest } from './types.js';

/**
 * Elkeid joins the parts with the two characters `\` `n` (a Go raw string literal), not a
 * newline; a "fixed" separator would break every signature exchanged with Elkeid.
 */
const SEPARATOR = '\\n';

const DEFAULT_WINDOW_SECONDS = 60;
const DEFAULT_REPLAY_CACHE_SIZE = 100_000;

export interface SignRequestInput {
  method: string;
  /** Without the query string. */
  path: string;
  /** Raw, without the leading '?', exactly as it will be sent. */
  query: string;
  body: string | Uint8Array;
  ak: string;
  sk: string;
  /** Clock in milliseconds; defaults to Date.now. */
  now?: () => number;
}

export type VerifyResult = { ok: true; ak: string } | { ok: false; reason: string };

export interface Verifier {
  verify(req: HttpRequest): VerifyResult;
  /**
   * The checks that need no body (headers present, timestamp in the window, AK known): run before
   * a body is read, so an unsigned request never gets its body buffered (http/uws-adapter.ts).
   */
  precheck(headers: HttpRequest['headers']): VerifyResult;
}

export interface VerifierOptions {
  /** ak -> sk; AKs are matched case-insensitively. */
  keys: Map<string, string>;
  /** A request is refused once |now - TimeStamp| reaches this. Defaults to 60, Elkeid's value. */
  windowSeconds?: number;
  /** Clock in milliseconds; defaults to Date.now. */
  now?: () => number;
  /** Most signatures remembered for replay refusal; the oldest is forgotten first. */
  replayCacheSize?: number;
}

/** Elkeid trims whitespace and exactly one trailing '/', so `/command/` signs as `/command`. */
function canonicalPath(path: string): string {
  const trimmed = path.trim();
  return trimmed.endsWith('/') ? trimmed.slice(0, -1) : trimmed;
}

/** The body's part of a signature: hex SHA-256, or '' for an empty body (as Elkeid signs it). */
export function bodyDigest(body: string | Uint8Array): string {
  if (body.length === 0) return '';
  return createHash('sha256').update(body).digest('hex');
}

function signDigest(
  sk: string,
  method: string,
  path: string,
  query: string,
  ak: string,
  timestamp: string,
  digest: string,
): string {
  const message = [method, canonicalPath(path), query, ak, timestamp, digest].join(SEPARATOR);
  return createHmac('sha256', sk).update(message).digest('hex');
}

function sign(
  sk: string,
  method: string,
  path: string,
  query: string,
  ak: string,
  timestamp: string,
  body: string | Uint8Array,
): string {
  return signDigest(sk, method, path, query, ak, timestamp, bodyDigest(body));
}

/** The three headers that authenticate a request to an Elkeid-compatible API. */
export function signRequest(input: SignRequestInput): Record<string, string> {
  const timestamp = String(Math.floor((input.now ?? Date.now)() / 1000));
  return {
    AccessKey: input.ak,
    TimeStamp: timestamp,
    Signature: sign(input.sk, input.method, input.path, input.query, input.ak, timestamp, input.body),
  };
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Go's strconv.ParseInt(s, 10, 64), with its error text, since Elkeid puts that text in the reason. */
function parseInt64(s: string): { ok: true; value: number } | { ok: false; detail: string } {
  const quoted = JSON.stringify(s);
  if (!/^[+-]?\d+$/.test(s))
    return { ok: false, detail: `strconv.ParseInt: parsing ${quoted}: invalid syntax` };
  const big = BigInt(s);
  if (big < INT64_MIN || big > INT64_MAX) {
    return { ok: false, detail: `strconv.ParseInt: parsing ${quoted}: value out of range` };
  }
  // Precision lost above 2^53 cannot matter: such a value is far outside any window.
  return { ok: true, value: Number(big) };
}

/**
 * Remembers accepted signatures until their TimeStamp leaves the window: after that the timestamp
 * check refuses them anyway, so keeping them longer would only cost memory. Map insertion order
 * gives the eviction order; expired entries are dropped from the front as they are met.
 */
class ReplayCache {
  readonly #entries = new Map<string, number>(); // signature -> expiry (ms)
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** False if `signature` is still remembered; otherwise remembers it and returns true. */
  admit(signature: string, expiresAt: number, now: number): boolean {
    for (const [key, expiry] of this.#entries) {
      if (expiry > now) break;
      this.#entries.delete(key);
    }
    const expiry = this.#entries.get(signature);
    if (expiry !== undefined && expiry > now) return false;
    this.#entries.delete(signature);
    this.#entries.set(signature, expiresAt);
    if (this.#entries.size > this.#capacity) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    return true;
  }
}

export function createVerifier(options: VerifierOptions): Verifier {
  const windowSeconds = options.windowSeconds ?? DEFAULT_WINDOW_SECONDS;
  const capacity = options.replayCacheSize ?? DEFAULT_REPLAY_CACHE_SIZE;
  if (!(windowSeconds > 0)) throw new Error(`AK/SK windowSeconds must be positive, got ${windowSeconds}`);
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new Error(`AK/SK replayCacheSize must be a positive integer, got ${capacity}`);
  }
  const now = options.now ?? Date.now;
  // Elkeid lower-cases configured AKs and incoming ones alike, so AKs are case-insensitive.
  const keys = new Map<string, string>();
  for (const [ak, sk] of options.keys) keys.set(ak.toLowerCase(), sk);
  const replays = new ReplayCache(capacity);

  type HeadCheck =
    | { ok: true; ak: string; sk: string; ts: number; signature: string }
    | { ok: false; reason: string };

  /** Everything but the signature, from the headers alone (Elkeid's order and reasons). */
  function checkHead(headers: HttpRequest['headers']): HeadCheck {
    const ak = headers.accesskey;
    if (!ak) return { ok: false, reason: 'header missed: AccessKey' };
    const signature = headers.signature;
    if (!signature) return { ok: false, reason: 'header missed: Signature' };
    const timestamp = headers.timestamp;
    if (!timestamp) return { ok: false, reason: 'header missed: TimeStamp' };

    const ts = parseInt64(timestamp);
    if (!ts.ok) return { ok: false, reason: `TimeStamp Error ${ts.detail}` };
    // Whole seconds, as Go's time.Now().Unix(), so the window edge falls where Elkeid's does.
    if (Math.abs(Math.floor(now() / 1000) - ts.value) >= windowSeconds) {
      return { ok: false, reason: 'timestamp error' };
    }
    const sk = keys.get(ak.toLowerCase());
    if (sk === undefined) return { ok: false, reason: 'User not exist' };
    return { ok: true, ak, sk, ts: ts.value, signature };
  }

  return {
    precheck(headers) {
      const head = checkHead(headers);
      return head.ok ? { ok: true, ak: head.ak.toLowerCase() } : head;
    },
    verify(req: HttpRequest): VerifyResult {
      const head = checkHead(req.headers);
      if (!head.ok) return head;
      const { ak, sk, signature } = head;
      const timestamp = req.headers.timestamp!;
      // The AK as sent is what the client signed; the body's hash may have been taken as it streamed in.
      const digest = req.bodySha256 ?? bodyDigest(req.body);
      const expected = Buffer.from(signDigest(sk, req.method, req.path, req.query, ak, timestamp, digest));
      const given = Buffer.from(signature);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return { ok: false, reason: 'signature error' };
      }

      // Checked only after the signature holds, so forged requests cannot fill the cache.
      if (!replays.admit(signature, (head.ts + windowSeconds) * 1000, now())) {
        return { ok: false, reason: 'signature replayed' };
      }
      return { ok: true, ak: ak.toLowerCase() };
    },
  };
}

/**
 * Parses `ak:sk,ak2:sk2` (the env form of the key list). Throws on a malformed pair; the error
 * names the pair by position only, since the text may contain a secret key.
 */
export function parseAkskList(s: string): Map<string, string> {
  const keys = new Map<string, string>();
  const pairs = s.split(',');
  for (const [i, raw] of pairs.entries()) {
    const pair = raw.trim();
    // Tolerates a trailing comma or an empty list, both easy to produce when templating env files.
    if (pair === '' && (i === pairs.length - 1 || pairs.length === 1)) continue;
    const colon = pair.indexOf(':');
    const ak = colon < 0 ? '' : pair.slice(0, colon).trim().toLowerCase();
    const sk = colon < 0 ? '' : pair.slice(colon + 1).trim();
    if (ak === '' || sk === '') {
      throw new Error(`invalid AK/SK list: entry ${i + 1} is not of the form "ak:sk"`);
    }
    if (keys.has(ak)) throw new Error(`invalid AK/SK list: entry ${i + 1} repeats access key "${ak}"`);
    keys.set(ak, sk);
  }
  return keys;
}
