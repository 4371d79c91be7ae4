/** docs/hardening.md §1 test 1: the runtime carries the HTTP/2 and TLS fixes the gateway relies on. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const atLeast = (v: string, min: number[]) => {
  const parts = v.split('.').map(Number);
  for (let i = 0; i < min.length; i++) {
    if ((parts[i] ?? 0) !== min[i]) return (parts[i] ?? 0) > min[i]!;
  }
  return true;
};

test('Node >= 20.20.2 and nghttp2 >= 1.61.0', () => {
  assert.ok(atLeast(process.versions.node, [20, 20, 2]), `node ${process.versions.node}`);
  assert.ok(atLeast(process.versions.nghttp2 ?? '0', [1, 61, 0]), `nghttp2 ${process.versions.nghttp2}`);
});

test('bin/fleetgate.js refuses an older runtime before loading anything', () => {
  const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../bin/fleetgate.js');
  // Pretend to be an old Node by overriding process.versions before the bin runs.
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.11.0"})',
      bin,
      '--help',
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 1);
  assert.match(r.stderr, /needs Node\.js >= 20\.20\.2/);
});
