/**
 * The repository stands on its own: what the code and docs cite lives in docs/.
 *
 * (a) Every citation of a document by name — `elkeid-protocol.md §4.5`, `docs/hardening.md §5
 *     test 28`, `Elkeid §2.13` (= docs/elkeid-protocol.md), `hardening §4` — in any text file of
 *     the repository names a file of docs/ (or a README beside the citing file), every section
 *     number it cites is a heading of that file, and every hardening test number it cites is a
 *     row of the cited section's test table.
 * (b) Every path docs/architecture.md names — in backticks, or starting with a top-level
 *     folder of the repository — exists.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(import.meta.dirname, '..', '..');
const docsDir = path.join(root, 'docs');

/** Not ours, never scanned: dependencies, build output, generated code, caches, local state. */
const SKIPPED_DIRS = new Set([
  'dist',
  'data',
  'proto/gen',
  'infra/local/cache',
  'infra/local/state',
  'infra/.tools',
  'loadtest/results',
]);
const TEXT_FILE = /\.(ts|mts|cts|js|mjs|cjs|tf|go|sh|md|ya?ml|proto)$/;

/** Documents of other projects cited by their own names (gRPC's protocol description). */
const OUTSIDE_DOCUMENTS = new Set(['PROTOCOL-HTTP2']);

/** Documents cited under names they no longer have (none now: an old name is refused). */
const RENAMED: Readonly<Record<string, string>> = {};

/** Short names that stand for a document: `Elkeid §2.13`, `hardening §4`. */
const SHORT_NAMES: Readonly<Record<string, string>> = { Elkeid: 'elkeid-protocol', hardening: 'hardening' };

interface Citation {
  file: string;
  line: number;
  doc: string;
  sections: string[];
  tests: number[];
}

function repoFiles(dir = root): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    const rel = path.relative(root, full);
    // node_modules at any depth (scripts/node24/ has its own).
    if (name.startsWith('.') || name === 'node_modules' || SKIPPED_DIRS.has(rel)) return [];
    if (statSync(full).isDirectory()) return repoFiles(full);
    return TEXT_FILE.test(name) ? [rel] : [];
  });
}

const SECTION = String.raw`§\s?\d+(?:\.\d+)*`;
/** `§1.8–§1.11`, `§4.4, §4.5`, `§1, tests 2, 4` … right after a document's name. */
const SECTION_LIST = new RegExp(String.raw`^\s*(${SECTION}(?:\s*(?:[–,-]|and)\s*§?\s?\d+(?:\.\d+)*)*)`);
const TEST_LIST = /^[\s,(:]*tests?\s+(\d+(?:\s*(?:,|and)\s*\d+)*)/;
const BY_FILE_NAME = /(?<![\w/.-])((?:docs\/)?[A-Za-z0-9_-]+)\.md\b/g;
const BY_SHORT_NAME = new RegExp(String.raw`\b(${Object.keys(SHORT_NAMES).join('|')})(?=\s+§)`, 'g');

/** What follows a document's name at `rest`: the sections and the hardening tests cited. */
function sectionsAfter(rest: string): { sections: string[]; tests: number[] } {
  const list = SECTION_LIST.exec(rest);
  if (!list) return { sections: [], tests: [] };
  const sections = [...list[1]!.matchAll(/\d+(?:\.\d+)*/g)].map((m) => m[0]);
  const tail = rest.slice(list[0].length);
  const tests = TEST_LIST.exec(tail);
  return { sections, tests: tests ? [...tests[1]!.matchAll(/\d+/g)].map((m) => Number(m[0])) : [] };
}

function citationsIn(file: string): Citation[] {
  const text = readFileSync(path.join(root, file), 'utf8');
  const out: Citation[] = [];
  const lineAt = (index: number) => text.slice(0, index).split('\n').length;
  for (const m of text.matchAll(BY_FILE_NAME)) {
    const doc = m[1]!.replace(/^docs\//, '');
    const cited = sectionsAfter(text.slice(m.index! + m[0].length, m.index! + m[0].length + 120));
    out.push({ file, line: lineAt(m.index!), doc, ...cited });
  }
  for (const m of text.matchAll(BY_SHORT_NAME)) {
    const cited = sectionsAfter(text.slice(m.index! + m[0].length, m.index! + m[0].length + 120));
    out.push({ file, line: lineAt(m.index!), doc: SHORT_NAMES[m[1]!]!, ...cited });
  }
  return out;
}

/** The file a citation names, or undefined for another project's document. */
function resolve(c: Citation): string | undefined | Error {
  const name = RENAMED[c.doc] ?? c.doc;
  const inDocs = path.join(docsDir, `${name}.md`);
  if (existsSync(inDocs)) return inDocs;
  for (const dir of [path.dirname(path.join(root, c.file)), root]) {
    const beside = path.join(dir, `${c.doc}.md`);
    if (existsSync(beside)) return beside;
  }
  if (OUTSIDE_DOCUMENTS.has(c.doc)) return undefined;
  return new Error(`${c.doc}.md is not in docs/`);
}

interface Heading {
  level: number;
  section: string;
  start: number;
  end: number;
}

/** Headings that carry a section number (`### §4.5 Tasks`), with the text each one spans. */
function sectionHeadings(text: string): Map<string, Heading> {
  const lines = text.split('\n');
  const all = lines.flatMap((l, i) => {
    const m = /^(#{1,6})\s+(?:§(\d+(?:\.\d+)*))?/.exec(l);
    return m ? [{ level: m[1]!.length, section: m[2] ?? '', start: i, end: lines.length }] : [];
  });
  for (const [i, h] of all.entries()) {
    const next = all.slice(i + 1).find((n) => n.level <= h.level);
    if (next) h.end = next.start;
  }
  const out = new Map<string, Heading>();
  for (const h of all) if (h.section) out.set(h.section, h);
  return out;
}

function problemsOf(c: Citation, headingsOf: (file: string) => [string[], Map<string, Heading>]): string[] {
  const where = `${c.file}:${c.line}`;
  const target = resolve(c);
  if (target instanceof Error) return [`${where}: ${target.message}`];
  if (target === undefined) return [];
  const [lines, headings] = headingsOf(target);
  const shown = path.relative(root, target);
  const problems: string[] = [];
  for (const s of c.sections) {
    if (!headings.has(s)) problems.push(`${where}: ${shown} has no heading §${s}`);
  }
  const last = headings.get(c.sections.at(-1) ?? '');
  for (const n of c.tests) {
    const rows = last ? lines.slice(last.start, last.end) : [];
    if (!rows.some((l) => new RegExp(String.raw`^\|\s*${n}\s*\|`).test(l))) {
      problems.push(`${where}: ${shown} §${c.sections.at(-1)} has no test ${n}`);
    }
  }
  return problems;
}

test('every document the repository cites is in docs/, with the sections and tests cited', () => {
  const cache = new Map<string, [string[], Map<string, Heading>]>();
  const headingsOf = (file: string) => {
    if (!cache.has(file)) {
      const text = readFileSync(file, 'utf8');
      cache.set(file, [text.split('\n'), sectionHeadings(text)]);
    }
    return cache.get(file)!;
  };
  const citations = repoFiles().flatMap(citationsIn);
  // The scan finds what it should: a broken pattern would otherwise pass by finding nothing.
  assert.ok(citations.filter((c) => c.sections.length > 0).length > 50, 'too few citations found');
  assert.ok(
    citations.some((c) => c.tests.length > 0),
    'no hardening test numbers found',
  );
  const problems = citations.flatMap((c) => problemsOf(c, headingsOf));
  assert.deepEqual(problems, [], `unresolved citations:\n  ${problems.join('\n  ')}`);
});

test('the citation scanner reads names, section lists, ranges and test numbers', () => {
  assert.deepEqual(sectionsAfter(' §1.8–§1.11): asks'), { sections: ['1.8', '1.11'], tests: [] });
  assert.deepEqual(sectionsAfter(' §4.4, §4.5 step 3'), { sections: ['4.4', '4.5'], tests: [] });
  assert.deepEqual(sectionsAfter(' §1, tests 2, 4, 5, 6), bounded'), {
    sections: ['1'],
    tests: [2, 4, 5, 6],
  });
  assert.deepEqual(sectionsAfter(' §2 (tests 11, 12, 14) against'), { sections: ['2'], tests: [11, 12, 14] });
  assert.deepEqual(sectionsAfter(' asks for 1 s'), { sections: [], tests: [] });
  const headings = sectionHeadings('# T\n## §1 A\n| 1 | x |\n### §1.2 B\ntext\n## §2 C\n| 2 | y |\n');
  assert.deepEqual([...headings.keys()], ['1', '1.2', '2']);
  assert.deepEqual([headings.get('1')!.start, headings.get('1')!.end], [1, 5]);
  assert.equal(
    resolve({ file: 'gateway/x.ts', line: 1, doc: 'no-such-document', sections: [], tests: [] }) instanceof
      Error,
    true,
  );
});

/** Paths docs/architecture.md names: backticked ones that look like paths, and any that start with a top-level folder. */
function pathsNamed(text: string): string[] {
  const topLevel = readdirSync(root).filter(
    (n) => !n.startsWith('.') && !SKIPPED_DIRS.has(n) && statSync(path.join(root, n)).isDirectory(),
  );
  const backticked = [...text.matchAll(/`([^`\s]+)`/g)]
    .map((m) => m[1]!)
    .filter((p) => p.includes('/') && !p.startsWith('/') && !/[:<>*{}#]/.test(p))
    .filter((p) => p.endsWith('/') || /\.[A-Za-z0-9]+$/.test(p));
  const bare = [
    ...text.matchAll(new RegExp(String.raw`(?<![\w/.\`-])((?:${topLevel.join('|')})/[\w./-]*)`, 'g')),
  ]
    .map((m) => m[1]!.replace(/[.,;:)]+$/, ''))
    .filter((p) => !p.endsWith('-'));
  return [...new Set([...backticked, ...bare])];
}

test('every path docs/architecture.md names exists', () => {
  const named = pathsNamed(readFileSync(path.join(docsDir, 'architecture.md'), 'utf8'));
  assert.ok(named.length > 10, `too few paths found: ${named.join(' ')}`);
  const missing = named.filter((p) => !existsSync(path.join(root, p)));
  assert.deepEqual(
    missing,
    [],
    `docs/architecture.md names paths that do not exist:\n  ${missing.join('\n  ')}`,
  );
});
