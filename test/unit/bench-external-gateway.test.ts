/**
 * bench:ingest --external-cmd (loadtest/bench/external-gateway.ts): the environment the command
 * gets, and a real stand-in command (a shell that starts a Node listener and a helper process)
 * run through startExternalGateway: it waits for the port, measures the whole process tree from
 * /proc, takes its record count from the driver, and stop() ends the tree.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { externalEnv, freePort, startExternalGateway } from '../../loadtest/bench/external-gateway.js';

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
