/**
 * `fleetgate gateway` and `fleetgate all`: validate the environment, make sure the PKI exists
 * (a development PKI is generated on first start), start the roles, print where they listen
 * and how to point an agent at them, and drain on SIGTERM/SIGINT.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type Config, ConfigError, loadConfig, resolveAksk } from '../config/env.js';
import { createDefaultSink } from '../ingest/default-sink.js';
import { createLogger } from '../obs/logger.js';
import { createMetrics } from '../obs/metrics.js';
import { writePkiDir } from '../pki/certs.js';
import { pkiExists } from '../pki/tls-context.js';
import { startControlApi } from '../roles/control-api.js';
import { startGateway } from '../roles/gateway.js';
import { envHelp } from './main.js';

const SHUTDOWN_GRACE_MS = 20_000;

function help(role: string): string {
  return `usage: fleetgate ${role} [--help]

${
  role === 'gateway'
    ? 'Runs the agent gateway (Elkeid AgentCenter): agents connect with mutual TLS, gRPC over HTTP/2\non FLEETGATE_GRPC_PORT; the control API (/conn/*, /command, AK/SK-signed) on FLEETGATE_HTTP_PORT.'
    : 'Runs every role of this build in one process. Today that is the gateway (agent gRPC and\ncontrol API); discovery and manager join it as they land.'
}
Signals: SIGTERM/SIGINT drain (GOAWAY, end agent streams after their records are stored, flush)
and exit 0; a second signal exits at once. SIGHUP reloads certificates and the CRL.

${envHelp()}`;
}

export async function runServe(role: 'gateway' | 'all', argv: string[]): Promise<number> {
  try {
    const { values } = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' } },
      strict: true,
    });
    if (values.help) {
      console.log(help(role));
      return 0;
    }
  } catch (err) {
    console.error(`fleetgate ${role}: ${(err as Error).message}\n\n${help(role)}`);
    return 2;
  }
  let config: Readonly<Config>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`fleetgate: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  if (!pkiExists(config.pkiDir)) {
    const hosts = [...new Set([config.advertiseHost, '127.0.0.1', 'localhost'])];
    await writePkiDir(config.pkiDir, hosts);
    logger.warn(
      { pkiDir: config.pkiDir, hosts },
      'generated a development PKI (use your own CA in production)',
    );
  }
  const aksk = resolveAksk(config);
  const metrics = createMetrics();
  const sink = await createDefaultSink(config, logger, metrics);
  const gateway = await startGateway({ config, logger, sink, metrics });
  const control = await startControlApi({
    host: config.host,
    port: config.httpPort,
    sessions: gateway.sessions,
    metrics: gateway.metrics,
    logger,
    aksk,
    ready: () => (gateway.draining ? 'draining' : true),
  });

  const client = path.join(config.pkiDir, 'client');
  console.log(
    [
      `fleetgate ${role} is up`,
      `  agent gRPC (mTLS)  ${config.host}:${gateway.grpcPort}`,
      `  control API        http://${config.host}:${control.port}   (AK/SK: ${path.join(config.dataDir, 'aksk')} or FLEETGATE_AKSK)`,
      `  records go to      ${sink.name}`,
      `  point an agent at ${config.advertiseHost}:${gateway.grpcPort}: it must trust ${path.join(config.pkiDir, 'ca.crt')}`,
      `  and present ${client}.crt / ${client}.key (the fleet certificate); the server certificate carries SAN elkeid.com.`,
    ].join('\n'),
  );

  process.on('SIGHUP', () => gateway.tls.reload());
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      gateway
        .shutdown(SHUTDOWN_GRACE_MS)
        .then(() => sink.close())
        .then(() => {
          control.close();
          resolve(0);
        })
        .catch((err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolve(1);
        });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
