/** The lines `fleetgate gateway|all` prints about the gateway once it is up. */
import path from 'node:path';
import type { Config } from '../../platform/config/env.js';
import { serverCertificateNames } from '../../platform/pki/server-names.js';
import { missingGatewayNodeFlags } from './node-flags.js';

export interface GatewayBannerInput {
  grpcPort: number;
  controlPort: number;
  /** Where records go (IngestSink.name). */
  sinkName: string;
  registered: boolean;
  /** The process's Node flags (default: process.execArgv), checked for the gateway's own. */
  execArgv?: readonly string[];
}

export function gatewayBanner(config: Readonly<Config>, o: GatewayBannerInput): string[] {
  const client = path.join(config.pkiDir, 'client');
  const lines = [
    `  agent gRPC (mTLS)  ${config.host}:${o.grpcPort}`,
    `  control API        http://${config.apiHost}:${o.controlPort}   (AK/SK: ${path.join(config.dataDir, 'aksk')} or FLEETGATE_AKSK)`,
    `  records go to      ${o.sinkName}`,
    `  point an agent at ${config.advertiseHost}:${o.grpcPort}: it must trust ${path.join(config.pkiDir, 'ca.crt')}`,
    config.identity === 'fleet'
      ? `  and present ${client}.crt / ${client}.key (the fleet certificate: whoever holds it can act as any agent; FLEETGATE_IDENTITY=per-agent binds each agent to its own).`
      : `  and present its own certificate (CN = its AgentID; \`fleetgate certs agent\`): per-agent identity.`,
    serverNameLine(config.pkiDir),
    `  simulate agents:   npx fleetgate sim --gateway 127.0.0.1:${o.grpcPort} --pki ${config.pkiDir} --agents 100`,
  ];
  if (!o.registered) lines.push('  discovery          not registered (set FLEETGATE_SD_ADDRS)');
  const missing = missingGatewayNodeFlags(o.execArgv ?? process.execArgv);
  if (missing.length > 0)
    lines.push(
      `  node flags         started without ${missing.join(' ')}: more full GCs at agent rates (node ${missing.join(' ')} bin/fleetgate.js gateway; docs/capacity.md "Paced cost")`,
    );
  return lines;
}

/** The banner's line on the server certificate's names: what it carries, not what we hope. */
function serverNameLine(pkiDir: string): string {
  const names = serverCertificateNames(path.join(pkiDir, 'server.crt'));
  return names.includes('elkeid.com')
    ? '  the server certificate carries SAN elkeid.com (what stock Elkeid agents verify).'
    : `  WARNING: the server certificate's names (${names.join(', ') || 'none'}) lack elkeid.com: stock Elkeid agents will refuse it.`;
}
