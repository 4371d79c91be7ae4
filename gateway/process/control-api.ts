/**
 * The gateway's control API listener (port 6752): health routes plus the AgentCenter routes,
 * AK/SK-verified, on uWebSockets.js. Elkeid's AC answers auth failures with HTTP 200 and
 * envelope code 1, so we do too.
 */

import { createVerifier } from '../../platform/http/aksk.js';
import { fail } from '../../platform/http/envelope.js';
import { healthRoutes, type Readiness } from '../../platform/http/health-routes.js';
import { createRouter } from '../../platform/http/router.js';
import { serveUws, type UwsServer } from '../../platform/http/uws-adapter.js';
import type { Logger } from '../../platform/obs/logger.js';
import type { Metrics } from '../../platform/obs/metrics.js';
import type { SessionRegistry } from '../agent/sessions.js';
import type { DeliveryGuard } from '../control/delivery-guard.js';
import { controlRoutes } from '../control/routes.js';

export interface ControlApiOptions {
  host: string;
  port: number;
  sessions: SessionRegistry;
  /** The gateway's delivery guard (Gateway.guard): fences and token de-duplication of `/command/batch`. */
  guard?: DeliveryGuard;
  metrics: Metrics;
  logger: Logger;
  aksk: ReadonlyArray<readonly [string, string]>;
  ready: () => Readiness;
}

export async function startControlApi(opts: ControlApiOptions): Promise<UwsServer> {
  const log = opts.logger.child({ component: 'control-api' });
  const handler = createRouter(
    [
      ...healthRoutes({ registry: opts.metrics.registry, ready: opts.ready }),
      ...controlRoutes(opts.sessions, opts.guard),
    ],
    {
      verifier: createVerifier({ keys: new Map(opts.aksk) }),
      onAuthFailure: (reason, req) => {
        opts.metrics.httpRequests.inc({ route: 'auth_failed', status: '200' });
        log.warn({ reason, path: req.path, peer: req.remoteAddress }, 'control API auth failed');
        return fail(1, reason);
      },
      logger: log,
      onRequest: (route, status, seconds) => {
        opts.metrics.httpRequests.inc({ route, status: String(status) });
        opts.metrics.httpSeconds.observe({ route }, seconds);
      },
    },
  );
  const server = await serveUws(handler, {
    host: opts.host,
    port: opts.port,
    registry: opts.metrics.registry,
    logger: log,
  });
  log.info({ port: server.port, host: opts.host }, 'control API listening');
  return server;
}
