// The first step of `npm test`: the tools the suite needs besides Node and npm, each checked, with
// one line naming whatever is missing (README.md, "Prerequisites"). A tool needed only to make
// something that is already there (a cached build, a broker given in FLEETGATE_TEST_KAFKA) is not
// required.
//
//   node scripts/check-prereqs.mjs   exit 0: all there; 1: the missing ones on one line
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

const root = path.join(import.meta.dirname, '..');

if (process.argv.includes('--help')) {
  console.log(
    'usage: node scripts/check-prereqs.mjs   (checks the tools npm test needs; README.md, Prerequisites)',
  );
  process.exit(0);
}

function output(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? `${r.stdout}${r.stderr}` : undefined;
}

function atLeast(version, min) {
  const have = version.split('.').map(Number);
  for (let i = 0; i < min.length; i++) {
    if ((have[i] ?? 0) !== min[i]) return (have[i] ?? 0) > min[i];
  }
  return true;
}

function javaVersion() {
  const home = process.env.JAVA_HOME;
  const java = home && existsSync(path.join(home, 'bin', 'java')) ? path.join(home, 'bin', 'java') : 'java';
  const m = /version "(?:1\.)?(\d+)/.exec(output(java, ['-version']) ?? '');
  return m ? Number(m[1]) : undefined;
}

const kafkaGiven = (process.env.FLEETGATE_TEST_KAFKA ?? '').trim() !== '';
const kafkaJarsCached = (() => {
  try {
    return readdirSync(path.join(root, 'infra', 'local', 'cache', 'kafka')).some((f) => f.endsWith('.jar'));
  } catch {
    return false;
  }
})();
const checkovInstalled = existsSync(path.join(root, 'infra', '.tools', 'venv', 'bin', 'checkov'));

/** [what, why, needed, present] per prerequisite. */
const PREREQS = [
  [
    'Java 17+ (java on PATH or JAVA_HOME)',
    'runs the test Kafka broker',
    !kafkaGiven,
    () => (javaVersion() ?? 0) >= 17,
  ],
  [
    'Maven (mvn)',
    'fetches the Kafka jars once',
    !kafkaGiven && !kafkaJarsCached,
    () => output('mvn', ['-v']) !== undefined,
  ],
  [
    'Go 1.26+ (go)',
    'builds the Go interop agent (loadtest/goagent) the protocol tests run',
    true,
    () => {
      const m = /go(\d+\.\d+(?:\.\d+)?)/.exec(output('go', ['version']) ?? '');
      return m !== null && atLeast(m[1], [1, 26]);
    },
  ],
  [
    'Terraform 1.9+ (terraform) with the AWS provider in a filesystem mirror',
    'validates and plans infra/terraform in check:infra',
    true,
    () => {
      const m = /Terraform v(\d+\.\d+(?:\.\d+)?)/.exec(
        output(process.env.FLEETGATE_TERRAFORM || 'terraform', ['version']) ?? '',
      );
      return m !== null && atLeast(m[1], [1, 9]);
    },
  ],
  [
    'Chromium (apt-get install -y chromium, or CHROMIUM_PATH)',
    'runs the operator console browser test',
    true,
    () => existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'),
  ],
  [
    'Python 3 with venv (python3)',
    'installs checkov once for check:infra',
    !checkovInstalled,
    () => output('python3', ['-m', 'venv', '--help']) !== undefined,
  ],
];

const missing = PREREQS.filter(([, , needed, present]) => needed && !present()).map(
  ([what, why]) => `${what}: ${why}`,
);
if (missing.length > 0) {
  console.error(`npm test: missing prerequisites (README.md, Prerequisites): ${missing.join('; ')}`);
  process.exit(1);
}
