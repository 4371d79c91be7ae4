/**
 * The shape of the production tree (gateway, discovery, manager, platform, cli, workers), read
 * with the TypeScript compiler API: no import cycle, no function body over 120 lines, DynamoDB
 * commands built and sent only in repository files (a `store/` folder or a `*-store.ts` file), and
 * `fleetgate gateway --help`, run as a real process, loads nothing under loadtest/. Each reader is
 * first shown to find what it looks for in a small made-up source, so a pass means something.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  createProgram,
  dynamoOutsideRepositories,
  folderGraph,
  importCycles,
  importGraph,
  isRepositoryFile,
  longFunctions,
  MAX_FUNCTION_LINES,
  PRODUCTION_DIRS,
  parse,
  ROOT,
  runtimeImports,
  sourceFiles,
} from '../helpers/architecture.js';

const FILES = sourceFiles(PRODUCTION_DIRS);
const PARSED = new Map(FILES.map((f) => [f, parse(f, readFileSync(path.join(ROOT, f), 'utf8'))]));

test('the import reader sees what Node loads: value imports, re-exports, import(); not import type', () => {
  const source = parse(
    'x.ts',
    "import type { A } from './erased.js';\nimport { type B } from './kept-empty.js';\n" +
      "import { c } from './c.js';\nexport { d } from './d.js';\nexport type { E } from './e.js';\n" +
      "import './side.js';\nconst lazy = () => import('./lazy.js');",
  );
  assert.deepEqual(runtimeImports(source), ['./kept-empty.js', './c.js', './d.js', './side.js', './lazy.js']);
});

test('the cycle finder reports each cycle once, as a path back to its start', () => {
  const graph = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts', 'x.ts']],
    ['c.ts', ['a.ts', 'd.ts']],
    ['d.ts', []],
    ['e.ts', ['e.ts']],
    ['f.ts', ['d.ts']],
    ['x.ts', ['b.ts']],
  ]);
  assert.deepEqual(importCycles(graph), [
    'a.ts -> b.ts -> c.ts -> a.ts (in the same cycle: x.ts)',
    'e.ts -> e.ts',
  ]);
  assert.deepEqual(importCycles(new Map([['a.ts', ['b.ts']]])), []);
  const folders = folderGraph(
    new Map([
      ['p/one.ts', ['q/two.ts']],
      ['q/two.ts', ['p/sub/three.ts']],
    ]),
    1,
  );
  assert.deepEqual(importCycles(folders.folders), ['p -> q -> p']);
  assert.equal(folders.example.get('q -> p'), 'q/two.ts imports p/sub/three.ts');
});

const GRAPH = importGraph(PARSED);

test('no import cycle among the production files', () => {
  // The graph is real: the CLI reaches the gateway's wiring through its lazy imports.
  assert.ok([...GRAPH.values()].flat().length > FILES.length, 'too few import edges: the reader is broken');
  const cycles = importCycles(GRAPH);
  assert.deepEqual(cycles, [], `import cycles:\n  ${cycles.join('\n  ')}`);
});

test('no import cycle between the top-level modules (gateway, discovery, manager, platform, cli, workers)', () => {
  const { folders, example } = folderGraph(GRAPH, 1);
  const cycles = importCycles(folders).map((cycle) => {
    const hops = cycle.split(' (')[0]!.split(' -> ');
    const because = hops
      .slice(1)
      .map((to, i) => `${hops[i]} -> ${to}: ${example.get(`${hops[i]} -> ${to}`)}`);
    return `${cycle}\n    ${because.join('\n    ')}`;
  });
  assert.deepEqual(cycles, [], `cycles between modules:\n  ${cycles.join('\n  ')}`);
});

test('the length reader measures functions, methods, arrows and accessors, with file:line', () => {
  const body = (n: number) => Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join('\n');
  const source = parse(
    'm/x.ts',
    `export function big() {\n${body(MAX_FUNCTION_LINES - 1)}\n}\n` +
      `export function fits() {\n${body(MAX_FUNCTION_LINES - 2)}\n}\n` +
      `const arrow = () => {\n${body(MAX_FUNCTION_LINES)}\n};\n` +
      `class K {\n  method() {\n${body(MAX_FUNCTION_LINES)}\n  }\n}\n`,
  );
  const found = longFunctions(source).map((f) => [f.where, f.name, f.lines]);
  const fitsEnd = 2 * MAX_FUNCTION_LINES + 1;
  assert.deepEqual(found, [
    ['m/x.ts:1', 'big', MAX_FUNCTION_LINES + 1],
    [`m/x.ts:${fitsEnd + 1}`, 'arrow', MAX_FUNCTION_LINES + 2],
    [`m/x.ts:${fitsEnd + MAX_FUNCTION_LINES + 4}`, 'method', MAX_FUNCTION_LINES + 2],
  ]);
});

test(`no production function, method or arrow body over ${MAX_FUNCTION_LINES} lines`, () => {
  const long = [...PARSED.values()].flatMap((s) => longFunctions(s));
  const report = long.map((f) => `${f.where} ${f.name}: ${f.lines} lines`);
  assert.deepEqual(report, [], `functions over ${MAX_FUNCTION_LINES} lines:\n  ${report.join('\n  ')}`);
});

test('repository files are store/ folders and *-store.ts files', () => {
  assert.ok(isRepositoryFile('manager/tasks/store/items.ts'));
  assert.ok(isRepositoryFile('platform/store/open.ts'));
  assert.ok(isRepositoryFile('discovery/registry-store.ts'));
  assert.ok(!isRepositoryFile('manager/routes/fleet.ts'));
  assert.ok(!isRepositoryFile('manager/store.ts'));
  assert.ok(!isRepositoryFile('manager/restore/x.ts'));
});

test('the DynamoDB reader finds command imports and sends on a client under any name, not other sends', () => {
  const route = 'manager/routes/zz-architecture-fixture.ts';
  const store = 'manager/store/zz-architecture-fixture.ts';
  const text =
    "import { type DynamoDBClient, GetItemCommand, type GetItemCommandInput } from '@aws-sdk/client-dynamodb';\n" +
    "import type { QueryCommand } from '@aws-sdk/lib-dynamodb';\n" +
    "import type { Producer } from 'kafkajs';\n" +
    'export async function f(db: DynamoDBClient, p: Producer, input: GetItemCommandInput, q?: QueryCommand) {\n' +
    '  const handle = db;\n' +
    '  await handle.send(new GetItemCommand(input));\n' +
    "  await p.send({ topic: 't', messages: [] });\n" +
    '  return q;\n' +
    '}\n';
  const program = createProgram(
    [route, store],
    new Map([
      [route, text],
      [store, text],
    ]),
  );
  assert.deepEqual(dynamoOutsideRepositories(program, [route, store]), [
    `${route}:1 imports GetItemCommand`,
    `${route}:6 calls handle.send(…) on a DynamoDB client`,
  ]);
});

test('DynamoDB commands are built and sent only in repository files (store/ folders, *-store.ts)', () => {
  const found = dynamoOutsideRepositories(createProgram(FILES), FILES);
  assert.deepEqual(found, [], `outside the repository layer:\n  ${found.join('\n  ')}`);
});

/** Repo-relative source files a real `fleetgate <argv>` process loaded (tsx on the sources). */
function loadedBy(argv: string[]): string[] {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetgate-loads-'));
  try {
    const record = path.join(dir, 'loaded.txt');
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--import', './test/helpers/record-loads.mjs', 'cli/run.ts', ...argv],
      {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, FLEETGATE_RECORD_LOADS: record },
        timeout: 60_000,
      },
    );
    assert.equal(r.status, 0, `fleetgate ${argv.join(' ')}: ${r.stderr}`);
    return readFileSync(record, 'utf8')
      .split('\n')
      .filter((url) => url.startsWith('file:'))
      .map((url) => path.relative(ROOT, fileURLToPath(url)).split(path.sep).join('/'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('fleetgate gateway --help, as a real process, loads no simulator or benchmark code (loadtest/)', () => {
  // The recorder sees loadtest/ when it is loaded: `fleetgate sim --help` does load it.
  assert.ok(loadedBy(['sim', '--help']).some((f) => f.startsWith('loadtest/')));
  const loaded = loadedBy(['gateway', '--help']);
  assert.ok(loaded.includes('cli/main.ts'), `the recorder saw: ${loaded.join(', ')}`);
  assert.deepEqual(
    loaded.filter((f) => f.startsWith('loadtest/')),
    [],
  );
});
