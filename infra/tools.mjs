// The infrastructure checks' tools, installed by the project itself so that `npm test` works on a
// fresh machine: OpenTofu (for `tofu fmt`) built from the Go module proxy, and checkov from PyPI
// in a virtualenv. Both live under infra/.tools/ (gitignored); the OpenTofu binary is also kept
// in the user's cache (~/.cache/fleetgate-tools), so another clone on the same machine (CI's)
// does not build it again.
//
//   node infra/tools.mjs install     install what is missing (cached), print versions
//   node infra/tools.mjs fmt [--write]   tofu fmt -check -recursive infra/terraform (or rewrite)
//   node infra/tools.mjs checkov     checkov over infra/terraform; fails on any failed check
//   node infra/tools.mjs check       install, fmt, checkov (what `npm run check:infra` runs)
//
// Environment: FLEETGATE_TOOLS_JOBS limits the Go build's parallel jobs (default: all cores;
// 1 on a shared machine); FLEETGATE_TOOLS_CACHE moves the user-level cache.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const TOFU_MODULE = 'github.com/opentofu/opentofu';
export const TOFU_VERSION = 'v1.12.6';
export const CHECKOV_VERSION = '3.3.30';

const root = path.join(import.meta.dirname, '..');
const toolsDir = path.join(import.meta.dirname, '.tools');
const binDir = path.join(toolsDir, 'bin');
const venvDir = path.join(toolsDir, 'venv');
const terraformDir = path.join(import.meta.dirname, 'terraform');
export const tofuPath = path.join(binDir, 'tofu');
export const checkovPath = path.join(venvDir, 'bin', 'checkov');
const userCache = process.env.FLEETGATE_TOOLS_CACHE ?? path.join(os.homedir(), '.cache', 'fleetgate-tools');
const cachedTofu = path.join(userCache, `tofu-${TOFU_VERSION}`);
// An empty CLI configuration: tofu fmt needs none, and a TF_CLI_CONFIG_FILE pointing at a
// missing file only produces warnings.
const tofuRc = path.join(toolsDir, 'tofurc');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function capture(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  return {
    status: r.error ? -1 : (r.status ?? 1),
    stdout: r.stdout ?? '',
    out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim(),
  };
}

function tofuEnv() {
  mkdirSync(toolsDir, { recursive: true });
  if (!existsSync(tofuRc)) writeFileSync(tofuRc, '');
  return { ...process.env, TF_CLI_CONFIG_FILE: tofuRc, CHECKPOINT_DISABLE: '1' };
}

function tofuVersion(bin) {
  if (!existsSync(bin)) return undefined;
  const r = capture(bin, ['version'], { env: tofuEnv() });
  const m = /OpenTofu (v\d+\.\d+\.\d+\S*)/.exec(r.out);
  return r.status === 0 && m ? m[1] : undefined;
}

/** Builds OpenTofu from its module on the Go module proxy (about 5 CPU-minutes the first time). */
function installTofu() {
  if (tofuVersion(tofuPath) === TOFU_VERSION) return { tool: 'tofu', version: TOFU_VERSION, how: 'present' };
  mkdirSync(binDir, { recursive: true });
  if (tofuVersion(cachedTofu) === TOFU_VERSION) {
    copyFileSync(cachedTofu, tofuPath);
    chmodSync(tofuPath, 0o755);
    return { tool: 'tofu', version: TOFU_VERSION, how: `copied from ${cachedTofu}` };
  }
  if (capture('go', ['version']).status !== 0) {
    throw new Error('tofu is missing and there is no Go toolchain to build it (install Go 1.26+)');
  }
  const started = Date.now();
  // `go install module/cmd/tofu@version` refuses modules whose go.mod has replace directives
  // (OpenTofu's has one), so build inside the downloaded module instead, with its go.mod.
  const dl = capture('go', ['mod', 'download', '-json', `${TOFU_MODULE}@${TOFU_VERSION}`]);
  if (dl.status !== 0) throw new Error(`go mod download ${TOFU_MODULE}@${TOFU_VERSION} failed:\n${dl.out}`);
  const moduleDir = JSON.parse(dl.stdout).Dir;
  const jobs = process.env.FLEETGATE_TOOLS_JOBS;
  const tmp = `${tofuPath}.tmp-${process.pid}`;
  console.log(
    `building OpenTofu ${TOFU_VERSION} from the Go module proxy (first time only; a few minutes)...`,
  );
  const built = capture(
    'go',
    [
      'build',
      ...(jobs ? [`-p=${jobs}`] : []),
      '-trimpath',
      '-buildvcs=false',
      `-ldflags=-s -w -X ${TOFU_MODULE}/version.dev=no`,
      '-o',
      tmp,
      './cmd/tofu',
    ],
    { cwd: moduleDir, env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' } },
  );
  // go prints every module it downloads: show that only when the build fails.
  if (built.status !== 0) throw new Error(`building OpenTofu failed (exit ${built.status}):\n${built.out}`);
  renameSync(tmp, tofuPath);
  try {
    mkdirSync(userCache, { recursive: true });
    copyFileSync(tofuPath, cachedTofu);
    chmodSync(cachedTofu, 0o755);
  } catch {
    // The cache is an optimisation only.
  }
  return {
    tool: 'tofu',
    version: TOFU_VERSION,
    how: `built in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  };
}

function checkovVersion() {
  if (!existsSync(checkovPath)) return undefined;
  const r = capture(checkovPath, ['--version']);
  return r.status === 0 ? r.out.split('\n').pop() : undefined;
}

/** checkov from PyPI into infra/.tools/venv (pip's own cache makes a reinstall quick). */
function installCheckov() {
  if (checkovVersion() === CHECKOV_VERSION)
    return { tool: 'checkov', version: CHECKOV_VERSION, how: 'present' };
  const started = Date.now();
  const python = ['python3', 'python'].find((p) => capture(p, ['--version']).status === 0);
  if (!python) throw new Error('checkov is missing and there is no python3 to install it with');
  if (!existsSync(path.join(venvDir, 'bin', 'pip'))) {
    const status = run(python, ['-m', 'venv', venvDir]);
    if (status !== 0) throw new Error(`${python} -m venv failed (exit ${status})`);
  }
  const status = run(path.join(venvDir, 'bin', 'pip'), [
    'install',
    '--quiet',
    '--disable-pip-version-check',
    `checkov==${CHECKOV_VERSION}`,
  ]);
  if (status !== 0) throw new Error(`pip install checkov==${CHECKOV_VERSION} failed (exit ${status})`);
  return {
    tool: 'checkov',
    version: checkovVersion(),
    how: `installed in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  };
}

export function install() {
  const results = [installTofu(), installCheckov()];
  for (const r of results) console.log(`${r.tool} ${r.version} (${r.how})`);
  return results;
}

/** `tofu fmt -check -recursive infra/terraform`: exit 0 when every file is formatted. */
export function fmt({ write = false } = {}) {
  const args = ['fmt', '-recursive', ...(write ? [] : ['-check', '-diff'])];
  const status = run(tofuPath, [...args, terraformDir], { env: tofuEnv(), cwd: root });
  if (status === 0) console.log(`tofu fmt${write ? '' : ' -check'}: infra/terraform is formatted`);
  else console.error('tofu fmt -check: the files above are not formatted (node infra/tools.mjs fmt --write)');
  return status;
}

/** checkov over infra/terraform (modules, examples, root); every finding is fixed or skipped inline with its reason. */
export function checkov() {
  const r = capture(
    checkovPath,
    ['-d', terraformDir, '--framework', 'terraform', '--compact', '--quiet', '--skip-download', '-o', 'cli'],
    { cwd: root, env: { ...process.env, BC_SKIP_MAPPING: 'TRUE', CHECKOV_RUN_SCA_PACKAGE_SCAN_V2: 'false' } },
  );
  console.log(r.out);
  const m = /Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)/.exec(r.out);
  if (r.status !== 0 || !m || m[2] !== '0') {
    console.error('checkov: failed checks above (fix them, or skip inline with checkov:skip=ID:reason)');
    return r.status === 0 ? 1 : r.status;
  }
  return 0;
}

function main() {
  const [cmd = 'check', ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'install':
      install();
      return 0;
    case 'fmt':
      installTofu();
      return fmt({ write: rest.includes('--write') });
    case 'checkov':
      installCheckov();
      return checkov();
    case 'check': {
      install();
      const f = fmt();
      const c = checkov();
      return f || c;
    }
    default:
      console.error('usage: node infra/tools.mjs install|fmt [--write]|checkov|check');
      return 2;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  try {
    process.exitCode = main();
  } catch (err) {
    console.error(`infra/tools.mjs: ${err.message}`);
    process.exitCode = 1;
  }
}
