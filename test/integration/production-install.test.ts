/**
 * The Dockerfile's production install, without Docker: build from a copy of the sources, then a
 * fresh directory with only what the image copies (package.json, package-lock.json, bin, dist) and
 * `npm ci --omit=dev` (the image's dependency stage), outside the repository so nothing resolves
 * from its node_modules. `fleetgate all` must start from there, serve, and drain on SIGTERM.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, tempDir, waitFor } from '../helpers/gateway.js';
import { nativeUwsExpected } from '../helpers/runtime.js';

/** The .dockerignore patterns as regular expressions over repository-relative paths. */
function dockerIgnored(): RegExp[] {
  return readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((pattern) => {
      // `**/` is any number of directories, `*` anything but a slash.
      const body = pattern
        .split('**/')
        .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*'))
        .join('(?:.*/)?');
      return new RegExp(`^${body}(?:/.*)?$`);
    });
}

/** What the runtime stage copies from the build stage (besides node_modules). */
const RUNTIME_FILES = ['package.json', 'package-lock.json', 'bin', 'dist'];

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): void {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, NODE_OPTIONS: '', npm_config_audit: 'false', npm_config_fund: 'false' },
  });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed in ${cwd}:\n${r.stdout}\n${r.stderr}`);
}

/** The build stage: the repository's node_modules stands in for its `npm ci`. */
function buildStage(dir: string): void {
  // COPY . . (what .dockerignore lets through); generated protobuf code is made by the build.
  const ignored = [...dockerIgnored(), /^proto\/gen(?:\/.*)?$/];
  cpSync(ROOT, dir, {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(ROOT, src).split(path.sep).join('/');
      return rel === '' || !ignored.some((re) => re.test(rel));
    },
  });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  run('npm', ['run', 'build'], dir, 300_000);
}

/** The dependency and runtime stages: the image's files and a production-only install. */
function runtimeStage(buildDir: string, appDir: string): void {
  for (const f of RUNTIME_FILES) cpSync(path.join(buildDir, f), path.join(appDir, f), { recursive: true });
  // --prefer-offline: the packages are in npm's cache after the repository's own `npm ci`.
  run('npm', ['ci', '--omit=dev', '--prefer-offline'], appDir, 300_000);
}

/**
 * Builds and installs the app under `tmp`, or, on the second runtime of one `run-tests.mjs` run,
 * takes the install the first made (FLEETGATE_TEST_RUN_DIR, removed when the run ends). Both
 * stages run npm, hence the Node of PATH, whichever runtime this file runs on: the second pass
 * would repeat the same build byte for byte; what depends on the runtime is the start below.
 */
function installedApp(tmp: string): string {
  const runDir = process.env.FLEETGATE_TEST_RUN_DIR;
  const root = runDir ? path.join(runDir, 'production-install') : tmp;
  const appDir = path.join(root, 'app');
  const done = path.join(root, 'installed');
  if (runDir && existsSync(done)) return appDir;
  if (runDir) rmSync(root, { recursive: true, force: true });
  const buildDir = path.join(root, 'build');
  for (const d of [buildDir, appDir]) mkdirSync(d, { recursive: true });
  buildStage(buildDir);
  runtimeStage(buildDir, appDir);
  writeFileSync(done, '');
  return appDir;
}

function startAll(appDir: string, dataDir: string): { child: ChildProcess; output(): string } {
  const child = spawn(process.execPath, ['bin/fleetgate.js', 'all'], {
    cwd: appDir,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? dataDir,
      NODE_ENV: 'production',
      FLEETGATE_DATA_DIR: dataDir,
      FLEETGATE_HOST: '127.0.0.1',
      FLEETGATE_ADVERTISE_HOST: '127.0.0.1',
      FLEETGATE_GRPC_PORT: '0',
      FLEETGATE_HTTP_PORT: '0',
      FLEETGATE_SD_PORT: '0',
      FLEETGATE_MANAGER_PORT: '0',
      FLEETGATE_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += String(d);
  });
  child.stderr?.on('data', (d) => {
    out += String(d);
  });
  return { child, output: () => out };
}

test('the production install (build, copy, npm ci --omit=dev) starts fleetgate all from a fresh directory', {
  timeout: 600_000,
}, async (t) => {
  const appDir = installedApp(tempDir(t, 'fg-prod-'));
  const dataDir = tempDir(t, 'fg-prod-data-');

  const { child, output } = startAll(appDir, dataDir);
  t.after(() => child.kill('SIGKILL'));
  const sdBanner = /discovery\s+http:\/\/127\.0\.0\.1:(\d+)/;
  const grpcBanner = /agent gRPC \(mTLS\)\s+127\.0\.0\.1:(\d+)/;
  await waitFor(
    () => (sdBanner.test(output()) && grpcBanner.test(output())) || child.exitCode !== null,
    120_000,
    'the startup banner',
  );
  assert.equal(child.exitCode, null, `fleetgate all exited:\n${output()}`);
  const sdPort = Number(sdBanner.exec(output())![1]);
  const grpcPort = Number(grpcBanner.exec(output())![1]);

  // It serves: discovery answers with the gateway once the gateway has registered.
  let data: Array<{ port: number }> = [];
  const deadline = Date.now() + 30_000;
  while (data.length === 0 && Date.now() < deadline) {
    const res = await fetch(`http://127.0.0.1:${sdPort}/registry/detail?name=hids_svr_grpc&count=10`);
    data = ((await res.json()) as { data: typeof data }).data;
    if (data.length === 0) await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(
    data.map((d) => d.port),
    [grpcPort],
  );

  // The HTTP engine this runtime can have, said in the metrics (and warned about when it is node:http).
  const engine = nativeUwsExpected() ? 'uws' : 'node';
  const metrics = await (await fetch(`http://127.0.0.1:${sdPort}/metrics`)).text();
  assert.match(metrics, new RegExp(`fleetgate_http_engine\\{engine="${engine}"\\} 1`));
  if (engine === 'node') assert.match(output(), /no native uWebSockets\.js binary loads/);

  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exit, 0, output());
});
