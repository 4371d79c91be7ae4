// The infrastructure checks of `npm run check:infra`, with the Terraform CLI installed on the
// machine and the AWS provider from a local filesystem mirror (no registry download), and checkov
// from PyPI in a virtualenv under infra/.tools/ (gitignored).
//
//   node infra/tools.mjs install          find terraform and the provider mirror, install checkov
//   node infra/tools.mjs fmt [--write]    terraform fmt -check -recursive infra/terraform (or rewrite)
//   node infra/tools.mjs validate         terraform init (from the mirror, lock file read-only) +
//                                         validate, in the root module and every example
//   node infra/tools.mjs test             terraform test there: plans with the AWS provider mocked
//                                         (infra/terraform/mocks), asserting sizing and options
//   node infra/tools.mjs docs [--check]   the inputs/outputs tables of each module's README
//   node infra/tools.mjs checkov          checkov over infra/terraform; fails on any failed check
//   node infra/tools.mjs check            all of the above (what `npm run check:infra` runs)
//
// Environment: FLEETGATE_TERRAFORM names the terraform binary (default: `terraform` on PATH);
// FLEETGATE_TF_PLUGIN_MIRROR the provider mirror directory (default: the first of Terraform's
// implicit local mirror directories, or a directory directly under /opt, that holds
// registry.terraform.io/hashicorp/aws); without one, terraform init uses the registry.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { moduleDocs } from './module-docs.mjs';

export const CHECKOV_VERSION = '3.3.30';
/** The checks: terraform test with mock_provider and override_during (1.11); the configuration itself needs 1.9 (versions.tf). */
export const TERRAFORM_MIN = [1, 11, 0];
/** The provider versions the configuration accepts (versions.tf): what a mirror must hold. */
const AWS_PROVIDER_OK = (v) => /^(5\.(1\d\d|[2-9]\d\d)|6)\./.test(v);

const root = path.join(import.meta.dirname, '..');
const toolsDir = path.join(import.meta.dirname, '.tools');
const venvDir = path.join(toolsDir, 'venv');
const terraformDir = path.join(import.meta.dirname, 'terraform');
export const checkovPath = path.join(venvDir, 'bin', 'checkov');
const cliConfig = path.join(toolsDir, 'terraformrc');
const terraformBin = process.env.FLEETGATE_TERRAFORM ?? 'terraform';

/**
 * What is initialised, validated and tested: the root module (its tests/ plan its options) and
 * each example (a root configuration of its own, planned by its tests/), each with its committed
 * lock file.
 */
export function configurations() {
  const dir = path.join(terraformDir, 'examples');
  return [
    terraformDir,
    ...readdirSync(dir)
      .filter((name) => statSync(path.join(dir, name)).isDirectory())
      .sort()
      .map((name) => path.join(dir, name)),
  ];
}

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

const rel = (p) => path.relative(root, p) || '.';

/** Directories that hold registry.terraform.io/hashicorp/aws/<version>/<os_arch>/ with an accepted version. */
function mirrorHasAws(dir) {
  const aws = path.join(dir, 'registry.terraform.io', 'hashicorp', 'aws');
  if (!existsSync(aws)) return false;
  const platform = `${process.platform}_${process.arch === 'x64' ? 'amd64' : process.arch}`;
  return readdirSync(aws).some((v) => AWS_PROVIDER_OK(v) && existsSync(path.join(aws, v, platform)));
}

/** The provider mirror: FLEETGATE_TF_PLUGIN_MIRROR, Terraform's implicit local mirrors, or /opt/<dir>. */
export function findMirror() {
  if (process.env.FLEETGATE_TF_PLUGIN_MIRROR) return process.env.FLEETGATE_TF_PLUGIN_MIRROR;
  const home = os.homedir();
  const candidates = [
    path.join(home, '.terraform.d', 'plugins'),
    path.join(home, '.local', 'share', 'terraform', 'plugins'),
    '/usr/local/share/terraform/plugins',
    '/usr/share/terraform/plugins',
  ];
  try {
    for (const name of readdirSync('/opt').sort()) candidates.push(path.join('/opt', name));
  } catch {
    // no /opt
  }
  return candidates.find((dir) => {
    try {
      return mirrorHasAws(dir);
    } catch {
      return false;
    }
  });
}

/** The Terraform CLI configuration the checks run with: the mirror only, when there is one. */
function terraformEnv() {
  mkdirSync(toolsDir, { recursive: true });
  const mirror = findMirror();
  writeFileSync(
    cliConfig,
    mirror
      ? `provider_installation {\n  filesystem_mirror {\n    path    = ${JSON.stringify(mirror)}\n    include = ["registry.terraform.io/hashicorp/*"]\n  }\n}\n`
      : '',
  );
  return { ...process.env, TF_CLI_CONFIG_FILE: cliConfig, CHECKPOINT_DISABLE: '1', TF_IN_AUTOMATION: '1' };
}

export function terraformVersion() {
  const r = capture(terraformBin, ['version', '-json']);
  if (r.status !== 0) return undefined;
  try {
    return JSON.parse(r.stdout).terraform_version;
  } catch {
    return undefined;
  }
}

function requireTerraform() {
  const v = terraformVersion();
  if (!v) {
    throw new Error(
      `${terraformBin} not found: install the Terraform CLI ${TERRAFORM_MIN.join('.')} or later (or set FLEETGATE_TERRAFORM)`,
    );
  }
  const have = v.split('.').map(Number);
  const older = TERRAFORM_MIN.findIndex((n, i) => (have[i] ?? 0) !== n);
  if (older >= 0 && (have[older] ?? 0) < TERRAFORM_MIN[older]) {
    throw new Error(
      `terraform ${v} is older than ${TERRAFORM_MIN.join('.')} (terraform test needs mock_provider)`,
    );
  }
  return v;
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
  console.log(`installing checkov ${CHECKOV_VERSION} from PyPI into ${rel(venvDir)} (first time only)...`);
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
  const mirror = findMirror();
  const results = [
    { tool: 'terraform', version: requireTerraform(), how: terraformBin },
    {
      tool: 'aws provider',
      version: '',
      how: mirror ? `filesystem mirror ${mirror}` : 'registry (no local mirror found)',
    },
    installCheckov(),
  ];
  for (const r of results) console.log(`${r.tool} ${r.version} (${r.how})`.replace('  ', ' '));
  return results;
}

/** `terraform fmt -check -recursive infra/terraform` (.tf and .tftest.hcl): exit 0 when formatted. */
export function fmt({ write = false } = {}) {
  const args = ['fmt', '-recursive', ...(write ? [] : ['-check', '-diff'])];
  const status = run(terraformBin, [...args, terraformDir], { env: terraformEnv(), cwd: root });
  if (status === 0) console.log(`terraform fmt${write ? '' : ' -check'}: infra/terraform is formatted`);
  else console.error('terraform fmt -check: the files above are not formatted (npm run fmt:infra)');
  return status;
}

function step(label, dir, args, env) {
  const started = Date.now();
  process.stdout.write(`${label} ${rel(dir)} ... `);
  const r = capture(terraformBin, args, { cwd: dir, env });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (r.status === 0) {
    console.log(`ok (${secs} s)`);
    return 0;
  }
  console.log(`FAILED (${secs} s)\n${r.out}`);
  return r.status || 1;
}

/**
 * terraform init from the mirror in each example, with its committed lock file read-only (a
 * provider the lock does not list fails here instead of being recorded), then validate.
 */
export function validate() {
  const env = terraformEnv();
  let failed = 0;
  for (const dir of configurations()) {
    const init = step(
      'terraform init',
      dir,
      ['init', '-backend=false', '-input=false', '-no-color', '-lockfile=readonly'],
      env,
    );
    failed ||= init;
    if (init === 0) failed ||= step('terraform validate', dir, ['validate', '-no-color'], env);
  }
  return failed;
}

/** The Lambda zips the examples point at must exist for a plan (filebase64sha256). */
function ensureLambdaZips() {
  const dir = path.join(root, 'dist', 'lambda');
  const missing = ['discovery', 'manager', 'dispatcher'].filter(
    (n) => !existsSync(path.join(dir, `${n}.zip`)),
  );
  if (missing.length === 0) return 0;
  console.log(
    `building the Lambda bundles the plans hash (${missing.join(', ')} missing): npm run build:lambda`,
  );
  return run(process.execPath, [path.join(root, 'scripts', 'build-lambda.mjs')], { cwd: root });
}

/** terraform test in each example: tests/*.tftest.hcl plan it with the AWS provider mocked. */
export function test() {
  const env = terraformEnv();
  const built = ensureLambdaZips();
  if (built !== 0) return built;
  let failed = 0;
  for (const dir of configurations()) {
    if (!existsSync(path.join(dir, '.terraform'))) {
      failed ||= step(
        'terraform init',
        dir,
        ['init', '-backend=false', '-input=false', '-no-color', '-lockfile=readonly'],
        env,
      );
    }
    failed ||= step('terraform test (mocked AWS provider, plan)', dir, ['test', '-no-color'], env);
  }
  return failed;
}

/**
 * The plans of one test file of the root module (tests/<file>), from `terraform test -json
 * -verbose`: run name -> the plan (resource_changes, output_changes) as `terraform show -json`
 * writes it. Throws with Terraform's diagnostics when a run fails.
 */
export function plannedRuns(file) {
  const env = terraformEnv();
  requireTerraform();
  if (ensureLambdaZips() !== 0) throw new Error('npm run build:lambda failed');
  const init = ['init', '-backend=false', '-input=false', '-no-color', '-lockfile=readonly'];
  if (!existsSync(path.join(terraformDir, '.terraform'))) {
    const r = capture(terraformBin, init, { cwd: terraformDir, env });
    if (r.status !== 0) throw new Error(`terraform init: ${r.out}`);
  }
  const r = capture(terraformBin, ['test', '-json', '-verbose', '-no-color', `-filter=tests/${file}`], {
    cwd: terraformDir,
    env,
    maxBuffer: 1 << 30,
  });
  const runs = new Map();
  const errors = [];
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const msg = JSON.parse(line);
    if (msg.test_plan) runs.set(msg['@testrun'], msg.test_plan);
    if (msg['@level'] === 'error')
      errors.push(`${msg['@testrun'] ?? ''}: ${msg['@message']} ${msg.diagnostic?.detail ?? ''}`);
  }
  if (r.status !== 0 || errors.length > 0) {
    throw new Error(`terraform test tests/${file} failed:\n${errors.join('\n') || r.out.slice(-4000)}`);
  }
  return runs;
}

/** checkov over infra/terraform (modules, examples, root); every finding is fixed or skipped inline with its reason. */
export function checkov() {
  process.stdout.write('checkov over infra/terraform ... ');
  const started = Date.now();
  const r = capture(
    checkovPath,
    ['-d', terraformDir, '--framework', 'terraform', '--compact', '--quiet', '--skip-download', '-o', 'cli'],
    { cwd: root, env: { ...process.env, BC_SKIP_MAPPING: 'TRUE', CHECKOV_RUN_SCA_PACKAGE_SCAN_V2: 'false' } },
  );
  console.log(`(${((Date.now() - started) / 1000).toFixed(0)} s)\n${r.out}`);
  const m = /Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)/.exec(r.out);
  if (r.status !== 0 || !m || m[2] !== '0') {
    console.error('checkov: failed checks above (fix them, or skip inline with checkov:skip=ID:reason)');
    return r.status === 0 ? 1 : r.status;
  }
  return 0;
}

const HELP = `usage: node infra/tools.mjs [install|fmt [--write]|validate|test|checkov|check]

  install    find terraform (FLEETGATE_TERRAFORM) and the AWS provider mirror
             (FLEETGATE_TF_PLUGIN_MIRROR), install checkov ${CHECKOV_VERSION} into infra/.tools/venv
  fmt        terraform fmt -check -recursive infra/terraform (--write rewrites)
  validate   terraform init (mirror, lock file read-only) + validate: root module, each example
  test       terraform test there: plans with the AWS provider mocked
  docs       rewrite each module README's inputs/outputs tables (--check: fail when stale)
  checkov    checkov over infra/terraform; fails on any failed check
  check      all of the above (npm run check:infra; the default)`;

/** The modules' README tables against their variables.tf / outputs.tf. */
async function docs({ write }) {
  const stale = await moduleDocs(terraformDir, { write });
  if (stale.length === 0) console.log('module READMEs: inputs and outputs are current');
  else if (write) console.log(`rewrote ${stale.map(rel).join(', ')}`);
  else console.error(`stale module READMEs (node infra/tools.mjs docs): ${stale.map(rel).join(', ')}`);
  return write || stale.length === 0 ? 0 : 1;
}

async function main() {
  const [cmd = 'check', ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'install':
      install();
      return 0;
    case 'fmt':
      requireTerraform();
      return fmt({ write: rest.includes('--write') });
    case 'validate':
      requireTerraform();
      return validate();
    case 'test':
      requireTerraform();
      return test();
    case 'docs':
      return docs({ write: !rest.includes('--check') });
    case 'checkov':
      installCheckov();
      return checkov();
    case 'check': {
      install();
      const d = await docs({ write: false });
      const f = fmt() || d;
      const v = validate();
      const t = v === 0 ? test() : v;
      const c = checkov();
      return f || v || t || c;
    }
    case '--help':
    case 'help':
      console.log(HELP);
      return 0;
    default:
      console.error(HELP);
      return 2;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  try {
    process.exitCode = await main();
  } catch (err) {
    console.error(`infra/tools.mjs: ${err.message}`);
    process.exitCode = 1;
  }
}
