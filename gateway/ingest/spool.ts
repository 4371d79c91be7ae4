/**
 * The durable spool: an append-only segment log on local disk that holds every accepted agent
 * record until it has been shipped to Kafka. The gateway appends and waits for the fsync, so a
 * record the agent's stream moved past survives a crash; a shipper reads in sequence order and
 * acks what Kafka has taken, which frees whole segments.
 *
 * On-disk layout (one directory):
 *
 *   segment-<first seq, 20 digits zero-padded>.log   the log, split into segments
 *   ack                                              last shipped seq, decimal text + "\n"
 *   ack.tmp                                          transient while the ack is replaced
 *
 * A segment is a plain concatenation of entries, each framed as (all little-endian):
 *
 *   u32 payload length | u32 CRC-32C | u16 key length | key (UTF-8, the AgentID) | payload
 *
 * The CRC covers key length, key and payload (bytes 8..end of the frame). Sequence numbers
 * are NOT stored per entry: an entry's seq is its segment's first seq (from the file name) plus
 * its index in the segment. Seqs start at 1, so an ack of 0 means "nothing shipped".
 *
 * Delivery is at-least-once: the ack is persisted only when the shipper calls `ack`, so entries
 * shipped after the last persisted ack are shipped again after a crash or restart (shipping
 * resumes at `pendingFrom()` = ack + 1). Consumers must tolerate duplicates.
 */

import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { crc32c } from '@node-rs/crc32';

export interface SpoolOptions {
  /** Roll to a new segment when the current one would grow past this (default 64 MiB). */
  segmentBytes?: number;
  /** Bound on the bytes of all segments on disk; past it `append` waits for `ack` (default 10 GiB). */
  maxBytes?: number;
  /** Group-commit window: appends arriving within it share one fsync (default 50 ms). */
  fsyncIntervalMs?: number;
  /** On open, count and skip corrupt data in non-last segments instead of throwing (default false). */
  skipCorrupt?: boolean;
  /**
   * After a failed write, fsync or ack (ENOSPC, EIO, …), wait this long before trying again
   * (default 1000 ms). Meanwhile appends wait, exactly as when the spool is at maxBytes.
   */
  retryMs?: number;
  /** How long `close` keeps retrying a blocked write before it gives up on those appends (default 10 s). */
  closeRetryMs?: number;
  /** Told of every failed disk operation (the spool itself retries; this is for logs and metrics). */
  onDiskError?: (event: SpoolDiskError) => void;
}

/** A disk operation of the spool that failed and will be retried. */
export interface SpoolDiskError {
  /** `write`: appending or fsyncing segments (appends wait); `ack`: persisting the ack position. */
  op: 'write' | 'ack';
  /** The errno code (ENOSPC, EIO, EDQUOT, …) or 'unknown'. */
  code: string;
  err: Error;
}

export interface SpoolEntry {
  key: string;
  value: Uint8Array;
}

export interface SpoolRecord {
  seq: number;
  key: string;
  value: Buffer;
}

export interface SpoolRecovery {
  /** Bytes cut from the end of the last segment (a torn tail from a crash). */
  truncatedBytes: number;
  /** Bytes of non-last segments skipped as corrupt (only with `skipCorrupt`). */
  skippedBytes: number;
  /** Segment files found. */
  segments: number;
}

export interface SpoolStats {
  /** Segment files on disk. */
  segments: number;
  /** Bytes of all segment files on disk. */
  bytes: number;
  /** Durable entries not yet acked. */
  entries: number;
  ackedSeq: number;
  nextSeq: number;
  /** Appends that had to wait for space (backpressure). */
  fullWaits: number;
  truncatedBytes: number;
  skippedBytes: number;
  /** Segment data syncs (group commit: far fewer than appends under load). */
  fsyncs: number;
  /** True while appends wait because writing the spool failed (disk full, I/O error); retried. */
  blocked: boolean;
  /** Failed disk operations so far (writes, fsyncs, ack writes); each was retried. */
  diskErrors: number;
  /** True while the ack position in memory is ahead of the one on disk (its write failed). */
  ackUnpersisted: boolean;
}

/** Thrown when the spool's data is damaged in a place a crash cannot explain. */
export class SpoolCorruptError extends Error {
  readonly file: string;
  readonly offset: number;
  constructor(file: string, offset: number, reason: string) {
    super(`spool corrupt: ${reason} in ${file} at offset ${offset}`);
    this.name = 'SpoolCorruptError';
    this.file = file;
    this.offset = offset;
  }
}

export class SpoolClosedError extends Error {
  constructor() {
    super('spool is closed');
    this.name = 'SpoolClosedError';
  }
}

const HEADER_BYTES = 10;
const MAX_KEY_BYTES = 0xffff;
const MAX_VALUE_BYTES = 0xffffffff;
/** One offset is remembered per this many entries; a read scans at most this many frames to its start. */
const INDEX_STRIDE = 256;
const READ_CHUNK = 1 << 20;
const SEGMENT_RE = /^segment-(\d{20})\.log$/;
const ACK_FILE = 'ack';
const ACK_TMP = 'ack.tmp';

const DEFAULTS = {
  segmentBytes: 64 * 2 ** 20,
  maxBytes: 10 * 2 ** 30,
  fsyncIntervalMs: 50,
  retryMs: 1000,
  closeRetryMs: 10_000,
};

interface Segment {
  firstSeq: number;
  file: string;
  /** Entries that are durable (fsynced) and readable. */
  count: number;
  /** End offset of the durable entries; reads never go past it. */
  dataEnd: number;
  /** Size of the file as written (includes written-but-unsynced bytes and skipped corrupt bytes). */
  fileBytes: number;
  /** index[k] = offset of entry k * INDEX_STRIDE. */
  index: number[];
}

interface PendingAppend {
  frames: Buffer[];
  bytes: number;
  firstSeq: number;
  resolve: (r: { firstSeq: number; lastSeq: number }) => void;
  reject: (err: Error) => void;
}

interface SpaceWaiter {
  frames: Buffer[];
  bytes: number;
  resolve: PendingAppend['resolve'];
  reject: PendingAppend['reject'];
}

export class Spool {
  readonly dir: string;
  readonly recovery: SpoolRecovery;
  readonly #segmentBytes: number;
  readonly #maxBytes: number;
  readonly #fsyncIntervalMs: number;
  readonly #retryMs: number;
  readonly #closeRetryMs: number;
  readonly #onDiskError: ((e: SpoolDiskError) => void) | undefined;

  /** Oldest first; the last one is the one appends go to (when `#active` is open). */
  #segments: Segment[];
  #active: FileHandle | null = null;
  /** Seq the next admitted append gets. */
  #nextSeq: number;
  #ackedSeq: number;
  /** Bytes of segment files plus bytes admitted but not yet written: what the bound is checked on. */
  #usedBytes: number;

  #pending: PendingAppend[] = [];
  #pendingSince = 0;
  #spaceWaiters: SpaceWaiter[] = [];
  #timer: NodeJS.Timeout | null = null;
  #flushLoop: Promise<void> | null = null;
  /** Serializes writes to the active segment with deleting it (ack) and closing. */
  #lock: Promise<void> = Promise.resolve();
  #ackChain: Promise<void> = Promise.resolve();
  /**
   * Set while writing failed (disk full, I/O error): the group that failed waits at the head of
   * `#pending`, new appends wait for space, and `#retryTimer` tries again.
   */
  #blocked: Error | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  /** After a failed write the active segment's tail is unknown: cut it back to the durable end first. */
  #tailDirty = false;
  /** A segment was created and the directory not yet fsynced since. */
  #dirSyncNeeded = false;
  /** The ack on disk; behind `#ackedSeq` while writing the ack fails (it is retried). */
  #persistedAck: number;
  #ackRetryTimer: NodeJS.Timeout | null = null;
  #diskErrors = 0;
  #closed = false;
  #closing: Promise<void> | null = null;
  /** Where the last read stopped, so sequential shipping does not rescan from the sparse index. */
  #readCursor: { segment: Segment; seq: number; offset: number } | null = null;

  #fullWaits = 0;
  #fsyncs = 0;

  private constructor(
    dir: string,
    opts: Required<Omit<SpoolOptions, 'skipCorrupt' | 'onDiskError'>> & {
      onDiskError: SpoolOptions['onDiskError'] | undefined;
    },
    state: { segments: Segment[]; ackedSeq: number; recovery: SpoolRecovery },
  ) {
    this.dir = dir;
    this.#segmentBytes = opts.segmentBytes;
    this.#maxBytes = opts.maxBytes;
    this.#fsyncIntervalMs = opts.fsyncIntervalMs;
    this.#retryMs = opts.retryMs;
    this.#closeRetryMs = opts.closeRetryMs;
    this.#onDiskError = opts.onDiskError;
    this.#segments = state.segments;
    this.#ackedSeq = state.ackedSeq;
    this.#persistedAck = state.ackedSeq;
    this.recovery = state.recovery;
    const last = state.segments.at(-1);
    // Fully acked segments may all have been deleted; the ack then remembers how far seqs got.
    this.#nextSeq = Math.max(state.ackedSeq + 1, last ? last.firstSeq + last.count : 1);
    this.#usedBytes = state.segments.reduce((n, s) => n + s.fileBytes, 0);
  }

  static async open(dir: string, opts: SpoolOptions = {}): Promise<Spool> {
    const o = {
      segmentBytes: positiveInt('segmentBytes', opts.segmentBytes ?? DEFAULTS.segmentBytes),
      maxBytes: positiveInt('maxBytes', opts.maxBytes ?? DEFAULTS.maxBytes),
      fsyncIntervalMs: nonNegative('fsyncIntervalMs', opts.fsyncIntervalMs ?? DEFAULTS.fsyncIntervalMs),
      retryMs: nonNegative('retryMs', opts.retryMs ?? DEFAULTS.retryMs),
      closeRetryMs: nonNegative('closeRetryMs', opts.closeRetryMs ?? DEFAULTS.closeRetryMs),
      onDiskError: opts.onDiskError,
    };
    // Records are agents' data: the spool is private to this account (0700 dir, 0600 files).
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // A leftover temp ack is from a crash before its rename: the old ack is still authoritative.
    await rm(path.join(dir, ACK_TMP), { force: true });
    const ackedSeq = await readAck(dir, opts.skipCorrupt === true);
    const { segments, recovery } = await recoverSegments(dir, opts.skipCorrupt === true);
    const spool = new Spool(dir, o, { segments, ackedSeq, recovery });
    // A crash between persisting an ack and deleting segments leaves fully acked segments behind.
    await spool.#deleteAckedSegments();
    await spool.#openActive();
    return spool;
  }

  // ---------------------------------------------------------------- append

  /**
   * Appends the entries in order and resolves once they are fsynced, with their seqs. Appends
   * resolve in call order. When the spool is at `maxBytes` the promise waits for `ack` to free
   * space (it never drops). A batch larger than `maxBytes` can never fit and is rejected.
   * While writing fails (disk full, I/O error) appends wait the same way and are retried.
   */
  append(entries: ReadonlyArray<SpoolEntry>): Promise<{ firstSeq: number; lastSeq: number }> {
    if (this.#closed || this.#closing) return Promise.reject(new SpoolClosedError());
    let frames: Buffer[];
    try {
      frames = entries.map(encodeFrame);
    } catch (err) {
      return Promise.reject(err);
    }
    const bytes = frames.reduce((n, f) => n + f.length, 0);
    if (bytes > this.#maxBytes) {
      return Promise.reject(
        new RangeError(`append of ${bytes} bytes can never fit in maxBytes ${this.#maxBytes}`),
      );
    }
    return new Promise((resolve, reject) => {
      const req = { frames, bytes, resolve, reject };
      // Earlier waiters go first even if this one would fit: seqs and resolution follow call order.
      if (this.#spaceWaiters.length === 0 && !this.#blocked && this.#fits(bytes)) {
        this.#admit(req);
      } else {
        this.#fullWaits++;
        this.#spaceWaiters.push(req);
      }
    });
  }

  /**
   * True while appends are waiting for space, when not even an empty entry would fit, or while
   * writing fails (disk full, I/O error): the gateway then reports itself not ready.
   */
  isFull(): boolean {
    return this.#blocked !== null || this.#spaceWaiters.length > 0 || !this.#fits(HEADER_BYTES);
  }

  /** The disk error appends are waiting on, or null. */
  get blockedBy(): Error | null {
    return this.#blocked;
  }

  #fits(bytes: number): boolean {
    return this.#usedBytes + bytes <= this.#maxBytes;
  }

  /** Reserves space and assigns seqs synchronously, so nothing can slip in between. */
  #admit(req: SpaceWaiter): void {
    this.#usedBytes += req.bytes;
    const firstSeq = this.#nextSeq;
    this.#nextSeq += req.frames.length;
    if (this.#pending.length === 0) this.#pendingSince = Date.now();
    this.#pending.push({ ...req, firstSeq });
    this.#scheduleFlush();
  }

  #wakeSpaceWaiters(): void {
    while (!this.#blocked && this.#spaceWaiters.length > 0 && this.#fits(this.#spaceWaiters[0]!.bytes)) {
      this.#admit(this.#spaceWaiters.shift()!);
    }
  }

  // ---------------------------------------------------------------- group commit

  /**
   * The first pending append starts the group-commit window; everything admitted before it ends
   * (or while the previous group's fsync runs) is written and synced together.
   */
  #scheduleFlush(): void {
    if (this.#timer || this.#retryTimer || this.#flushLoop || this.#pending.length === 0) return;
    const wait = Math.max(0, this.#pendingSince + this.#fsyncIntervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      // #commitGroup turns every failure into rejected appends; nothing is left to handle here.
      this.#startFlushLoop().catch(() => undefined);
    }, wait);
  }

  #startFlushLoop(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#flushLoop ??= this.#exclusive(async () => {
      const group = this.#pending.splice(0);
      if (group.length > 0) await this.#commitGroup(group);
    }).finally(() => {
      this.#flushLoop = null;
      this.#scheduleFlush();
    });
    return this.#flushLoop;
  }

  /**
   * Writes one group, fsyncs, then resolves its appends in order. When that fails the group goes
   * back to the head of the queue and is retried after `retryMs` (see #block): a full disk or an
   * I/O error is backpressure, never a lost or failed append.
   */
  async #commitGroup(group: PendingAppend[]): Promise<void> {
    try {
      await this.#writeGroup(group);
    } catch (cause) {
      this.#tailDirty = true;
      this.#pending.unshift(...group);
      this.#block(cause as Error);
      return;
    }
    if (this.#blocked) this.#unblock();
    for (const a of group) a.resolve({ firstSeq: a.firstSeq, lastSeq: a.firstSeq + a.frames.length - 1 });
  }

  #block(err: Error): void {
    this.#blocked = err;
    this.#reportDiskError('write', err);
    if (this.#closing) return; // close() drives the retries itself
    this.#retryTimer ??= setTimeout(() => {
      this.#retryTimer = null;
      this.#startFlushLoop().catch(() => undefined);
    }, this.#retryMs);
    // Not unref'd: appends are waiting on it, which is work this process still has to do.
  }

  #unblock(): void {
    this.#blocked = null;
    this.#wakeSpaceWaiters();
  }

  #reportDiskError(op: SpoolDiskError['op'], err: Error): void {
    this.#diskErrors++;
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
    try {
      this.#onDiskError?.({ op, code, err });
    } catch {
      // a listener's failure must not change what the spool does
    }
  }

  /**
   * After a failed write or fsync the active segment's tail past its durable end is unknown (and
   * a retried fsync can report success for pages it lost), so the tail is cut back to the durable
   * end and written again from there. A segment with no durable entry is removed and recreated.
   */
  async #recoverTail(): Promise<void> {
    const active = this.#active;
    this.#active = null;
    await active?.close().catch(() => undefined);
    const seg = this.#segments.at(-1);
    if (seg) {
      const file = path.join(this.dir, seg.file);
      if (seg.count === 0) {
        await unlink(file).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
        this.#segments.pop();
        if (this.#readCursor?.segment === seg) this.#readCursor = null;
        this.#dirSyncNeeded = true;
      } else {
        await truncateTail(file, seg.dataEnd);
        seg.fileBytes = seg.dataEnd;
        seg.index.length = Math.ceil(seg.count / INDEX_STRIDE);
        this.#active = await open(file, 'r+');
      }
    }
    this.#tailDirty = false;
  }

  async #writeGroup(group: PendingAppend[]): Promise<void> {
    if (this.#tailDirty) await this.#recoverTail();
    if (group.every((a) => a.frames.length === 0)) return;
    // A retried group may have been partly made durable already (a segment sealed mid-group):
    // those entries are on disk under their seqs and must not be written twice.
    // (Acked entries are durable too, even when their segment is already deleted.)
    const durableNext = this.#durableNextSeq();
    let run: Buffer[] = [];
    let runBytes = 0;
    for (const a of group) {
      for (let i = 0; i < a.frames.length; i++) {
        const frame = a.frames[i]!;
        const seq = a.firstSeq + i;
        if (seq < durableNext) continue;
        let seg = this.#segments.at(-1);
        if (seg && this.#active) {
          const size = seg.fileBytes + runBytes;
          // An entry larger than segmentBytes still goes alone into an otherwise empty segment.
          if (size > 0 && size + frame.length > this.#segmentBytes) {
            await this.#writeRun(seg, run, runBytes);
            await this.#sealActive(seg, seq);
            run = [];
            runBytes = 0;
          }
        }
        if (!seg || !this.#active) seg = await this.#createSegment(seq);
        const entryIndex = seq - seg.firstSeq;
        if (entryIndex % INDEX_STRIDE === 0) seg.index[entryIndex / INDEX_STRIDE] = seg.fileBytes + runBytes;
        run.push(frame);
        runBytes += frame.length;
      }
    }
    const seg = this.#segments.at(-1)!;
    await this.#writeRun(seg, run, runBytes);
    await this.#syncActive();
    // A new segment's directory entry must be durable too, or the acked data in it could vanish.
    if (this.#dirSyncNeeded) {
      await fsyncDir(this.dir);
      this.#dirSyncNeeded = false;
    }
    this.#commitDurable(seg, this.#nextSeqAfter(group));
  }

  #nextSeqAfter(group: PendingAppend[]): number {
    const last = group.at(-1)!;
    return last.firstSeq + last.frames.length;
  }

  async #writeRun(seg: Segment, run: Buffer[], runBytes: number): Promise<void> {
    if (runBytes === 0) return;
    let written = 0;
    let bufs = run;
    // writev normally writes everything; loop anyway rather than trust that for a file.
    while (written < runBytes) {
      const { bytesWritten } = await this.#active!.writev(bufs, seg.fileBytes + written);
      written += bytesWritten;
      if (written < runBytes) bufs = [Buffer.concat(run).subarray(written)];
    }
    seg.fileBytes += runBytes;
  }

  async #syncActive(): Promise<void> {
    await this.#active!.datasync();
    this.#fsyncs++;
  }

  /** Entries in `seg` up to (not including) `nextSeq` are durable: make them readable. */
  #commitDurable(seg: Segment, nextSeq: number): void {
    seg.count = nextSeq - seg.firstSeq;
    seg.dataEnd = seg.fileBytes;
  }

  /**
   * Syncs and closes a full segment before the next one is created: a later segment's existence
   * then proves every earlier one is complete, which is why recovery may treat a short or bad
   * non-last segment as corruption rather than a torn tail.
   */
  async #sealActive(seg: Segment, nextSeq: number): Promise<void> {
    await this.#syncActive();
    await this.#active!.close();
    this.#active = null;
    this.#commitDurable(seg, nextSeq);
  }

  async #createSegment(firstSeq: number): Promise<Segment> {
    const file = segmentName(firstSeq);
    this.#active = await open(path.join(this.dir, file), 'wx', 0o600);
    this.#dirSyncNeeded = true;
    const seg: Segment = { firstSeq, file, count: 0, dataEnd: 0, fileBytes: 0, index: [] };
    this.#segments.push(seg);
    return seg;
  }

  async #openActive(): Promise<void> {
    const last = this.#segments.at(-1);
    if (last) this.#active = await open(path.join(this.dir, last.file), 'r+');
  }

  /** Runs `fn` after everything queued on the lock; the lock survives `fn` failing. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn);
    this.#lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  // ---------------------------------------------------------------- read / ack

  /** The first seq still on disk (acked entries of a partly shipped segment included). */
  firstSeq(): number {
    return this.#segments[0]?.firstSeq ?? this.#nextSeq;
  }

  /** The seq the next append gets. */
  nextSeq(): number {
    return this.#nextSeq;
  }

  /** Where shipping resumes: the persisted ack + 1 (at-least-once, see the file comment). */
  pendingFrom(): number {
    return Math.max(this.#ackedSeq + 1, this.firstSeq());
  }

  /**
   * Up to `maxEntries` durable entries with seq >= fromSeq, in order. The first entry's seq is
   * greater than fromSeq when fromSeq is already deleted (acked) or was skipped as corrupt; use
   * each entry's `seq`. `maxBytes` bounds the sum of key and value bytes, except that the first
   * entry is always returned so the shipper progresses past an entry larger than its budget.
   */
  async read(
    fromSeq: number,
    maxEntries: number,
    maxBytes = Number.POSITIVE_INFINITY,
  ): Promise<SpoolRecord[]> {
    const out: SpoolRecord[] = [];
    let used = 0;
    let seq = fromSeq;
    let full = maxEntries <= 0;
    for (const seg of this.#segmentsFrom(fromSeq)) {
      if (full) break;
      // Snapshot: a concurrent commit may grow the segment, but only this much is known durable.
      const count = seg.count;
      const end = seg.dataEnd;
      seq = Math.max(seq, seg.firstSeq);
      if (seq >= seg.firstSeq + count) continue;
      let fh: FileHandle;
      try {
        fh = await open(path.join(this.dir, seg.file), 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // acked and deleted meanwhile
        throw err;
      }
      try {
        const start = this.#readStart(seg, seq);
        const reader = new FrameReader(fh, start.offset, end);
        let at = start.seq;
        let offset = start.offset;
        while (at < seg.firstSeq + count) {
          const f = await reader.next();
          if (f === null || !f.ok) {
            throw new SpoolCorruptError(seg.file, f?.offset ?? offset, f?.reason ?? 'unexpected end');
          }
          if (at >= seq) {
            const bytes = f.key.length + f.value.length;
            if (out.length > 0 && used + bytes > maxBytes) {
              full = true;
              break;
            }
            out.push({ seq: at, key: f.key.toString('utf8'), value: Buffer.from(f.value) });
            used += bytes;
          }
          at++;
          offset = reader.position;
          if (out.length >= maxEntries) {
            full = true;
            break;
          }
        }
        // `offset` is where entry `at` starts: the next sequential read continues from there.
        this.#readCursor = { segment: seg, seq: at, offset };
        seq = at;
      } finally {
        await fh.close();
      }
    }
    return out;
  }

  /** Segments that may hold seqs >= seq, oldest first. */
  *#segmentsFrom(seq: number): Generator<Segment> {
    let lo = 0;
    let hi = this.#segments.length - 1;
    let start = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.#segments[mid]!.firstSeq <= seq) {
        start = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    // Iterate a copy: ack may delete segments from the live array while a read awaits.
    yield* this.#segments.slice(start);
  }

  /**
   * Where to start scanning for `seq` in `seg`: the last read's end when that is at or before it
   * and no further back than the nearest index point (the usual sequential shipping case), else
   * the index point.
   */
  #readStart(seg: Segment, seq: number): { seq: number; offset: number } {
    const k = Math.floor((seq - seg.firstSeq) / INDEX_STRIDE);
    const indexed = { seq: seg.firstSeq + k * INDEX_STRIDE, offset: seg.index[k]! };
    const c = this.#readCursor;
    if (c && c.segment === seg && c.seq <= seq && c.seq >= indexed.seq) {
      return { seq: c.seq, offset: c.offset };
    }
    return indexed;
  }

  /**
   * Everything <= uptoSeq has been shipped. Persists the ack (temp file, fsync, rename, dir
   * fsync) before deleting segments, so a crash in between only leaves deletable files; entries
   * shipped but not yet acked are shipped again after a restart (at-least-once).
   */
  ack(uptoSeq: number): Promise<void> {
    if (!Number.isSafeInteger(uptoSeq) || uptoSeq < 0) {
      return Promise.reject(new RangeError(`ack: bad seq ${uptoSeq}`));
    }
    const durable = this.#durableNextSeq() - 1;
    if (uptoSeq > durable) {
      return Promise.reject(new RangeError(`ack: seq ${uptoSeq} is past the last durable seq ${durable}`));
    }
    const run = this.#ackChain.then(async () => {
      if (this.#closed) throw new SpoolClosedError();
      if (uptoSeq > this.#ackedSeq) {
        // Shipping moves on even when the ack cannot be written (disk full): deleting fully
        // shipped segments is safe without it (a restart just finds them gone) and is what frees
        // the space; only a crash before the ack is written re-ships the partly shipped rest.
        this.#ackedSeq = uptoSeq;
        await this.#persistAck();
      }
      await this.#exclusive(() => this.#deleteAckedSegments()).catch((err: Error) =>
        this.#reportDiskError('ack', err),
      );
    });
    this.#ackChain = run.catch(() => undefined);
    return run;
  }

  /** Writes `#ackedSeq` as the ack file; on failure reports it and tries again after retryMs. */
  async #persistAck(): Promise<void> {
    const seq = this.#ackedSeq;
    if (seq <= this.#persistedAck) return;
    try {
      await writeAck(this.dir, seq);
      this.#persistedAck = Math.max(this.#persistedAck, seq);
    } catch (err) {
      await rm(path.join(this.dir, ACK_TMP), { force: true }).catch(() => undefined);
      this.#reportDiskError('ack', err as Error);
      this.#ackRetryTimer ??= setTimeout(() => {
        this.#ackRetryTimer = null;
        if (this.#closed) return;
        this.#ackChain = this.#ackChain.then(() => this.#persistAck());
      }, this.#retryMs);
      this.#ackRetryTimer.unref();
    }
  }

  #durableNextSeq(): number {
    const last = this.#segments.at(-1);
    return Math.max(this.#ackedSeq + 1, last ? last.firstSeq + last.count : 1);
  }

  /** Deletes leading segments whose entries are all acked; called with the lock held (or at open). */
  async #deleteAckedSegments(): Promise<void> {
    let freed = false;
    for (;;) {
      const seg = this.#segments[0];
      if (!seg || seg.firstSeq + seg.count - 1 > this.#ackedSeq) break;
      const isActive = this.#segments.length === 1;
      if (isActive) {
        // The active segment goes too when fully acked (and nothing unsynced is in it), so a
        // maxBytes below segmentBytes cannot deadlock; the next append creates a fresh one. An
        // empty one is kept unless it starts at or before the ack (stale: appends get ack + 1).
        if (seg.fileBytes !== seg.dataEnd) break;
        if (seg.count === 0 && seg.firstSeq > this.#ackedSeq) break;
        await this.#active?.close();
        this.#active = null;
      }
      await unlink(path.join(this.dir, seg.file)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      this.#segments.shift();
      this.#usedBytes -= seg.fileBytes;
      if (this.#readCursor?.segment === seg) this.#readCursor = null;
      freed = true;
    }
    if (freed) this.#wakeSpaceWaiters();
  }

  // ---------------------------------------------------------------- stats / close

  stats(): SpoolStats {
    let bytes = 0;
    let entries = 0;
    for (const s of this.#segments) {
      bytes += s.fileBytes;
      entries += Math.max(0, s.firstSeq + s.count - Math.max(s.firstSeq, this.#ackedSeq + 1));
    }
    return {
      segments: this.#segments.length,
      bytes,
      entries,
      ackedSeq: this.#ackedSeq,
      nextSeq: this.#nextSeq,
      fullWaits: this.#fullWaits,
      truncatedBytes: this.recovery.truncatedBytes,
      skippedBytes: this.recovery.skippedBytes,
      fsyncs: this.#fsyncs,
      blocked: this.#blocked !== null,
      diskErrors: this.#diskErrors,
      ackUnpersisted: this.#persistedAck < this.#ackedSeq,
    };
  }

  /**
   * Writes and fsyncs everything admitted, then closes. Appends still waiting for space cannot
   * complete without a shipper and are rejected with SpoolClosedError.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const w of this.#spaceWaiters.splice(0)) w.reject(new SpoolClosedError());
      await this.#flushForClose();
      if (this.#ackRetryTimer) clearTimeout(this.#ackRetryTimer);
      this.#ackRetryTimer = null;
      await this.#ackChain;
      await this.#persistAck();
      await this.#exclusive(async () => {
        this.#closed = true;
        await this.#active?.close();
        this.#active = null;
      });
    })();
    return this.#closing;
  }

  /**
   * Writes everything admitted; while writing fails (disk full) it retries for up to
   * closeRetryMs, then rejects what could not be written (the caller logs how many).
   */
  async #flushForClose(): Promise<void> {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const deadline = Date.now() + this.#closeRetryMs;
    while (this.#pending.length > 0 || this.#flushLoop) {
      await this.#startFlushLoop();
      if (!this.#blocked) continue;
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise((r) => setTimeout(r, Math.min(this.#retryMs, left)));
    }
    const blocked = this.#blocked;
    if (!blocked) return;
    const err = new Error(`spool closed while writing failed: ${blocked.message}`, { cause: blocked });
    for (const a of this.#pending.splice(0)) a.reject(err);
  }
}

// ------------------------------------------------------------------ framing

function encodeFrame(e: SpoolEntry): Buffer {
  const keyBytes = Buffer.byteLength(e.key, 'utf8');
  if (keyBytes > MAX_KEY_BYTES) {
    throw new RangeError(`spool key of ${keyBytes} bytes exceeds ${MAX_KEY_BYTES}`);
  }
  if (e.value.length > MAX_VALUE_BYTES) {
    throw new RangeError(`spool value of ${e.value.length} bytes is too large`);
  }
  const frame = Buffer.allocUnsafe(HEADER_BYTES + keyBytes + e.value.length);
  frame.writeUInt32LE(e.value.length, 0);
  frame.writeUInt16LE(keyBytes, 8);
  frame.write(e.key, HEADER_BYTES, 'utf8');
  frame.set(e.value, HEADER_BYTES + keyBytes);
  frame.writeUInt32LE(crc32c(frame.subarray(8)) >>> 0, 4);
  return frame;
}

type FrameResult =
  | { ok: true; offset: number; size: number; key: Buffer; value: Buffer }
  | { ok: false; offset: number; reason: string };

/**
 * Reads frames sequentially from [start, end) of a file in large chunks. Returned key/value are
 * views of a chunk that is never reused, so they stay valid; a frame is checked (length within
 * range, CRC) before it is returned.
 */
class FrameReader {
  readonly #fh: FileHandle;
  readonly #end: number;
  #pos: number;
  #buf: Buffer = Buffer.alloc(0);
  #bufStart: number;

  constructor(fh: FileHandle, start: number, end: number) {
    this.#fh = fh;
    this.#pos = start;
    this.#bufStart = start;
    this.#end = end;
  }

  /** File offset of the next frame. */
  get position(): number {
    return this.#pos;
  }

  /** The next frame, a problem (incomplete or bad frame at `offset`), or null at `end`. */
  async next(): Promise<FrameResult | null> {
    const offset = this.#pos;
    if (offset >= this.#end) return null;
    if (!(await this.#ensure(HEADER_BYTES))) return { ok: false, offset, reason: 'incomplete entry header' };
    let o = offset - this.#bufStart;
    const valueLen = this.#buf.readUInt32LE(o);
    const crc = this.#buf.readUInt32LE(o + 4);
    const keyLen = this.#buf.readUInt16LE(o + 8);
    const size = HEADER_BYTES + keyLen + valueLen;
    // Checked before reading so a garbage length never turns into a huge allocation.
    if (offset + size > this.#end || !(await this.#ensure(size))) {
      return { ok: false, offset, reason: `incomplete entry (${size} bytes framed)` };
    }
    o = offset - this.#bufStart;
    if (crc32c(this.#buf.subarray(o + 8, o + size)) >>> 0 !== crc) {
      return { ok: false, offset, reason: 'CRC mismatch' };
    }
    this.#pos = offset + size;
    const key = this.#buf.subarray(o + HEADER_BYTES, o + HEADER_BYTES + keyLen);
    const value = this.#buf.subarray(o + HEADER_BYTES + keyLen, o + size);
    return { ok: true, offset, size, key, value };
  }

  /** Makes the buffer cover [pos, pos + n); false if the file ends first. */
  async #ensure(n: number): Promise<boolean> {
    const have = this.#bufStart + this.#buf.length - this.#pos;
    if (have >= n) return true;
    if (this.#pos + n > this.#end) return false;
    const size = Math.min(Math.max(n, READ_CHUNK), this.#end - this.#pos);
    const next = Buffer.allocUnsafe(size);
    this.#buf.copy(next, 0, this.#pos - this.#bufStart);
    let filled = have;
    while (filled < size) {
      const { bytesRead } = await this.#fh.read(next, filled, size - filled, this.#pos + filled);
      if (bytesRead === 0) break; // file shorter than its recorded size
      filled += bytesRead;
    }
    this.#buf = next.subarray(0, filled);
    this.#bufStart = this.#pos;
    return filled >= n;
  }
}

// ------------------------------------------------------------------ recovery

/**
 * Scans every segment (validating every CRC, building the sparse index). The last segment may
 * end in a torn write from a crash: it is truncated at its first incomplete or bad entry. Any
 * damage in an earlier segment cannot come from a crash (segments are sealed with an fsync
 * before the next is created), so it is an error unless `skipCorrupt`.
 */
async function recoverSegments(
  dir: string,
  skipCorrupt: boolean,
): Promise<{ segments: Segment[]; recovery: SpoolRecovery }> {
  const names = (await readdir(dir))
    .map((file) => ({ file, m: SEGMENT_RE.exec(file) }))
    .filter((x): x is { file: string; m: RegExpExecArray } => x.m !== null)
    .map(({ file, m }) => ({ file, firstSeq: Number(m[1]) }))
    .sort((a, b) => a.firstSeq - b.firstSeq);
  const recovery: SpoolRecovery = { truncatedBytes: 0, skippedBytes: 0, segments: names.length };
  const segments: Segment[] = [];
  for (let i = 0; i < names.length; i++) {
    const { file, firstSeq } = names[i]!;
    if (!Number.isSafeInteger(firstSeq)) throw new SpoolCorruptError(file, 0, 'sequence number out of range');
    const next = names[i + 1];
    const isLast = next === undefined;
    const filePath = path.join(dir, file);
    const scan = await scanSegment(filePath);
    const seg: Segment = {
      firstSeq,
      file,
      count: scan.count,
      dataEnd: scan.validEnd,
      fileBytes: scan.fileBytes,
      index: scan.index,
    };
    if (isLast) {
      if (scan.problem) await truncateTail(filePath, scan.validEnd);
      recovery.truncatedBytes += scan.fileBytes - scan.validEnd;
      seg.fileBytes = scan.validEnd;
    } else {
      const expected = next.firstSeq - firstSeq;
      const problem =
        scan.problem ??
        (scan.count !== expected
          ? {
              offset: scan.validEnd,
              reason: `${scan.count} entries where the next segment implies ${expected}`,
            }
          : null);
      if (problem) {
        if (!skipCorrupt) throw new SpoolCorruptError(file, problem.offset, problem.reason);
        recovery.skippedBytes += scan.fileBytes - scan.validEnd;
        // Seqs beyond what the next segment's name allows would collide: drop them.
        if (seg.count > expected) seg.count = expected;
      }
    }
    segments.push(seg);
  }
  return { segments, recovery };
}

async function scanSegment(filePath: string): Promise<{
  count: number;
  validEnd: number;
  fileBytes: number;
  index: number[];
  problem: { offset: number; reason: string } | null;
}> {
  const fh = await open(filePath, 'r');
  try {
    const fileBytes = (await fh.stat()).size;
    const reader = new FrameReader(fh, 0, fileBytes);
    const index: number[] = [];
    let count = 0;
    for (;;) {
      const f = await reader.next();
      if (f === null) return { count, validEnd: fileBytes, fileBytes, index, problem: null };
      if (!f.ok) return { count, validEnd: f.offset, fileBytes, index, problem: f };
      if (count % INDEX_STRIDE === 0) index.push(f.offset);
      count++;
    }
  } finally {
    await fh.close();
  }
}

async function truncateTail(filePath: string, length: number): Promise<void> {
  const fh = await open(filePath, 'r+');
  try {
    await fh.truncate(length);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

// ------------------------------------------------------------------ ack file and helpers

async function readAck(dir: string, skipCorrupt: boolean): Promise<number> {
  let text: string;
  try {
    text = await readFile(path.join(dir, ACK_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const seq = Number(text.trim());
  if (/^\d+\n?$/.test(text) && Number.isSafeInteger(seq)) return seq;
  // The ack is replaced atomically, so garbage means damage. Skipping re-ships everything
  // still on disk: duplicates, never loss.
  if (skipCorrupt) return 0;
  throw new SpoolCorruptError(ACK_FILE, 0, `unreadable ack ${JSON.stringify(text.slice(0, 40))}`);
}

async function writeAck(dir: string, seq: number): Promise<void> {
  const tmp = path.join(dir, ACK_TMP);
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${seq}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path.join(dir, ACK_FILE));
  await fsyncDir(dir);
}

/** Makes creates, renames and deletes in `dir` durable. */
async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function segmentName(firstSeq: number): string {
  return `segment-${String(firstSeq).padStart(20, '0')}.log`;
}

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new RangeError(`spool ${name} must be a positive integer, got ${v}`);
  }
  return v;
}

function nonNegative(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`spool ${name} must be >= 0, got ${v}`);
  return v;
}
