/** The choice of HTTP engine (FLEETGATE_HTTP_ENGINE) and its metric. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import {
  chooseHttpEngine,
  HttpEngineError,
  parseEngineSetting,
  recordHttpEngine,
} from '../../platform/http/http-engine.js';
import { serveUws } from '../../platform/http/uws-adapter.js';
import { loadNativeUws, type NativeLoad } from '../../platform/http/uws-native.js';
import { nativeUwsExpected } from '../helpers/runtime.js';

const NONE: NativeLoad = {
  ok: false,
  failures: [
    'uWebSockets.js: no uws_linux_x64_137.node',
    "pkg-b: does not load: version `GLIBC_2.38' not found",
  ],
};

test('FLEETGATE_HTTP_ENGINE accepts auto, uws and node, and nothing else', () => {
  assert.equal(parseEngineSetting(undefined), 'auto');
  assert.equal(parseEngineSetting(''), 'auto');
  assert.equal(parseEngineSetting('UWS'), 'uws');
  assert.equal(parseEngineSetting('node'), 'node');
  assert.throws(
    () => parseEngineSetting('express'),
    /FLEETGATE_HTTP_ENGINE=express: must be auto, uws or node/,
  );
});

test('auto falls back to node:http with a warning that says why; uws refuses; node never loads uWS', () => {
  const auto = chooseHttpEngine('auto', () => NONE);
  assert.equal(auto.name, 'node');
  assert.ok(auto.name === 'node' && auto.warning);
  assert.match(auto.warning, /GLIBC_2\.38/);
  assert.match(auto.warning, /no uws_linux_x64_137\.node/);
  assert.match(auto.warning, /FLEETGATE_HTTP_ENGINE=uws/);

  assert.throws(
    () => chooseHttpEngine('uws', () => NONE),
    (err: Error) =>
      err instanceof HttpEngineError && /glibc >= 2\.38/.test(err.message) && /GLIBC_2\.38/.test(err.message),
  );

  const node = chooseHttpEngine('node', () => assert.fail('node must not load uWS'));
  assert.deepEqual([node.name, 'warning' in node], ['node', false]);
});

test('on this runtime, auto picks uWS exactly when a native binary is expected to load', () => {
  const engine = chooseHttpEngine('auto', loadNativeUws);
  assert.equal(engine.name, nativeUwsExpected() ? 'uws' : 'node');
});

test('fleetgate_http_engine is 1 for the engine in use, 0 for the other, on every registry given', async (t) => {
  const registry = new Registry();
  const warnings: string[] = [];
  const server = await serveUws(() => ({ status: 200, body: 'ok' }), {
    host: '127.0.0.1',
    port: 0,
    engine: 'node',
    registry,
    logger: { warn: (_o: unknown, msg?: string) => warnings.push(String(msg)) } as never,
  });
  t.after(() => server.close());
  assert.equal(server.engine, 'node');
  const text = await registry.metrics();
  assert.match(text, /fleetgate_http_engine\{engine="node"\} 1/);
  assert.match(text, /fleetgate_http_engine\{engine="uws"\} 0/);
  assert.deepEqual(warnings, [], 'node:http asked for is not a fallback');
  recordHttpEngine(registry, 'uws'); // a second listener in the same process reuses the gauge
  assert.match(await registry.metrics(), /fleetgate_http_engine\{engine="uws"\} 1/);
  assert.equal((await fetch(`http://127.0.0.1:${server.port}/`)).status, 200);
});
