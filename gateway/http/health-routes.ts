/**
 * The routes every HTTP listener of the project answers (contract.md): Elkeid's `/ping`,
 * liveness, readiness and Prometheus metrics.
 */
import type { Registry } from 'prom-client';
import { json, type Route, text } from './types.js';

export function healthRoutes(opts: { registry: Registry; ready: () => boolean | string }): Route[] {
  return [
    { method: 'GET', path: '/ping', handler: () => json(200, { message: 'pong' }) },
    { method: 'GET', path: '/healthz', handler: () => json(200, { status: 'ok' }) },
    {
      method: 'GET',
      path: '/readyz',
      handler: () => {
        const r = opts.ready();
        return r === true
          ? json(200, { status: 'ready' })
          : json(503, { status: r === false ? 'not ready' : r });
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      handler: async () => text(200, await opts.registry.metrics(), opts.registry.contentType),
    },
  ];
}
