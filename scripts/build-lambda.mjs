// Bundles the Lambda handlers with esbuild and zips them for infra/terraform.
//
//   npm run build:lambda              -> dist/lambda/<name>/... and dist/lambda/<name>.zip
//   node scripts/build-lambda.mjs --out DIR [name...]
//
// Each bundle keeps its source module's path, so the handler setting of the function names the
// source: discovery/lambda.ts `handler` becomes `discovery/lambda.mjs` in the zip
// and the function's handler is `discovery/lambda.handler`. Everything is bundled (the
// AWS SDK too: the version tested here, not the runtime's). The zip is reproducible (fixed
// timestamps, sorted entries), so Terraform's source_code_hash changes only with the code.
//
// Every bundle starts with platform/config/secrets-manager.ts: before the handler module reads its
// environment, FLEETGATE_AKSK_SECRET_ARN and FLEETGATE_MANAGER_SECRET_ARN are resolved from
// Secrets Manager into FLEETGATE_AKSK and FLEETGATE_MANAGER_SECRET (top-level await, during the
// function's init), so no secret value is ever in a function's configuration or in Terraform.
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { zipSync } from 'fflate';
import { buildConsole } from './build-console.mjs';

const root = path.join(import.meta.dirname, '..');

/** Every Lambda function of the project: zip name -> source module exporting `handler`. */
export const LAMBDAS = {
  discovery: { source: 'discovery/lambda.ts', export: 'handler' },
  // The manager API behind its HTTP API: handler manager/lambda.handler. The zip also
  // holds the operator console (dist/console), which the function serves at / (same origin).
  manager: { source: 'manager/lambda.ts', export: 'handler', console: true },
  // The task dispatcher on an EventBridge schedule: handler manager/dispatcher-lambda.handler.
  dispatcher: { source: 'manager/dispatcher-lambda.ts', export: 'handler' },
};

/** The name the generated entry module goes by in source maps (it is not a file). */
function entrySourcefile(fn) {
  return fn.source.replace(/\.ts$/, '.entry.ts');
}

/** The bundle's entry: secrets first, then the handler module's export under its own name. */
export function entrySource(fn) {
  return [
    "import { loadSecretEnvironment } from './platform/config/secrets-manager.ts';",
    `import { ${fn.export} as __fgHandler } from './${fn.source}';`,
    'await loadSecretEnvironment(process.env);',
    `export const ${fn.export} = __fgHandler;`,
    '',
  ].join('\n');
}

/** `discovery/lambda.ts` -> `discovery/lambda.handler` (Lambda's handler setting). */
export function handlerSetting(fn) {
  return `${fn.source.replace(/\.ts$/, '')}.${fn.export}`;
}

// ESM bundles of CommonJS dependencies (pino, prom-client, the AWS SDK) call require() for
// Node's built-ins: give them one.
const BANNER = [
  "import { createRequire as __fgCreateRequire } from 'node:module';",
  "import { fileURLToPath as __fgFileURLToPath } from 'node:url';",
  'const require = __fgCreateRequire(import.meta.url);',
  'const __filename = __fgFileURLToPath(import.meta.url);',
  "const __dirname = __fgFileURLToPath(new URL('.', import.meta.url));",
].join('\n');

// 1980-01-01, the earliest time a zip entry can carry: the same bytes in, the same zip out.
const ZIP_MTIME = new Date('1980-01-01T00:00:00Z');

export async function buildLambda(name, outRoot) {
  const fn = LAMBDAS[name];
  if (!fn) throw new Error(`unknown Lambda ${name}; known: ${Object.keys(LAMBDAS).join(', ')}`);
  const dir = path.join(outRoot, name);
  rmSync(dir, { recursive: true, force: true });
  const entry = fn.source.replace(/\.ts$/, '.mjs');
  const result = await build({
    absWorkingDir: root,
    stdin: {
      contents: entrySource(fn),
      resolveDir: root,
      sourcefile: entrySourcefile(fn),
      loader: 'ts',
    },
    outfile: path.join(dir, entry),
    bundle: true,
    platform: 'node',
    format: 'esm',
    // nodejs22.x: the newest Lambda runtime the AWS provider 5.100 accepts at plan; the functions'
    // runtime setting (infra/terraform) must match.
    target: 'node22',
    sourcemap: true,
    sourcesContent: false,
    legalComments: 'none',
    banner: { js: BANNER },
    logLevel: 'warning',
    metafile: true,
  });
  const files = {
    [entry]: readFileSync(path.join(dir, entry)),
    [`${entry}.map`]: readFileSync(path.join(dir, `${entry}.map`)),
  };
  if (fn.console) {
    const c = await buildConsole(path.join(dir, 'dist', 'console'));
    for (const f of ['index.html', `assets/${c.js}`, `assets/${c.css}`]) {
      files[`dist/console/${f}`] = readFileSync(path.join(c.out, f));
    }
  }
  const zipEntries = Object.fromEntries(
    Object.keys(files)
      .sort()
      .map((f) => [f, [files[f], { mtime: ZIP_MTIME, level: 9 }]]),
  );
  const zip = path.join(outRoot, `${name}.zip`);
  writeFileSync(zip, zipSync(zipEntries));
  return {
    name,
    handler: handlerSetting(fn),
    entry,
    dir,
    zip,
    bundleBytes: files[entry].length,
    zipBytes: statSync(zip).size,
    inputs: Object.keys(result.metafile.inputs).length,
    /** The bundled source files (repository-relative), for checks of what the function runs. */
    inputFiles: Object.keys(result.metafile.inputs).filter((f) => f !== entrySourcefile(fn)),
  };
}

async function main() {
  const { values, positionals } = parseArgs({
    options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(
      `usage: node scripts/build-lambda.mjs [--out DIR] [name...]\nnames: ${Object.keys(LAMBDAS).join(', ')} (default: all); DIR defaults to dist/lambda`,
    );
    return;
  }
  const outRoot = path.resolve(values.out ?? path.join(root, 'dist', 'lambda'));
  mkdirSync(outRoot, { recursive: true });
  for (const name of positionals.length > 0 ? positionals : Object.keys(LAMBDAS)) {
    const r = await buildLambda(name, outRoot);
    console.log(
      `${r.name}: ${path.relative(root, r.zip)} (${(r.zipBytes / 1024).toFixed(0)} KiB zipped, bundle ${(r.bundleBytes / 1024).toFixed(0)} KiB from ${r.inputs} files), handler ${r.handler}`,
    );
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  await main();
}
