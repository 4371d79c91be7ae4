/** The `fleetgate` command as users run it: help, config validation, certs, start and drain. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Spool } from '../../gateway/ingest/spool.js';
import { connectAgent, openTransfer } from '../../loadtest/agent/raw-agent.js';
import { runFleet } from '../../loadtest/sim/fleet.js';
import { SCENARIOS } from '../../loadtest/sim/scenario.js';
import { grpc } from '../../proto/gen/elkeid.js';
import { decodeEnvelope } from '../../workers/spool-entry.js';
import { CLI_ENTRY as entry, ROOT as root, startFleetgateProcess, tempDir } from '../helpers/gateway.js';
import { BROKER, consumeAll, createTopic, kafkaReady } from '../helpers/kafka.js';

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--help on the command and every sub-command', () => {
  const top = cli(['--help']);
  assert.equal(top.code, 0);
  for (const c of ['gateway', 'all', 'certs']) assert.match(top.stdout, new RegExp(`\\b${c}\\b`));
  const gw = cli(['gateway', '--help']);
  assert.equal(gw.code, 0);
  assert.match(gw.stdout, /FLEETGATE_MAX_CONNECTIONS/);
  assert.match(gw.stdout, /SIGHUP/);
  assert.equal(cli(['certs', '--help']).code, 0);
  const unknown = cli(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
});

test('every configuration error is reported at once, exit 2', () => {
  const r = cli(['gateway'], {
    FLEETGATE_GRPC_PORT: 'abc',
    FLEETGATE_IDENTITY: 'nobody',
    FLEETGATE_KAFKA_BROKERS: 'x',
    FLEETGATE_HTTP_ENGINE: 'express',
  });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /FLEETGATE_HTTP_ENGINE=express: must be auto, uws or node/);
  assert.match(r.stderr, /FLEETGATE_GRPC_PORT=abc/);
  assert.match(r.stderr, /FLEETGATE_IDENTITY=nobody/);
  assert.match(r.stderr, /FLEETGATE_KAFKA_BROKERS/);
});

test('certs init and certs agent write Elkeid-named files', (t) => {
  const dir = tempDir(t);
  const r = cli(['certs', 'init', '--dir', dir, '--hosts', '10.1.2.3,gw.example.com']);
  assert.equal(r.code, 0, r.stderr);
  for (const f of ['ca.crt', 'ca.key', 'server.crt', 'server.key', 'client.crt', 'client.key']) {
    assert.ok(existsSync(path.join(dir, f)), f);
  }
  assert.equal(statSync(path.join(dir, 'server.key')).mode & 0o777, 0o600);
  const server = new X509Certificate(readFileSync(path.join(dir, 'server.crt')));
  assert.match(server.subjectAltName ?? '', /DNS:elkeid\.com/);
  assert.match(server.subjectAltName ?? '', /IP Address:10\.1\.2\.3/);
  assert.match(server.subjectAltName ?? '', /DNS:gw\.example\.com/);
  const again = cli(['certs', 'init', '--dir', dir]);
  assert.notEqual(again.code, 0, 'refuses to overwrite');
  const a = cli(['certs', 'agent', '--dir', dir, '--id', 'agent-7']);
  assert.equal(a.code, 0, a.stderr);
  const agentCert = new X509Certificate(readFileSync(path.join(dir, 'agent-agent-7.crt')));
  assert.match(agentCert.subject, /CN=agent-7/);
  assert.ok(agentCert.checkIssued(new X509Certificate(readFileSync(path.join(dir, 'ca.crt')))));
});

test('fleetgate gateway starts on a fresh data dir, serves an agent, drains on SIGTERM with exit 0', async (t) => {
  const { child, dataDir, port, output, tls } = await startFleetgateProcess(t, 'gateway');
  const session = await connectAgent({ host: '127.0.0.1', port }, tls);
  const s = openTransfer(session);
  s.send({ AgentID: 'cli-agent', Data: [{ DataType: 1, Timestamp: 1, Body: Buffer.from('x') }] });
  await new Promise((r) => setTimeout(r, 300));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const status = await s.status;
  assert.equal(status.code, 14, 'agent told UNAVAILABLE on shutdown');
  assert.equal(await exit, 0, output());
  session.destroy();
  // The record is durable in the spool, as the MQData that will go to Kafka.
  const spool = await Spool.open(path.join(dataDir, 'spool'));
  const entries = await spool.read(spool.pendingFrom(), 10);
  assert.equal(entries.length, 1);
  assert.equal(entries[0]?.key, 'cli-agent');
  const accepted = decodeEnvelope(entries[0]!.key, entries[0]!.value);
  assert.equal(accepted.seq, 1);
  const mq = grpc.MQData.decode(accepted.value);
  assert.equal(mq.AgentID, 'cli-agent');
  assert.equal(mq.DataType, 1);
  assert.deepEqual(Buffer.from(mq.Body), Buffer.from('x'));
  await spool.close();

  // spool stat | tail | replay, as an operator runs them after the gateway stopped.
  const env = { FLEETGATE_DATA_DIR: dataDir };
  const stat = cli(['spool', 'stat'], env);
  assert.equal(stat.code, 0, stat.stderr);
  assert.equal(JSON.parse(stat.stdout).entries, 1);
  const tail = cli(['spool', 'tail'], env);
  assert.equal(tail.code, 0, tail.stderr);
  const line = JSON.parse(tail.stdout.trim());
  assert.equal(line.AgentID, 'cli-agent');
  assert.equal(line.headers['fleetgate-seq'], 1);
  await kafkaReady();
  const topic = await createTopic(t);
  const replay = cli(['spool', 'replay', '--brokers', BROKER, '--topic', topic], env);
  assert.equal(replay.code, 0, replay.stderr);
  assert.match(replay.stdout, /1 records shipped/);
  const shipped = await consumeAll(topic, 1, 20_000);
  assert.equal(shipped.length, 1);
  assert.equal(shipped[0]?.key, 'cli-agent');
  assert.equal(
    JSON.parse(cli(['spool', 'stat'], env).stdout).entries,
    0,
    'replayed records are marked shipped',
  );
});

test('fleetgate all: discovery answers with the gateway, an agent finds it through discovery and connects', async (t) => {
  const sdBanner = /discovery\s+http:\/\/127\.0\.0\.1:(\d+)/;
  const {
    child,
    dataDir,
    port: grpcPort,
    output,
  } = await startFleetgateProcess(
    t,
    'all',
    { FLEETGATE_ADVERTISE_HOST: '127.0.0.1', FLEETGATE_SD_PORT: '0' },
    { readyMs: 30_000, ready: (out) => sdBanner.test(out) },
  );
  const sdPort = Number(sdBanner.exec(output())![1]);
  let detail: { msg: string; data: Array<{ ip: string; port: number; weight: number }> } = {
    msg: '',
    data: [],
  };
  const deadline = Date.now() + 15_000;
  while (detail.data.length === 0 && Date.now() < deadline) {
    detail = (await (
      await fetch(`http://127.0.0.1:${sdPort}/registry/detail?name=hids_svr_grpc&count=10`)
    ).json()) as typeof detail;
    if (detail.data.length === 0) await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(detail.msg, 'ok');
  assert.deepEqual(
    detail.data.map((d) => [d.ip, d.port]),
    [['127.0.0.1', grpcPort]],
  );
  // A simulated agent asks discovery, dials what it answers, and streams.
  const scenario = { ...SCENARIOS.steady!, durationS: 2, rampS: 0, eventsPerAgentPerS: 10 };
  const report = await runFleet({
    agents: 3,
    scenario,
    pkiDir: path.join(dataDir, 'pki'),
    discovery: `http://127.0.0.1:${sdPort}`,
    sourceAddresses: 1,
  });
  assert.equal(report.connects, 3);
  assert.deepEqual(report.errors, {});
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exit, 0, output());
});
