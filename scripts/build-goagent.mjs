// Builds the Go interop agent (loadtest/goagent) once into .cache/goagent/<source hash>/goagent
// and prints its path. Tests call buildGoAgent(); operators may run this script directly.
// Usage: node scripts/build-goagent.mjs [--help]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const source = join(root, 'loadtest/goagent');

/** Hash of the module's files: a changed source gets a new binary, an unchanged one is reused. */
function sourceHash() {
  const h = createHash('sha256');
  for (const name of readdirSync(source).sort()) {
    if (name.endsWith('.go') || name === 'go.mod' || name === 'go.sum') {
      h.update(name).update(readFileSync(join(source, name)));
    }
  }
  return h.digest('hex').slice(0, 16);
}

/** Returns the path of the built binary, building it first if this source was never built. */
export function buildGoAgent() {
  const dir = join(root, '.cache/goagent', sourceHash());
  const bin = join(dir, 'goagent');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  // Build to a unique name and rename: test processes running at once never see half a binary.
  const tmp = `${bin}.${process.pid}.tmp`;
  const r = spawnSync('go', ['build', '-trimpath', '-o', tmp, '.'], {
    cwd: source,
    encoding: 'utf8',
    env: { ...process.env, CGO_ENABLED: '0' },
  });
  if (r.error || r.status !== 0) {
    rmSync(tmp, { force: true });
    const why = r.error ? r.error.message : r.stderr;
    throw new Error(
      `go build of loadtest/goagent failed (Go ≥ 1.26, as go.mod says, and the Go module proxy are needed): ${why}`,
    );
  }
  renameSync(tmp, bin);
  return bin;
}

if (process.argv[1] === import.meta.filename) {
  if (process.argv.includes('--help')) {
    console.log(
      'usage: node scripts/build-goagent.mjs   builds loadtest/goagent into .cache/goagent/ and prints its path',
    );
    process.exit(0);
  }
  console.log(buildGoAgent());
}
