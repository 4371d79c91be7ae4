/**
 * Statistics and load control (`/api/fleet/stats`, `/api/fleet/gateways…`). Load control stores
 * the desired connection limit per gateway (`fleet#limit`, optionally with an expiry); each
 * gateway re-reads it every few seconds and enforces it (gateway/agent/load-shedder.ts):
 * admission stops at it, discovery is told, excess streams are ended at FLEETGATE_SHED_RATE.
 * Rebalance sets limits from the live registry's mean so a skewed cluster evens out.
 */

import type { GatewayInfo } from '../agents.js';
import type { ManagerDeps } from '../deps.js';
import { apiOk } from '../envelope.js';
import { gatewayLoadView } from '../gateway-load-view.js';
import type { Ctx, ManagerRoute } from '../router.js';
import { fleetStats } from '../stats.js';
import {
  deleteGatewayLimit,
  type GatewayLimitItem,
  getGatewayLimit,
  getGatewayLimits,
  putGatewayLimit,
} from '../store/fleet.js';
import { actor } from './elkeid-http.js';
import { fleetRoute, GATEWAY_ID, invalid, objectBody, param } from './fleet-http.js';

export const MAX_GATEWAY_LIMIT = 10_000_000;
/** The registry name gateways register their agent port under (Elkeid's). */
export const GATEWAY_SERVICE_NAME = 'hids_svr_grpc';
/** Rebalance defaults: limits 10 % above the mean, for 10 minutes. */
export const REBALANCE_SLACK = 0.1;
export const REBALANCE_EXPIRES_S = 600;
const MAX_LIMIT_EXPIRY_S = 7 * 86_400;

type LimitView = ReturnType<typeof limitView>;

/** A gateway's limit as the API shows it; an expired limit is no limit (the gateways ignore it too). */
function limitView(gatewayId: string, item: GatewayLimitItem | undefined, nowMs: number) {
  const expiresAt = item?.expiresAtMs ?? null;
  const live = item !== undefined && (expiresAt === null || expiresAt > nowMs);
  return {
    gateway: gatewayId,
    limit: live ? (item.limit ?? null) : null,
    expires_at: live ? expiresAt : null,
    updated_at: item?.updatedAtMs ?? null,
    updated_by: item?.updatedBy ?? null,
    enforced: true,
  };
}

function gatewayView(g: GatewayInfo, limit: LimitView) {
  return {
    id: g.gatewayId,
    control_addr: g.controlAddr ?? null,
    alive: g.alive,
    updated_at: g.updatedAtMs,
    connected: g.connected,
    online: g.online,
    running: g.running,
    abnormal: g.abnormal,
    silent: g.stale,
    ...gatewayLoadView(g.load),
    desired_limit: limit.limit,
    desired_limit_expires_at: limit.expires_at,
  };
}

/** `expires_in_s` of the body as an absolute time; `defaultS` when absent (undefined: none). */
function expiryOf(
  b: Record<string, unknown>,
  defaultS: number | undefined,
  nowMs: number,
): number | undefined {
  const v = b.expires_in_s;
  if (v === undefined || v === null) return defaultS === undefined ? undefined : nowMs + defaultS * 1000;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_LIMIT_EXPIRY_S) {
    throw invalid(`expires_in_s must be an integer from 1 to ${MAX_LIMIT_EXPIRY_S}`);
  }
  return nowMs + v * 1000;
}

/** What rebalance does with the live gateways' connection counts: limits for those above the target. */
export function rebalancePlan(connectedById: ReadonlyMap<string, number>, slack: number) {
  const ids = [...connectedById.keys()].sort();
  const total = ids.reduce((n, id) => n + connectedById.get(id)!, 0);
  const mean = ids.length > 0 ? total / ids.length : 0;
  // Rounded first: 50 × 1.1 is 55.000000000000007 in binary floating point.
  const target = Math.max(1, Math.ceil(Math.round(mean * (1 + slack) * 1e6) / 1e6));
  const gateways = ids.map((id) => {
    const connected = connectedById.get(id)!;
    const over = ids.length > 1 && connected > target;
    return { id, connected, limit: over ? target : null, excess: over ? connected - target : 0 };
  });
  return { ids, total, mean, target, gateways };
}

/** The rebalance body: `slack` (0–10, default 0.1) and `dry_run`. */
function rebalanceBody(ctx: Ctx): { raw: Record<string, unknown>; slack: number; dryRun: boolean } {
  const raw = ctx.req.body.length === 0 ? {} : objectBody(ctx);
  const slack = raw.slack ?? REBALANCE_SLACK;
  if (typeof slack !== 'number' || !Number.isFinite(slack) || slack < 0 || slack > 10) {
    throw invalid('slack must be a number from 0 to 10');
  }
  const dryRun = raw.dry_run ?? false;
  if (typeof dryRun !== 'boolean') throw invalid('dry_run must be a boolean');
  return { raw, slack, dryRun };
}

export function gatewayRoutes(deps: ManagerDeps): ManagerRoute[] {
  const readLimit = async (id: string) =>
    limitView(id, await getGatewayLimit(deps.store, id, { consistent: true }), deps.now());
  const writeLimit = (id: string, limit: number, by: string, expiresAtMs: number | undefined) =>
    putGatewayLimit(deps.store, id, { limit, updatedAtMs: deps.now(), updatedBy: by, expiresAtMs });

  return [
    fleetRoute({
      method: 'GET',
      path: '/api/fleet/stats',
      access: 'read',
      summary: 'fleet statistics from the gateways’ aggregates',
      handler: async () => apiOk(await fleetStats(deps.store, deps.agents, deps.tags, deps.now())),
    }),
    fleetRoute({
      method: 'GET',
      path: '/api/fleet/gateways',
      access: 'read',
      summary: 'gateways with their aggregates and desired limits',
      async handler() {
        const gateways = await deps.agents.gateways({ fresh: true });
        const sorted = [...gateways.values()].sort((a, b) => a.gatewayId.localeCompare(b.gatewayId));
        const limits = await getGatewayLimits(
          deps.store,
          sorted.map((g) => g.gatewayId),
        );
        const now = deps.now();
        return apiOk({
          gateways: sorted.map((g) => gatewayView(g, limitView(g.gatewayId, limits.get(g.gatewayId), now))),
        });
      },
    }),
    fleetRoute({
      method: 'GET',
      path: '/api/fleet/gateways/:id/limit',
      access: 'read',
      summary: "a gateway's desired connection limit",
      handler: async (ctx) => apiOk(await readLimit(param(ctx, 'id', GATEWAY_ID, 'gateway id'))),
    }),
    fleetRoute({
      method: 'PUT',
      path: '/api/fleet/gateways/:id/limit',
      access: 'write',
      maxBodyBytes: 4096,
      summary: "set a gateway's desired connection limit (enforced within seconds; optional expires_in_s)",
      async handler(ctx) {
        const id = param(ctx, 'id', GATEWAY_ID, 'gateway id');
        const b = objectBody(ctx);
        const limit = b.limit;
        if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0 || limit > MAX_GATEWAY_LIMIT) {
          throw invalid(`limit must be an integer from 0 to ${MAX_GATEWAY_LIMIT}`);
        }
        const expiresAtMs = expiryOf(b, undefined, deps.now());
        await writeLimit(id, limit, actor(ctx), expiresAtMs);
        ctx.audit.target = `gateway:${id}`;
        ctx.audit.detail = { limit, ...(expiresAtMs !== undefined ? { expiresAtMs } : {}) };
        return apiOk(await readLimit(id));
      },
    }),
    fleetRoute({
      method: 'POST',
      path: '/api/fleet/gateways/rebalance',
      access: 'write',
      maxBodyBytes: 4096,
      summary: 'even out a skewed cluster: limits of mean × (1 + slack) for the gateways above it, expiring',
      async handler(ctx) {
        const { raw, slack, dryRun } = rebalanceBody(ctx);
        const expiresAtMs = expiryOf(raw, REBALANCE_EXPIRES_S, deps.now())!;
        const live = await deps.registry.list(GATEWAY_SERVICE_NAME);
        const connectedById = new Map<string, number>();
        for (const inst of live) connectedById.set(`${inst.ip}:${inst.port}`, inst.weight);
        const { ids, total, mean, target, gateways } = rebalancePlan(connectedById, slack);
        const changed = gateways.filter((g) => g.limit !== null);
        if (!dryRun) {
          for (const g of changed) await writeLimit(g.id, g.limit!, actor(ctx), expiresAtMs);
        }
        ctx.audit.target = 'gateways';
        ctx.audit.detail = {
          dryRun,
          gateways: ids.length,
          total,
          target,
          expiresAtMs,
          limited: changed.map((g) => `${g.id}=${g.limit}`),
        };
        return apiOk({
          dry_run: dryRun,
          gateways,
          total,
          mean,
          target,
          expires_at: expiresAtMs,
          moved: changed.reduce((n, g) => n + g.excess, 0),
        });
      },
    }),
    fleetRoute({
      method: 'DELETE',
      path: '/api/fleet/gateways/:id/limit',
      access: 'write',
      summary: "clear a gateway's desired connection limit",
      async handler(ctx) {
        const id = param(ctx, 'id', GATEWAY_ID, 'gateway id');
        await deleteGatewayLimit(deps.store, id);
        ctx.audit.target = `gateway:${id}`;
        return apiOk(await readLimit(id));
      },
    }),
  ];
}
