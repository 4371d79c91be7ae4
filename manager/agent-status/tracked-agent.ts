/** A tracked connection: how it starts, what its full item holds, and when a change is significant. */
import type { Detail } from '../../gateway/agent/heartbeat.js';
import type { TrackedAgent, WritableSession } from './types.js';

const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

export function trackSession(session: WritableSession, conn: string, at: number): TrackedAgent {
  const agent: TrackedAgent = {
    session,
    agentId: session.agentId,
    conn,
    connectedAtMs: session.connectedAt * 1000,
    phase: 'pending',
    connectWritten: false,
    stamp: at,
    firstSeenMs: at,
    detail: undefined,
    hbSeenAtMs: at,
    sig: '',
    stale: false,
    state: 'running',
    nextRefreshAtMs: Number.POSITIVE_INFINITY,
    queuedPut: false,
    busy: 0,
    putInFlight: undefined,
    chain: Promise.resolve(),
    tags: [],
  };
  if (session.detail !== undefined) takeDetail(agent, session.detail);
  return agent;
}

/** The heartbeat's detail as the agent's current one (its state decides running or abnormal). */
export function takeDetail(agent: TrackedAgent, d: Detail): void {
  agent.detail = d;
  agent.state = d.state === 'abnormal' ? 'abnormal' : 'running';
}

/** The fields whose change is written at once (state, version, host, IPs, platform, plugin set). */
export function signature(s: WritableSession, d: Detail | undefined): string {
  const plugins = [...s.plugins.values()]
    .map((p) => `${str(p.name)}@${str(p.pversion)}`)
    .sort()
    .join(',');
  return [
    str(d?.state),
    s.header.version,
    s.header.hostname,
    s.header.intranetIPv4.join(','),
    s.header.extranetIPv4.join(','),
    str(d?.platform),
    str(d?.platform_version),
    str(d?.kernel_version),
    str(d?.arch),
    str(d?.idc),
    str(d?.region),
    plugins,
  ].join('|');
}

/** The agent's full item (what the manager reads: agents.ts), as of `at`. */
export function statusImage(
  agent: TrackedAgent,
  gatewayId: string,
  at: number,
): { agentId: string } & Record<string, unknown> {
  const s = agent.session;
  const d = agent.detail ?? {};
  const h = s.header;
  return {
    agentId: agent.agentId,
    gateway: gatewayId,
    lastGateway: gatewayId,
    conn: agent.conn,
    online: true,
    connectedAtMs: agent.connectedAtMs,
    firstSeenMs: agent.firstSeenMs,
    writtenAtMs: at,
    hbAt:
      typeof d.last_heartbeat_time === 'number' ? d.last_heartbeat_time : Math.floor(agent.hbSeenAtMs / 1000),
    state: agent.state,
    hostname: h.hostname,
    version: h.version,
    product: h.product,
    platform: str(d.platform),
    platformFamily: str(d.platform_family),
    platformVersion: str(d.platform_version),
    kernelVersion: str(d.kernel_version),
    arch: str(d.arch),
    idc: str(d.idc),
    region: str(d.region),
    ipv4: [...h.intranetIPv4, ...h.extranetIPv4],
    ipv6: [...h.intranetIPv6, ...h.extranetIPv6],
    hb: JSON.stringify(d),
    plugins: JSON.stringify([...s.plugins.values()]),
  };
}

/** A stored map key: DynamoDB map keys must be non-empty. */
export const mapKey = (k: string) => (k === '' ? 'unknown' : k.slice(0, 128));

/** The agent's platform as its aggregate counts it. */
export const platformOf = (agent: TrackedAgent) => mapKey(str(agent.detail?.platform));
