// Generates protobufjs static code (ESM) and its TypeScript declarations from proto/elkeid.proto.
// Skips the work when the output is newer than the .proto (the build and every test run call it).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'proto', 'elkeid.proto');
const outDir = join(root, 'proto', 'gen');
const js = join(outDir, 'elkeid.js');
const dts = join(outDir, 'elkeid.d.ts');
const bin = (name) => join(root, 'node_modules', 'protobufjs-cli', 'bin', name);

const fresh = existsSync(dts) && existsSync(js) && statSync(dts).mtimeMs >= statSync(src).mtimeMs;
if (!fresh) {
  mkdirSync(outDir, { recursive: true });
  // --force-long keeps int64 as Long; --keep-case keeps Elkeid's field names (AgentID, DataType...).
  execFileSync(
    process.execPath,
    [
      bin('pbjs'),
      '-t',
      'static-module',
      '-w',
      'es6',
      '--keep-case',
      '--no-verify',
      '--no-delimited',
      '--no-convert',
      '--no-service',
      '-o',
      js,
      src,
    ],
    { stdio: 'inherit' },
  );
  execFileSync(process.execPath, [bin('pbts'), '-o', dts, js], { stdio: 'inherit' });
  console.log(`generated ${js}`);
}
