/**
 * Our own API (`/api/fleet/...`, described in docs/openapi.yaml): plain JSON resources with HTTP
 * statuses. Statistics and load control (fleet-gateways.ts), per-tag and per-agent config
 * overrides and agents by ID (fleet-configs.ts: Elkeid has no API for them), users, API keys and
 * the audit log (fleet-accounts.ts).
 */
import type { ManagerDeps } from '../deps.js';
import type { ManagerRoute } from '../router.js';
import { apiKeyRoutes, auditRoute, meRoute, userRoutes } from './fleet-accounts.js';
import { agentRoutes, configRoutes } from './fleet-configs.js';
import { gatewayRoutes } from './fleet-gateways.js';

export {
  GATEWAY_SERVICE_NAME,
  MAX_GATEWAY_LIMIT,
  REBALANCE_EXPIRES_S,
  REBALANCE_SLACK,
} from './fleet-gateways.js';

export function fleetRoutes(deps: ManagerDeps): ManagerRoute[] {
  return [
    meRoute(),
    ...gatewayRoutes(deps),
    ...agentRoutes(deps),
    ...configRoutes(deps),
    ...userRoutes(deps),
    ...apiKeyRoutes(deps),
    auditRoute(deps),
  ];
}
