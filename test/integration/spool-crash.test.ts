/**
 * A real crash: a child process appends to a spool and reports every append that resolved; it
 * is SIGKILLed mid-stream, and the reopened spool must hold every reported entry, intact, with
 * no gap in the sequence.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Spool } from '../../gateway/ingest/spool.js';
import { CRASH_SEGMENT_BYTES, crashEntry } from '../fixtures/spool-writer.js';

const writerScript = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/spool-writer.ts');

interface ChildRun {
  acked: number[];
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
}

/** Runs the writer and SIGKILLs it `killAfterMs` after it reports `ready`. */
function runAndKill(dir: string, killAfterMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writerScript, dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    // If the writer never gets ready, do not hang the suite.
    const guard = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (timer === undefined && out.startsWith('ready\n')) {
        timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      clearTimeout(timer);
      // Only complete lines count: a line cut by the kill was never fully reported.
      const lines = out.split('\n').slice(0, -1);
      assert.equal(lines[0], 'ready', `writer did not start: ${stderr}`);
      resolve({ acked: lines.slice(1).map(Number), signal, code, stderr });
    });
  });
}

for (const killAfterMs of [300, 550, 800]) {
  test(`spool survives SIGKILL ${killAfterMs} ms into appending`, { timeout: 15_000 }, async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'fleetgate-spool-crash-'));
    t.after(() => rm(dir, { recursive: true, force: true }));

    const run = await runAndKill(dir, killAfterMs);
    assert.equal(run.signal, 'SIGKILL', `writer exited by itself (code ${run.code}): ${run.stderr}`);
    assert.equal(run.stderr, '');
    assert.ok(run.acked.length > 10, `writer acknowledged only ${run.acked.length} appends`);
    for (const seq of run.acked) assert.ok(Number.isSafeInteger(seq) && seq > 0);
    const maxAcked = Math.max(...run.acked);

    const spool = await Spool.open(dir, { segmentBytes: CRASH_SEGMENT_BYTES });
    t.after(() => spool.close());
    const last = spool.nextSeq() - 1;
    assert.ok(last >= maxAcked, `acknowledged seq ${maxAcked} lost: spool ends at ${last}`);
    assert.equal(spool.pendingFrom(), 1);

    const all = await spool.read(1, Number.MAX_SAFE_INTEGER);
    assert.equal(all.length, last, 'recovered entries are contiguous from seq 1');
    all.forEach((r, i) => {
      assert.equal(r.seq, i + 1);
      const want = crashEntry(r.seq);
      assert.equal(r.key, want.key, `key of seq ${r.seq}`);
      assert.ok(r.value.equals(want.value), `value of seq ${r.seq}`);
    });
    const present = new Set(all.map((r) => r.seq));
    for (const seq of run.acked) assert.ok(present.has(seq), `acknowledged seq ${seq} present`);
    t.diagnostic(
      `acked appends ${run.acked.length}, max acked seq ${maxAcked}, recovered ${last} entries in ` +
        `${spool.stats().segments} segments, torn tail ${spool.recovery.truncatedBytes} bytes`,
    );

    // The recovered spool is writable again, right after the recovered prefix.
    assert.deepEqual(await spool.append([crashEntry(last + 1)]), { firstSeq: last + 1, lastSeq: last + 1 });
  });
}
