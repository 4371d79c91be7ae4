/**
 * The embedded store (dynalite, no authentication of its own) must be reachable
 * by the fleetgate process only. A real `fleetgate all` runs; a second local account (uid 65534,
 * when the tests run as root) tries every TCP port the process listens on and the store's unix
 * socket with a DynamoDB ListTables, as `fleetgate users add x --role admin` would. None may
 * answer as DynamoDB. The account running fleetgate still reaches its own store with
 * `fleetgate users` (the private socket).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { CLI_ENTRY, ROOT, startFleetgateProcess, tempDir, waitFor } from '../helpers/gateway.js';

/** TCP ports in LISTEN state whose sockets belong to `pid` (from /proc, as root or the owner). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== '0A' || !inodes.has(cols[9]!)) continue;
      ports.add(Number.parseInt(cols[1]!.split(':')[1]!, 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}

/** Run by the other account: tries each target with a DynamoDB ListTables, prints what happened. */
const PROBE = `
const http = require('node:http');
const targets = JSON.parse(process.argv[1]);
const body = '{}';
const one = (t) => new Promise((resolve) => {
  const req = http.request({ ...t, method: 'POST', path: '/', timeout: 3000, headers: {
    host: 'localhost', 'content-type': 'application/x-amz-json-1.0', 'content-length': 2,
    'x-amz-target': 'DynamoDB_20120810.ListTables', 'x-amz-date': '20200101T000000Z',
    authorization: 'AWS4-HMAC-SHA256 Credential=x/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00' } },
    (res) => { let text = ''; res.on('data', (c) => text += c); res.on('end', () => resolve({ t, status: res.statusCode, dynamo: /TableNames/.test(text) })); });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => resolve({ t, error: e.code || e.message }));
  req.end(body);
});
Promise.all(targets.map(one)).then((r) => console.log(JSON.stringify({ uid: process.getuid(), results: r })));
`;

const runningAsRoot = process.getuid?.() === 0;

/**
 * A Node binary the probing account (nobody) can execute: this one, unless it sits below a
 * directory private to us (e.g. Node 24 installed into a checkout under a 0700 `mktemp -d`),
 * in which case a copy in a world-readable temporary directory.
 */
function nodeForNobody(t: TestContext): string {
  const ok = spawnSync(process.execPath, ['-e', '0'], { cwd: '/', uid: 65534, gid: 65534 });
  if (ok.status === 0) return process.execPath;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fg-probe-node-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const copy = path.join(dir, 'node');
  copyFileSync(process.execPath, copy);
  chmodSync(copy, 0o755);
  return copy;
}

test('embedded store: no other local account reaches it; the running account does, through the private socket', async (t) => {
  const { child, dataDir, output } = await startFleetgateProcess(
    t,
    'all',
    { FLEETGATE_SD_PORT: '0', FLEETGATE_MANAGER_PORT: '0', FLEETGATE_LOG_LEVEL: 'info' },
    { ready: (out) => /manager API/.test(out) },
  );
  const ports = listeningPorts(child.pid!);
  assert.ok(ports.length >= 4, `grpc, control, discovery, manager at least: ${ports} ${output()}`);
  const socketPath = path.join(dataDir, 'run', 'dynamodb.sock');

  const targets = [...ports.map((port) => ({ host: '127.0.0.1', port })), { socketPath }];
  // As root the probe runs as nobody (uid 65534): a second local user, as in the report. Without
  // root, every TCP target is still open to any local user, so the probe as ourselves proves
  // the same for them; the socket's protection is then the directory mode asserted above.
  const probeNode = runningAsRoot ? nodeForNobody(t) : process.execPath;
  const probe = spawnSync(probeNode, ['-e', PROBE, JSON.stringify(targets)], {
    encoding: 'utf8',
    timeout: 20_000,
    cwd: '/',
    ...(runningAsRoot ? { uid: 65534, gid: 65534 } : {}),
  });
  assert.equal(probe.status, 0, probe.stderr);
  const { uid, results } = JSON.parse(probe.stdout) as {
    uid: number;
    results: Array<{ t: object; status?: number; dynamo?: boolean; error?: string }>;
  };
  if (runningAsRoot) assert.equal(uid, 65534);
  for (const r of results) {
    if ('socketPath' in r.t && runningAsRoot) {
      assert.equal(r.error, 'EACCES', `the other account cannot connect to the socket: ${JSON.stringify(r)}`);
    }
    assert.notEqual(r.dynamo, true, `answered as DynamoDB to uid ${uid}: ${JSON.stringify(r)}`);
    assert.ok(r.status !== 200 || !('socketPath' in r.t), JSON.stringify(r));
  }

  assert.ok(statSync(socketPath).isSocket(), 'the store listens on its unix socket');
  assert.equal(statSync(path.dirname(socketPath)).mode & 0o777, 0o700, 'in a private directory');
  assert.doesNotMatch(output(), /dynalite\) listening|"endpoint":"http:\/\/127/, 'no store port logged');

  // Item 13: nothing under the data dir is open to other accounts but the certificates.
  const open: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      const mode = statSync(p).mode & 0o777;
      if (e.isDirectory()) {
        if (mode !== 0o700) open.push(`${p} ${mode.toString(8)}`);
        walk(p);
      } else if (!e.name.endsWith('.crt') && !e.isSocket() && (mode & 0o077) !== 0) {
        open.push(`${p} ${mode.toString(8)}`);
      }
    }
  };
  assert.equal(statSync(dataDir).mode & 0o777, 0o700, 'the data dir is private');
  walk(dataDir);
  assert.ok(readdirSync(path.join(dataDir, 'dynamodb')).length > 0, 'the store wrote files');
  assert.deepEqual(open, [], 'directories 0700, data files 0600');

  // The account running fleetgate manages users while it runs (no LevelDB lock conflict).
  const cli = spawn(
    process.execPath,
    ['--import', 'tsx', CLI_ENTRY, 'users', 'add', 'ops1', '--role', 'operator'],
    {
      cwd: ROOT,
      env: { ...process.env, FLEETGATE_DATA_DIR: dataDir, FLEETGATE_LOG_LEVEL: 'warn' },
    },
  );
  let cliOut = '';
  cli.stdout.on('data', (d) => {
    cliOut += String(d);
  });
  cli.stderr.on('data', (d) => {
    cliOut += String(d);
  });
  const code = await new Promise<number | null>((r) => cli.once('exit', r));
  assert.equal(code, 0, cliOut);
  assert.match(cliOut, /created ops1 \(operator\)/);
});

/** Local addresses (`ip:port`) of the TCP sockets `pid` listens on. */
function listeningAddresses(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const out: string[] = [];
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 10 || cols[3] !== '0A' || !inodes.has(cols[9]!)) continue;
    const [hex, port] = cols[1]!.split(':') as [string, string];
    const ip = [3, 2, 1, 0].map((i) => Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join('.');
    out.push(`${ip}:${Number.parseInt(port, 16)}`);
  }
  return out;
}

test('fleetgate all on every interface: the manager and control APIs stay on loopback, and the banner says so', async (t) => {
  const dataDir = tempDir(t);
  const child = spawn(process.execPath, ['--import', 'tsx', CLI_ENTRY, 'all'], {
    cwd: ROOT,
    env: {
      ...process.env,
      FLEETGATE_DATA_DIR: dataDir,
      FLEETGATE_HOST: '0.0.0.0',
      FLEETGATE_GRPC_PORT: '0',
      FLEETGATE_HTTP_PORT: '0',
      FLEETGATE_SD_PORT: '0',
      FLEETGATE_MANAGER_PORT: '0',
      FLEETGATE_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d) => {
    out += String(d);
  });
  child.stderr.on('data', (d) => {
    out += String(d);
  });
  await waitFor(() => /loopback only/.test(out) || child.exitCode !== null, 30_000, 'banner');
  const port = (re: RegExp) => Number(re.exec(out)?.[1]);
  const manager = port(/manager API\s+http:\/\/127\.0\.0\.1:(\d+)/);
  const control = port(/control API\s+http:\/\/127\.0\.0\.1:(\d+)/);
  const grpc = port(/agent gRPC \(mTLS\)\s+0\.0\.0\.0:(\d+)/);
  assert.ok(manager > 0 && control > 0 && grpc > 0, out);
  const bound = listeningAddresses(child.pid!);
  assert.ok(bound.includes(`127.0.0.1:${manager}`), `manager on loopback: ${bound}`);
  assert.ok(bound.includes(`127.0.0.1:${control}`), `control API on loopback: ${bound}`);
  assert.ok(bound.includes(`0.0.0.0:${grpc}`), `agents' gRPC on every interface: ${bound}`);
});
