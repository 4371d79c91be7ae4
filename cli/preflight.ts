/**
 * What `fleetgate gateway|discovery|all|manager` checks before it opens any listener, so a start
 * that cannot work fails at once with exit 2 and one line per cause (README: every error listed),
 * instead of a stack trace after some ports are already open: the data dir is usable (and made
 * private, 0700), the ports are free, FLEETGATE_ADMIN meets the password policy, the PKI is
 * complete and valid (a development PKI is generated only into a directory holding none of it).
 */
import { accessSync, chmodSync, constants, mkdirSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type ProcessSlot, slotControlPort } from '../gateway/process/process-slot.js';
import { passwordProblem } from '../manager/passwords.js';
import type { Config } from '../platform/config/env.js';
import { httpEngineProblem } from '../platform/http/http-engine.js';
import { writePkiDir } from '../platform/pki/certs.js';
import { PkiError, REQUIRED_PKI_FILES, validatePkiDir } from '../platform/pki/validate.js';

export type PreflightRole = 'gateway' | 'discovery' | 'all' | 'manager';

export interface Preflight {
  problems: string[];
  /** Set when a development PKI was generated (the banner says so, loudly). */
  generatedPki: boolean;
}

/**
 * Listen addresses of the role: [env variable, host, port]; port 0 (a free one) is never busy.
 * Several gateway processes: the supervisor checks the agent port and every control port
 * (base + i); a child (`slot`) only its own control port, the agent port being its siblings'.
 */
export function listeners(
  role: PreflightRole,
  config: Readonly<Config>,
  slot?: ProcessSlot,
): Array<[string, string, number]> {
  const out: Array<[string, string, number]> = [];
  if (role === 'gateway' || role === 'all') {
    if (!slot) out.push(['FLEETGATE_GRPC_PORT', config.host, config.grpcPort]);
    const controls = slot || config.processes === 1 ? 1 : config.processes;
    for (let i = 0; i < controls; i++) {
      const name = i === 0 ? 'FLEETGATE_HTTP_PORT' : `FLEETGATE_HTTP_PORT + ${i} (process p${i})`;
      out.push([name, config.apiHost, slotControlPort(config.httpPort, i)]);
    }
  }
  if (role === 'discovery' || role === 'all') out.push(['FLEETGATE_SD_PORT', config.host, config.sdPort]);
  if (role === 'manager' || role === 'all')
    out.push(['FLEETGATE_MANAGER_PORT', config.apiHost, config.managerPort]);
  return out.filter(([, , port]) => port !== 0);
}

function portFree(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(undefined)));
  });
}

/** The data dir exists, is a directory we can write, and is private (0700) when it is ours. */
function checkDataDir(dataDir: string): string | undefined {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const st = statSync(dataDir);
    if (!st.isDirectory()) return `FLEETGATE_DATA_DIR=${dataDir}: not a directory`;
    accessSync(dataDir, constants.W_OK | constants.X_OK);
    if (st.uid === process.getuid?.() && (st.mode & 0o077) !== 0) chmodSync(dataDir, 0o700);
    return undefined;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return `FLEETGATE_DATA_DIR=${dataDir}: unusable (${e.code ?? e.message})`;
  }
}

async function checkPki(config: Readonly<Config>, pre: Preflight): Promise<void> {
  const present = REQUIRED_PKI_FILES.filter((f) => {
    try {
      return statSync(path.join(config.pkiDir, f)).isFile();
    } catch {
      return false;
    }
  });
  if (present.length === 0) {
    try {
      const hosts = [...new Set([config.advertiseHost, '127.0.0.1', 'localhost'])];
      await writePkiDir(config.pkiDir, hosts);
      pre.generatedPki = true;
    } catch (err) {
      pre.problems.push(
        `FLEETGATE_PKI_DIR=${config.pkiDir}: cannot write a development PKI (${(err as Error).message})`,
      );
      return;
    }
  }
  try {
    validatePkiDir(config.pkiDir);
  } catch (err) {
    if (!(err instanceof PkiError)) throw err;
    pre.problems.push(`PKI: ${err.message}`);
  }
}

export async function preflight(
  role: PreflightRole,
  config: Readonly<Config>,
  slot?: ProcessSlot,
): Promise<Preflight> {
  const pre: Preflight = { problems: [], generatedPki: false };
  // FLEETGATE_HTTP_ENGINE=uws where no native uWS binary loads for this Node and glibc.
  const engineProblem = httpEngineProblem();
  if (engineProblem) pre.problems.push(engineProblem);
  const dataProblem = checkDataDir(config.dataDir);
  if (dataProblem) pre.problems.push(dataProblem);
  if (config.admin && (role === 'all' || role === 'manager')) {
    const problem = passwordProblem(config.admin.password);
    if (problem) pre.problems.push(`FLEETGATE_ADMIN: the password ${problem}`);
  }
  for (const [name, host, port] of listeners(role, config, slot)) {
    if (port > 65535) {
      pre.problems.push(
        `${name} = ${port}: the control ports of ${config.processes} processes run past 65535`,
      );
      continue;
    }
    const busy = await portFree(host, port);
    if (busy)
      pre.problems.push(
        `${name}=${port}: cannot listen on ${host}:${port} (${busy === 'EADDRINUSE' ? 'in use' : busy})`,
      );
  }
  if ((role === 'gateway' || role === 'all') && !dataProblem) await checkPki(config, pre);
  return pre;
}
