/**
 * The console and the manager's API cannot drift: the console's API types are generated from
 * docs/openapi.yaml and must be current; every call in the console's sources names a documented
 * path and method; and the typed client refuses, at compile time, a path the document lacks.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { parse } from 'yaml';
import { GENERATED, generateConsoleApi } from '../../scripts/gen-console-api.mjs';
import { ROOT } from '../helpers/gateway.js';

const SRC = path.join(ROOT, 'console', 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(path.join(dir, e.name))
      : /\.tsx?$/.test(e.name)
        ? [path.join(dir, e.name)]
        : [],
  );
}

test('console/src/api/openapi.gen.ts is generated from the current docs/openapi.yaml', async () => {
  assert.equal(
    readFileSync(GENERATED, 'utf8'),
    await generateConsoleApi(),
    'stale: run npm run gen:console-api',
  );
});

test('every API call in the console names a path and method docs/openapi.yaml documents', () => {
  const doc = parse(readFileSync(path.join(ROOT, 'docs', 'openapi.yaml'), 'utf8')) as {
    paths: Record<string, Record<string, unknown>>;
  };
  const calls: string[] = [];
  for (const file of sources(SRC)) {
    if (file === GENERATED) continue;
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\b(get|post|put|del)\(\s*'(\/api\/[^']+)'/g)) {
      calls.push(`${m[1] === 'del' ? 'delete' : m[1]} ${m[2]}`);
    }
  }
  assert.ok(calls.length >= 25, `found only ${calls.length} calls: the scan is broken`);
  const missing = calls.filter((c) => {
    const [method, p] = c.split(' ') as [string, string];
    return !doc.paths[p]?.[method];
  });
  assert.deepEqual(missing, []);
});

test('the typed client does not compile a call to an undocumented path or method', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fg-console-ts-'));
  try {
    const probe = path.join(dir, 'probe.ts');
    const client = path.join(SRC, 'api', 'client.ts').replace(/\.ts$/, '');
    writeFileSync(
      probe,
      `import { del, get, post } from '${client}';\n` +
        `void get('/api/fleet/stats');\n` + // documented: compiles
        `void get('/api/fleet/agents/{id}/plugins');\n` + // not documented
        `void del('/api/fleet/stats');\n` + // documented path, undocumented method
        `void post('/api/fleet/tasks', { body: { action: 'task' } });\n`,
    );
    const config = ts.readConfigFile(path.join(ROOT, 'console', 'tsconfig.json'), ts.sys.readFile);
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, path.join(ROOT, 'console'));
    const program = ts.createProgram([probe], { ...parsed.options, noEmit: true });
    const errors = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file?.fileName === probe)
      .map((d) => `${d.file!.getLineAndCharacterOfPosition(d.start!).line + 1}`);
    assert.deepEqual(errors, ['3', '4']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
