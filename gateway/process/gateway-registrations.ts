/**
 * What a gateway registers in discovery (Elkeid's names, §2.11): `hids_svr_grpc` with its live
 * agent count as weight and its connection limit now, and `hids_svr_http` for the control API.
 * One function, so the process wiring and the tests register the same thing.
 */
import type { Registration } from '../../discovery/registrar.js';

export interface GatewayRegistrationInput {
  advertiseHost: string;
  /** Where the control API is reached, when not the advertised host (loopback in `fleetgate all`). */
  controlHost?: string;
  grpcPort: number;
  httpPort: number;
  /** Live agent connections. */
  load: number;
  /** The connection limit now: FLEETGATE_MAX_CONNECTIONS, or lower under load control. */
  limit: number;
  version?: string;
}

export function gatewayRegistrations(o: GatewayRegistrationInput): Registration[] {
  const http: Registration = {
    name: 'hids_svr_http',
    ip: o.controlHost ?? o.advertiseHost,
    port: o.httpPort,
    weight: o.load,
  };
  // A limit of 0 means "drain": stop advertising the agent port (discovery drops it when its TTL
  // runs out, ≤ 15 s) instead of registering limit 0, which discovery — ours and a stock Elkeid
  // SD alike — reads as "no known limit". The control API stays registered: the manager still
  // reaches the agents that have not been shed yet.
  if (o.limit === 0) return [http];
  return [
    {
      name: 'hids_svr_grpc',
      ip: o.advertiseHost,
      port: o.grpcPort,
      weight: o.load,
      limit: o.limit,
      version: o.version ?? '0.1.0',
    },
    http,
  ];
}
