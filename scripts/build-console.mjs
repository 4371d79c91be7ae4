// Builds the operator console (console/) into static assets: esbuild bundles and minifies the
// Preact app and its CSS into content-hashed files under <out>/assets, and writes index.html
// naming them (no inline script or style: the manager's Content-Security-Policy forbids both).
// The manager serves <out> (default dist/console) on its port.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = join(import.meta.dirname, '..');

export async function buildConsole(out = join(root, 'dist', 'console')) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'assets'), { recursive: true });
  const result = await build({
    entryPoints: { app: join(root, 'console', 'src', 'main.tsx') },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome110', 'firefox110', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: join(out, 'assets'),
    entryNames: '[name]-[hash]',
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const outputs = Object.keys(result.metafile.outputs).map((f) => basename(f));
  const js = outputs.find((f) => f.endsWith('.js'));
  const css = outputs.find((f) => f.endsWith('.css'));
  if (!js || !css) throw new Error(`console build produced ${outputs.join(', ')}`);
  const html = readFileSync(join(root, 'console', 'index.html'), 'utf8')
    .replace('%JS%', `/assets/${js}`)
    .replace('%CSS%', `/assets/${css}`);
  writeFileSync(join(out, 'index.html'), html);
  return { out, js, css };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--help')) {
    console.log('usage: node scripts/build-console.mjs [out-dir]   (default dist/console)');
    process.exit(0);
  }
  const r = await buildConsole(process.argv[2]);
  console.log(`console built into ${r.out}`);
}
