/** What sets gateway process p<i> apart (process-slot.ts), and the ports the preflight checks for N. */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { listeners } from '../../cli/preflight.js';
import {
  adoptsSlotDir,
  orphanedSpoolDirs,
  reusePortProblem,
  SLOT_ENV,
  slotControlPort,
  slotFromEnv,
  slotGatewayId,
  slotSpoolDir,
} from '../../gateway/process/process-slot.js';
import { loadConfig } from '../../platform/config/env.js';
import { ROOT, tempDir } from '../helpers/gateway.js';

test('reusePort: Node >= 22.12 (22.x) or >= 23.1, on Linux; the refusal names the version', () => {
  for (const v of ['22.12.0', '22.20.1', '23.1.0', '24.22.3', '25.0.0'])
    assert.equal(reusePortProblem(v, 'linux'), undefined, v);
  for (const v of ['20.20.2', '22.11.0', '23.0.0']) {
    assert.match(
      reusePortProblem(v, 'linux') ?? '',
      new RegExp(`Node\\.js >= 22\\.12.*this is ${v.replaceAll('.', '\\.')}`),
    );
  }
  assert.match(reusePortProblem('24.22.3', 'darwin') ?? '', /need Linux/);
});

test("the image's Node (Dockerfile NODE_IMAGE) runs several gateway processes (infra/terraform gateway_processes > 1)", () => {
  const image = /^ARG NODE_IMAGE=node:(\d+\.\d+\.\d+)-/m.exec(
    readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'),
  );
  assert.ok(image, 'the Dockerfile pins NODE_IMAGE to an exact node:<version> tag');
  assert.equal(reusePortProblem(image[1], 'linux'), undefined);
});

test('process p<i>: spool subdirectory, instance id suffix, control port base + i (0 stays 0)', () => {
  const slot = { index: 2, count: 3 };
  assert.equal(slotSpoolDir('/d/spool', slot), path.join('/d/spool', 'p2'));
  assert.equal(slotSpoolDir('/d/spool', undefined), '/d/spool');
  assert.equal(slotGatewayId('10.0.0.1:6751', slot), '10.0.0.1:6751/p2');
  assert.equal(slotGatewayId('10.0.0.1:6751', undefined), '10.0.0.1:6751');
  assert.equal(slotControlPort(6752, 2), 6754);
  assert.equal(slotControlPort(0, 2), 0);
});

test('a slot only from the supervisor: its variable, a valid index and an IPC channel', () => {
  const env = { [SLOT_ENV]: '1', FLEETGATE_PROCESSES: '2' };
  assert.deepEqual(slotFromEnv(env, true), { index: 1, count: 2 });
  assert.equal(slotFromEnv(env, false), undefined);
  assert.equal(slotFromEnv({ ...env, [SLOT_ENV]: '2' }, true), undefined);
  assert.equal(slotFromEnv({ FLEETGATE_PROCESSES: '2' }, true), undefined);
});

test('preflight ports: the supervisor checks the agent port and every control port, a child its own', () => {
  const config = loadConfig({ FLEETGATE_HOST: '127.0.0.1', FLEETGATE_PROCESSES: '3' });
  assert.deepEqual(
    listeners('gateway', config).map(([name, , port]) => `${name}:${port}`),
    [
      'FLEETGATE_GRPC_PORT:6751',
      'FLEETGATE_HTTP_PORT:6752',
      'FLEETGATE_HTTP_PORT + 1 (process p1):6753',
      'FLEETGATE_HTTP_PORT + 2 (process p2):6754',
    ],
  );
  const child = loadConfig({
    FLEETGATE_HOST: '127.0.0.1',
    FLEETGATE_PROCESSES: '3',
    FLEETGATE_HTTP_PORT: '6754',
  });
  assert.deepEqual(
    listeners('gateway', child, { index: 2, count: 3 }).map(([name, , port]) => `${name}:${port}`),
    ['FLEETGATE_HTTP_PORT:6754'],
  );
});

test('FLEETGATE_PROCESSES: an integer >= 1; the default connection limit is each process its share', () => {
  assert.throws(
    () => loadConfig({ FLEETGATE_PROCESSES: '0' }),
    /FLEETGATE_PROCESSES=0: must be an integer >= 1/,
  );
  const one = loadConfig({}).maxConnections;
  const four = loadConfig({ FLEETGATE_PROCESSES: '4' }).maxConnections;
  assert.ok(four < one && four >= Math.max(100, Math.floor(one / 4) - 1), `${one} / 4 → ${four}`);
});

test('spool adoption: each removed process p<j> has one adopter (j mod N), p0 also takes the single-process root', (t) => {
  // 4 -> 2: p2 goes to p0, p3 to p1; 3 -> 2: p2 to p0; 5 -> 2: p2, p4 to p0, p3 to p1.
  const adopters = (j: number, count: number) =>
    Array.from({ length: count }, (_, index) => index).filter((index) => adoptsSlotDir(j, { index, count }));
  assert.deepEqual(adopters(2, 2), [0]);
  assert.deepEqual(adopters(3, 2), [1]);
  assert.deepEqual(adopters(4, 2), [0]);
  for (let j = 0; j < 2; j++) assert.deepEqual(adopters(j, 2), [], `p${j} runs: its own`);
  for (let j = 0; j < 8; j++)
    assert.equal(adoptsSlotDir(j, undefined), true, 'the single process adopts every p<j>');

  const root = path.join(tempDir(t), 'spool');
  for (const name of ['p0', 'p1', 'p2', 'p3', 'p10', 'p01', 'px', 'other'])
    mkdirSync(path.join(root, name), { recursive: true });
  writeFileSync(path.join(root, 'p5'), ''); // a file, not a spool directory
  const dirs = (slot?: { index: number; count: number }) =>
    orphanedSpoolDirs(root, slot).map((o) => [path.relative(root, o.dir) || '.', o.removeWhenDrained]);
  assert.deepEqual(dirs({ index: 0, count: 2 }), [
    ['.', false],
    ['p2', true],
    ['p10', true],
  ]);
  assert.deepEqual(dirs({ index: 1, count: 2 }), [['p3', true]]);
  assert.deepEqual(dirs(undefined), [
    ['p0', true],
    ['p1', true],
    ['p2', true],
    ['p3', true],
    ['p10', true],
  ]);
  assert.deepEqual(orphanedSpoolDirs(path.join(root, 'none'), undefined), []);
});
