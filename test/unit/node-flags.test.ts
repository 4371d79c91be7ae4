/** The gateway's Node/V8 flags (gateway/process/node-flags.ts): one list, every launch path. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { gatewayBanner } from '../../gateway/process/banner.js';
import {
  GATEWAY_NODE_FLAGS,
  missingGatewayNodeFlags,
  withGatewayNodeFlags,
} from '../../gateway/process/node-flags.js';
import { writeBenchPki } from '../../loadtest/bench/bench-setup.js';
import { loadConfig } from '../../platform/config/env.js';

const root = path.resolve(import.meta.dirname, '..', '..');

test('a child gets the flags its parent lacks, once; an operator value of its own is kept', () => {
  assert.deepEqual(withGatewayNodeFlags([]), [...GATEWAY_NODE_FLAGS]);
  assert.deepEqual(withGatewayNodeFlags(['--import', 'tsx']), ['--import', 'tsx', ...GATEWAY_NODE_FLAGS]);
  assert.deepEqual(withGatewayNodeFlags(GATEWAY_NODE_FLAGS), [...GATEWAY_NODE_FLAGS]);
  // V8 accepts underscores for dashes; a different size is the operator's choice.
  assert.deepEqual(withGatewayNodeFlags(['--initial_old_space_size=512']), ['--initial_old_space_size=512']);
  assert.deepEqual(missingGatewayNodeFlags(['--initial-old-space-size=64']), []);
  assert.deepEqual(missingGatewayNodeFlags(['--max-old-space-size=4096']), [...GATEWAY_NODE_FLAGS]);
});

test('the image and the Terraform start script start the gateway with every flag', () => {
  const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(path.join(root, 'Dockerfile'), 'utf8'))?.[1];
  assert.ok(cmd, 'the Dockerfile has a CMD');
  const argv = JSON.parse(cmd) as string[];
  assert.deepEqual(argv.slice(0, 1 + GATEWAY_NODE_FLAGS.length), ['node', ...GATEWAY_NODE_FLAGS]);
  assert.deepEqual(argv.slice(-2), ['bin/fleetgate.js', 'gateway']);
  const tf = readFileSync(path.join(root, 'infra/terraform/modules/gateways/main.tf'), 'utf8');
  assert.match(tf, new RegExp(`exec node ${GATEWAY_NODE_FLAGS.join(' ')} bin/fleetgate\\.js gateway`));
});

test('the banner says when the gateway was started without them', async () => {
  const pki = mkdtempSync(path.join(os.tmpdir(), 'fg-flags-'));
  await writeBenchPki(pki);
  const config = loadConfig({ FLEETGATE_PKI_DIR: pki });
  const input = { grpcPort: 6751, controlPort: 6752, sinkName: 'kafka', registered: true };
  const without = gatewayBanner(config, { ...input, execArgv: [] }).join('\n');
  assert.match(without, /started without --initial-old-space-size=128: more full GCs/);
  const withFlags = gatewayBanner(config, { ...input, execArgv: [...GATEWAY_NODE_FLAGS] }).join('\n');
  assert.doesNotMatch(withFlags, /node flags/);
});
