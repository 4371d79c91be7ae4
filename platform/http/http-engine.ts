/**
 * Which server carries the HTTP APIs (control API, discovery, manager): native uWebSockets.js
 * where a binary loads for this Node ABI and glibc (uws-native.ts), else node:http behind the same
 * Handler shape, so fleetgate runs on every supported Node. FLEETGATE_HTTP_ENGINE chooses:
 *
 *   auto (default)  uWS when it loads, else node:http with a warning
 *   uws             uWS or refuse to start (operators who want to be sure of the fast path)
 *   node            node:http (for comparisons and tests)
 *
 * The choice is made once per process and is visible as the metric `fleetgate_http_engine`.
 */
import { Gauge, type Registry } from 'prom-client';
import { loadNativeUws, type NativeLoad, type NativeUws } from './uws-native.js';

export type HttpEngineName = 'uws' | 'node';
export const HTTP_ENGINE_SETTINGS = ['auto', 'uws', 'node'] as const;
export type HttpEngineSetting = (typeof HTTP_ENGINE_SETTINGS)[number];

export type HttpEngine =
  | { name: 'uws'; uws: NativeUws; detail: string }
  | { name: 'node'; detail: string /** Set when uWS was wanted (auto) but none loads. */; warning?: string };

export class HttpEngineError extends Error {
  override name = 'HttpEngineError';
}

export function parseEngineSetting(raw: string | undefined): HttpEngineSetting {
  const value = (raw ?? 'auto').trim().toLowerCase() || 'auto';
  if (!(HTTP_ENGINE_SETTINGS as readonly string[]).includes(value)) {
    throw new HttpEngineError(`FLEETGATE_HTTP_ENGINE=${raw}: must be auto, uws or node`);
  }
  return value as HttpEngineSetting;
}

/** The engine for `setting`, given what loading the native binary gave (`load` is lazy: node never loads it). */
export function chooseHttpEngine(setting: HttpEngineSetting, load: () => NativeLoad): HttpEngine {
  if (setting === 'node') return { name: 'node', detail: 'node:http (FLEETGATE_HTTP_ENGINE=node)' };
  const native = load();
  if (native.ok) {
    return {
      name: 'uws',
      uws: native.uws,
      detail: `uWebSockets.js ${native.version} (${native.packageName})`,
    };
  }
  const why = native.failures.join('; ');
  const runtime = `Node ${process.versions.node} (ABI ${process.versions.modules}, ${process.platform}-${process.arch}, glibc ${glibcVersion() ?? 'none'})`;
  if (setting === 'uws') {
    throw new HttpEngineError(
      `FLEETGATE_HTTP_ENGINE=uws but no native uWebSockets.js binary loads on ${runtime}: ${why}. ` +
        'Run on Node 20 (any glibc) or Node 22/24 with glibc >= 2.38 (e.g. the node:24-trixie-slim image), ' +
        'or unset FLEETGATE_HTTP_ENGINE to serve on node:http.',
    );
  }
  return {
    name: 'node',
    detail: 'node:http (no native uWebSockets.js for this runtime)',
    warning:
      `no native uWebSockets.js binary loads on ${runtime}: ${why}. The HTTP APIs run on node:http ` +
      '(same behaviour, less throughput); FLEETGATE_HTTP_ENGINE=uws makes the native engine mandatory.',
  };
}

export function glibcVersion(): string | undefined {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
    ?.header;
  return header?.glibcVersionRuntime;
}

let processEngine: HttpEngine | undefined;

/** The process's engine, from FLEETGATE_HTTP_ENGINE (decided on first use; throws HttpEngineError). */
export function httpEngine(): HttpEngine {
  processEngine ??= chooseHttpEngine(parseEngineSetting(process.env.FLEETGATE_HTTP_ENGINE), loadNativeUws);
  return processEngine;
}

/** Why the process's engine cannot be had (FLEETGATE_HTTP_ENGINE=uws without a binary), else undefined. */
export function httpEngineProblem(): string | undefined {
  try {
    httpEngine();
    return undefined;
  } catch (err) {
    if (err instanceof HttpEngineError) return err.message;
    throw err;
  }
}

/** `fleetgate_http_engine{engine}`: 1 for the engine in use, 0 for the other (once per registry). */
export function recordHttpEngine(registry: Registry, engine: HttpEngineName): void {
  const name = 'fleetgate_http_engine';
  const gauge =
    (registry.getSingleMetric(name) as Gauge<'engine'> | undefined) ??
    new Gauge({
      name,
      help: 'The server of the HTTP APIs: 1 on the engine in use (uws: native uWebSockets.js, node: node:http fallback)',
      labelNames: ['engine'],
      registers: [registry],
    });
  for (const e of ['uws', 'node'] as const) gauge.set({ engine: e }, e === engine ? 1 : 0);
}
