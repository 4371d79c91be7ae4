/**
 * The production install (`npm ci --omit=dev`, the Dockerfile's) has only `dependencies`: every
 * module the installed program can load must come from there or from Node itself. The import
 * graph is read from the sources (static imports, re-exports and dynamic `import()`; type-only
 * imports are erased by the compiler and do not count), starting at what the image runs: the CLI,
 * the piscina ingest worker and the simulator's child processes.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.join(import.meta.dirname, '..', '..');
const PKG = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** Files the installed program starts from (bin/fleetgate.js loads cli/run). */
const ENTRIES = ['cli/run.ts', 'workers/ingest-worker.ts', 'loadtest/sim/fleet-child.ts'];

const STATIC = /(?:^|[\n;])\s*(?:import|export)\s+(type\s+)?(?:[^;'"]*?\s+from\s+)?'([^']+)'/g;
const DYNAMIC = /\bimport\(\s*'([^']+)'\s*\)/g;

interface Edge {
  specifier: string;
  dynamic: boolean;
}

function importsOf(source: string): Edge[] {
  const edges: Edge[] = [];
  for (const m of source.matchAll(STATIC)) if (!m[1]) edges.push({ specifier: m[2]!, dynamic: false });
  for (const m of source.matchAll(DYNAMIC)) edges.push({ specifier: m[1]!, dynamic: true });
  return edges;
}

/** `../x/y.js` from `gateway/a/b.ts` -> the repo-relative source file (the .ts when there is one). */
function resolveRelative(from: string, specifier: string): string {
  const target = path.join(path.dirname(from), specifier);
  const ts = target.replace(/\.js$/, '.ts');
  return existsSync(path.join(ROOT, ts)) ? ts : target;
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

const isBuiltin = (s: string) => s.startsWith('node:') || builtinModules.includes(packageName(s));

/** Every source file reachable from `entries` and the bare modules each one imports. */
function walk(entries: string[], followDynamic: boolean): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const queue = [...entries];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    const bare: string[] = [];
    seen.set(file, bare);
    const full = path.join(ROOT, file);
    assert.ok(existsSync(full), `${file} is imported but does not exist (run npm run gen?)`);
    for (const { specifier, dynamic } of importsOf(readFileSync(full, 'utf8'))) {
      if (dynamic && !followDynamic) continue;
      if (specifier.startsWith('.')) queue.push(resolveRelative(file, specifier));
      else if (!isBuiltin(specifier)) bare.push(packageName(specifier));
    }
  }
  return seen;
}

test('the import graph reader sees static, dynamic and type-only imports as the compiler does', () => {
  const edges = importsOf(
    "import type { A } from 'dev-only';\nimport { b } from 'dep-a';\nexport { c } from './c.js';\n" +
      "import 'side-effect';\nconst m = await import('./lazy.js');\nexport type { D } from 'dev-two';",
  );
  assert.deepEqual(edges, [
    { specifier: 'dep-a', dynamic: false },
    { specifier: './c.js', dynamic: false },
    { specifier: 'side-effect', dynamic: false },
    { specifier: './lazy.js', dynamic: true },
  ]);
});

test('everything the production install can load comes from dependencies, never devDependencies', () => {
  const graph = walk(ENTRIES, true);
  assert.ok(graph.size > 50, `only ${graph.size} files reached: the graph reader is broken`);
  const missing: string[] = [];
  for (const [file, bare] of graph) {
    for (const name of bare) {
      // `uWebSockets.js` is itself a dependency alias; every bare name must be a dependency key.
      if (!(name in PKG.dependencies)) {
        const where = name in PKG.devDependencies ? 'a devDependency' : 'not a dependency';
        missing.push(`${file} imports ${name} (${where})`);
      }
    }
  }
  assert.deepEqual(missing, []);
});

test('fleetgate gateway, discovery and all load no simulator or benchmark code', () => {
  // What `fleetgate <role>` loads: run.ts and main.ts statically, then the serve command and the
  // role modules it imports when a role starts.
  const graph = new Map([...walk(['cli/run.ts'], false), ...walk(['cli/serve-command.ts'], true)]);
  assert.ok(graph.has('gateway/process/gateway.ts'));
  const loadtest = [...graph.keys()].filter((f) => f.startsWith('loadtest/') || f.startsWith('test/'));
  assert.deepEqual(loadtest, []);
});
