/**
 * The routes every HTTP listener of the project answers (docs/environment.md): Elkeid's `/ping`,
 * liveness, readiness and Prometheus metrics.
 */
import type { Registry } from 'prom-client';
import { json, type Route, text } from './types.js';

/**
 * Readiness: true (ready), false or a word (not ready: 'starting', 'draining'), or a state
 * with the reasons (not ready) and what is degraded while still ready (e.g. the store is down
 * but agents are served), both shown in the /readyz body.
 */
export type Readiness =
  | boolean
  | string
  | { ready: boolean; status: string; reasons?: string[]; degraded?: string[] };

export function healthRoutes(opts: { registry: Registry; ready: () => Readiness }): Route[] {
  return [
    { method: 'GET', path: '/ping', handler: () => json(200, { message: 'pong' }) },
    { method: 'GET', path: '/healthz', handler: () => json(200, { status: 'ok' }) },
    {
      method: 'GET',
      path: '/readyz',
      handler: () => {
        const r = opts.ready();
        if (typeof r === 'object') {
          const { ready, ...body } = r;
          return json(ready ? 200 : 503, body);
        }
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
