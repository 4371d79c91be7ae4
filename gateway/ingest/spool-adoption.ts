/**
 * Adoption of orphaned spools. A gateway process ships only its own spool directory; when the
 * processes on a host change (`--processes 4` → 2, or to or from 1), the directories of the
 * processes that no longer run would keep their records for ever. At start each process adopts
 * the directories the layout gives it (process-slot.ts, `orphanedSpoolDirs`): it takes the
 * directory's spool lock — the socket the kernel releases when its owner dies, so two processes
 * never ship one directory and a process still running keeps its own — opens it, logs what it
 * holds, and ships it to Kafka through the pipeline (`IngestPipeline.shipAdopted`: in order, each
 * range acked once Kafka has it, as the process's own spool). A directory in use is tried again
 * every `retryMs` until it is free. A drained directory of a removed process is deleted; one that
 * still holds records (the process drained first, or no Kafka is configured) never is.
 */
import { readdir, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../platform/obs/logger.js';
import type { Metrics } from '../../platform/obs/metrics.js';
import type { IngestPipeline } from './pipeline.js';
import { Spool } from './spool.js';
import { lockSpoolDir, SpoolLockedError } from './spool-lock.js';

/** A spool directory some other process wrote and none may be shipping now. */
export interface OrphanedSpool {
  dir: string;
  /**
   * Delete the directory once drained: true for a removed process's own directory, false for
   * one that is also the parent of others (the single-process spool).
   */
  removeWhenDrained: boolean;
}

export interface AdoptionOptions {
  orphans: OrphanedSpool[];
  pipeline: IngestPipeline;
  logger: Logger;
  metrics: Metrics;
  /** How often a directory whose lock a live process holds is tried again (default 30 s). */
  retryMs?: number;
}

export interface SpoolAdoption {
  /** Adopts nothing more (a drain); the directory being shipped stops when the pipeline closes. */
  stop(): void;
  /** Resolves when no adoption runs any more (after stop and the pipeline's close, or when all are done). */
  readonly finished: Promise<void>;
}

const SEGMENT_RE = /^segment-\d{20}\.log$/;
const ACK_FILE = 'ack';

/** Starts adopting `orphans`, one directory at a time, in the background. */
export function adoptOrphanedSpools(o: AdoptionOptions): SpoolAdoption {
  const log = o.logger.child({ component: 'spool-adoption' });
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const finished = (async () => {
    let left = o.orphans;
    let firstTry = true;
    while (left.length > 0 && !stopped) {
      const inUse: OrphanedSpool[] = [];
      for (const orphan of left) {
        if (stopped) return;
        const result = await adoptOne(orphan, o, log, firstTry).catch((err: unknown) => {
          // A damaged spool (SpoolCorruptError) or an I/O error: left as it is, said once.
          log.error(
            { err, dir: orphan.dir },
            'spool of a removed gateway process not adopted: it keeps its records',
          );
          return 'done' as const;
        });
        if (result === 'in-use') inUse.push(orphan);
      }
      left = inUse;
      firstTry = false;
      if (left.length === 0 || stopped) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, o.retryMs ?? 30_000);
        timer.unref();
      });
    }
  })();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      wake?.();
    },
    finished,
  };
}

/**
 * Locks, opens and ships one directory. 'in-use' when a live process holds its lock (it ships
 * its own records), else 'done' (drained, or left with its records when the pipeline closed).
 */
async function adoptOne(
  orphan: OrphanedSpool,
  o: AdoptionOptions,
  log: Logger,
  firstTry: boolean,
): Promise<'in-use' | 'done'> {
  const { dir } = orphan;
  if (!(await hasSpoolFiles(dir))) return 'done';
  let release: () => Promise<void>;
  try {
    release = await lockSpoolDir(dir);
  } catch (err) {
    if (!(err instanceof SpoolLockedError)) throw err;
    if (firstTry) {
      log.info(
        { dir, reason: err.message },
        'spool of another gateway process is in use: it ships its own (adopted once it is free)',
      );
    }
    return 'in-use';
  }
  let drained = false;
  try {
    drained = await shipOrphan(dir, o, log);
    if (drained && orphan.removeWhenDrained) await removeSpoolFiles(dir);
  } finally {
    await release();
  }
  // Only an empty directory goes: anything else in it (another process's lock) stays.
  if (drained && orphan.removeWhenDrained) await rmdir(dir).catch(() => undefined);
  return 'done';
}

/** Opens the locked spool of `dir`, ships what it holds, closes it; true when nothing is left. */
async function shipOrphan(dir: string, o: AdoptionOptions, log: Logger): Promise<boolean> {
  const spool = await Spool.open(dir);
  try {
    const { entries: records, bytes } = spool.stats();
    if (records === 0) return true;
    if (!o.pipeline.producesToKafka) {
      log.warn(
        { dir, records, bytes },
        'spool of a gateway process that no longer runs holds records and no Kafka is configured: they stay there (fleetgate spool replay --dir)',
      );
      return false;
    }
    log.info(
      { dir, records, bytes },
      'adopting the spool of a gateway process that no longer runs: shipping it to Kafka',
    );
    o.metrics.spoolAdopted.inc();
    o.metrics.spoolAdoptedPending.inc(records);
    let shipped = 0;
    const drained = await o.pipeline.shipAdopted(spool, (n) => {
      shipped += n;
      o.metrics.spoolAdoptedRecords.inc(n);
      o.metrics.spoolAdoptedPending.dec(n);
    });
    o.metrics.spoolAdoptedPending.dec(records - shipped);
    if (drained) log.info({ dir, records: shipped }, 'adopted spool drained');
    else {
      log.warn(
        { dir, shipped, left: records - shipped },
        'adopted spool closed before it drained: the rest is shipped at the next start',
      );
    }
    return drained && spool.stats().entries === 0;
  } finally {
    await spool.close();
  }
}

/** Whether `dir` holds spool files (segments or an ack position); one that does not exist holds none. */
async function hasSpoolFiles(dir: string): Promise<boolean> {
  return (await spoolFiles(dir)).length > 0;
}

async function spoolFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => SEGMENT_RE.test(n) || n === ACK_FILE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * The files of a drained spool, closed, under its lock: segments whose every entry was shipped
 * (or an empty one) and the ack position, which means nothing without them.
 */
async function removeSpoolFiles(dir: string): Promise<void> {
  const files = await spoolFiles(dir);
  // Segments first: a crash in between leaves segments and an ack that says they were shipped.
  const ordered = [...files.filter((f) => f !== ACK_FILE), ...files.filter((f) => f === ACK_FILE)];
  for (const f of ordered) await unlink(path.join(dir, f)).catch(() => undefined);
}
