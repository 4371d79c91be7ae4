/**
 * bench:ingest --external-cmd (loadtest/bench/external-gateway.ts): the environment the command
 * gets, and a real stand-in command (a shell that starts a Node listener and a helper process)
 * run through startExternalGateway: it waits for the port, measures the whole process tree from
 * /proc, takes its record count from the driver, and stop() ends the tree. And bench:gateway's
 * handshakes test with --external-cmd, end to end: a stand-in HTTP/2 server as a column beside
 * ours, stormed by the Go client, with the test runner's broker.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { externalEnv, freePort, startExternalGateway } from '../../loadtest/bench/external-gateway.js';
import { BROKER, kafkaClient, kafkaReady } from '../helpers/kafka.js';

test('external gateway env: port, brokers, topic, the bench PKI files and the work directory', () => {
  assert.deepEqual(
    externalEnv({
      host: '127.0.0.1',
      port: 7000,
      brokers: ['127.0.0.1:9092', '127.0.0.1:9093'],
      topic: 'bench-t',
      pkiDir: '/pki',
      workDir: '/work',
    }),
    {
      FLEETGATE_BENCH_AGENT_HOST: '127.0.0.1',
      FLEETGATE_BENCH_AGENT_PORT: '7000',
      FLEETGATE_BENCH_KAFKA_BROKERS: '127.0.0.1:9092,127.0.0.1:9093',
      FLEETGATE_BENCH_KAFKA_TOPIC: 'bench-t',
      FLEETGATE_BENCH_TLS_CA: path.join('/pki', 'ca.crt'),
      FLEETGATE_BENCH_TLS_CERT: path.join('/pki', 'server.crt'),
      FLEETGATE_BENCH_TLS_KEY: path.join('/pki', 'server.key'),
      FLEETGATE_BENCH_WORKDIR: '/work',
    },
  );
});

// The stand-in: writes the env it saw and its helper's pid, starts a helper (a grandchild of the
// shell), then listens on the agent port.
const STAND_IN = `
const fs = require('node:fs');
const { spawn } = require('node:child_process');
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('FLEETGATE_BENCH_')));
const helper = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
fs.writeFileSync('seen.json', JSON.stringify({ env, cwd: process.cwd(), helper: helper.pid }));
require('node:net').createServer((s) => s.end()).listen(Number(env.FLEETGATE_BENCH_AGENT_PORT), env.FLEETGATE_BENCH_AGENT_HOST);
`;

/** Whether `pid` runs (a zombie has ended: only its parent has not collected it yet). */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

test('external gateway: started with the env in its work directory, measured as a tree, stopped as a group', async () => {
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'fg-ext-test-'));
  const pkiDir = mkdtempSync(path.join(os.tmpdir(), 'fg-ext-pki-'));
  try {
    const port = await freePort('127.0.0.1');
    let records = 41;
    process.env.STAND_IN_JS = STAND_IN;
    const child = await startExternalGateway({
      name: 'stand-in',
      cmd: `"${process.execPath}" -e "$STAND_IN_JS"; echo done`, // no exec: the shell stays the root
      settings: { host: '127.0.0.1', port, brokers: ['b1:9092'], topic: 't1', pkiDir, workDir },
      records: () => records,
    });
    delete process.env.STAND_IN_JS;
    const seen = JSON.parse(readFileSync(path.join(workDir, 'seen.json'), 'utf8')) as {
      env: Record<string, string>;
      cwd: string;
      helper: number;
    };
    assert.equal(seen.env.FLEETGATE_BENCH_AGENT_PORT, String(port));
    assert.equal(seen.env.FLEETGATE_BENCH_KAFKA_TOPIC, 't1');
    assert.equal(seen.env.FLEETGATE_BENCH_TLS_CA, path.join(pkiDir, 'ca.crt'));
    assert.equal(seen.cwd, workDir);
    assert.equal(child.hello.port, port);

    const stats = await child.request<{ records: number; cpuUser: number; rss: number; processes: number }>(
      'stats',
    );
    assert.equal(stats.records, 41);
    // The shell, the listener and its helper: two Node processes' RSS and start-up CPU at least.
    assert.equal(stats.processes, 3);
    assert.ok(stats.rss > 2 * 10 * 2 ** 20, `tree RSS ${stats.rss}`);
    assert.ok(stats.cpuUser > 0);
    records = 42;
    assert.equal((await child.request<{ records: number }>('gc')).records, 42);
    await assert.rejects(child.request('profile'), /answers only stats and gc/);

    assert.ok(alive(seen.helper));
    await child.stop(5000);
    assert.equal(child.alive, false);
    assert.equal(alive(seen.helper), false, 'the helper of the tree was ended too');
  } finally {
    rmSync(workDir, { recursive: true, force: true });
    rmSync(pkiDir, { recursive: true, force: true });
  }
});

test('external gateway: a command that exits before its port opens is reported with its output', async () => {
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'fg-ext-test-'));
  try {
    await assert.rejects(
      startExternalGateway({
        name: 'broken',
        cmd: 'echo "no such gateway" >&2; exit 3',
        settings: {
          host: '127.0.0.1',
          port: await freePort('127.0.0.1'),
          brokers: [],
          topic: 't',
          pkiDir: workDir,
          workDir,
        },
        records: () => 0,
      }),
      /broken: exited before its port was open\n.*no such gateway/s,
    );
    assert.ok(existsSync(workDir));
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
});

// bench:gateway --external-cmd: a stand-in gateway (a bare node:http2 server with the bench's
// TLS files from the environment, client certificate required, OK status once the client
// half-closes: what the Go handshake client needs of a server) run as a column of the
// handshakes test beside ours, through a shell that stays its root (a tree of two processes).
const STAND_IN_H2 = `
const fs = require('node:fs');
const http2 = require('node:http2');
const e = process.env;
fs.appendFileSync(e.STAND_IN_SEEN, JSON.stringify({ brokers: e.FLEETGATE_BENCH_KAFKA_BROKERS, topic: e.FLEETGATE_BENCH_KAFKA_TOPIC, cwd: process.cwd(), workDir: e.FLEETGATE_BENCH_WORKDIR }) + '\\n');
const server = http2.createSecureServer({
  key: fs.readFileSync(e.FLEETGATE_BENCH_TLS_KEY), cert: fs.readFileSync(e.FLEETGATE_BENCH_TLS_CERT),
  ca: fs.readFileSync(e.FLEETGATE_BENCH_TLS_CA), requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'],
});
server.on('sessionError', () => {});
server.on('stream', (stream) => {
  stream.on('error', () => {});
  stream.resume();
  stream.on('end', () => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end();
  });
});
server.listen(Number(e.FLEETGATE_BENCH_AGENT_PORT), e.FLEETGATE_BENCH_AGENT_HOST);
`;

/** Runs bench:gateway with `args`; resolves its exit code and output. */
function runBenchGateway(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'loadtest/bench/gateway.ts', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += String(d);
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += String(d);
  });
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('bench:gateway --external-cmd: the stand-in is stormed each round beside ours, its tree measured, its broker and topic set up and removed', async (t) => {
  await kafkaReady();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fg-ext-hs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const json = path.join(dir, 'out.json');
  const seenFile = path.join(dir, 'seen.jsonl');
  const run = await runBenchGateway(
    [
      '--tests',
      'handshakes',
      '--rounds',
      '2',
      '--duration',
      '0.6',
      '--handshake-warmup',
      '0.2',
      '--handshake-concurrency',
      '4',
      '--handshake-servers',
      'fleetgate',
      '--brokers',
      BROKER,
      '--external-name',
      'stand-in',
      '--external-cmd',
      `"${process.execPath}" -e "$STAND_IN_H2"; echo done`, // no exec: the shell stays the root
      '--json',
      json,
    ],
    { STAND_IN_H2, STAND_IN_SEEN: seenFile },
  );
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  const doc = JSON.parse(readFileSync(json, 'utf8'));
  assert.deepEqual(doc.problems, []);

  // One fresh stand-in per round, told the bench's broker and one topic, in its own directory.
  const seen = readFileSync(seenFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(seen.length, 2);
  for (const s of seen) {
    assert.equal(s.brokers, BROKER);
    assert.equal(s.topic, seen[0].topic);
    assert.equal(s.cwd, s.workDir);
  }
  assert.notEqual(seen[0].workDir, seen[1].workDir);
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    assert.ok(!(await admin.listTopics()).includes(seen[0].topic), 'the topic is deleted at the end');
  } finally {
    await admin.disconnect();
  }

  // Its column: sessions per CPU-s of its tree (shell + node) in each round, the median recorded.
  assert.equal(doc.external.name, 'stand-in');
  const ext = doc.external.results.find((r: { name: string }) => r.name === 'handshakes.per_cpu_s');
  assert.ok(ext, JSON.stringify(doc.external));
  assert.equal(ext.processes, 2);
  assert.equal(ext.runs.length, 2);
  assert.ok(ext.handshakes > 0 && ext.serverCpuS > 0, JSON.stringify(ext));
  assert.ok(ext.value > 10 && ext.value < 100_000, `${ext.value} sessions per CPU-s`);
  assert.deepEqual(doc.handshakeRounds['stand-in'], ext.runs);
  assert.equal(doc.handshakeRounds.fleetgate.length, 2);
  const ours = doc.results.find((r: { name: string }) => r.name === 'handshakes.per_cpu_s');
  assert.equal(ours.ratioToExternal, Number((ours.value / ext.value).toFixed(3)));
  assert.match(run.stdout, /fleetgate\/stand-in/);
  assert.match(run.stdout, /handshakes per round/);
});
