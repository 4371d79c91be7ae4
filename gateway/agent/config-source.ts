/**
 * Where the plugin configuration pushed at an agent's first heartbeat comes from (Elkeid §2.7).
 * The manager issue fills it from DynamoDB. `undefined` means "no opinion: push nothing" —
 * distinct from an empty list, which makes a stock agent uninstall every plugin.
 */
import type { grpc } from '../../proto/gen/elkeid.js';
import type { Detail } from './heartbeat.js';

export interface ConfigSource {
  configFor(agentDetail: Detail): Promise<grpc.ConfigItem.$Properties[] | undefined>;
  /**
   * false: the source needs only the AgentID and header fields (agent_id, hostname, version, IPs),
   * so the gateway asks as soon as the agent is identified by its first message instead of at its
   * first heartbeat, which a stock agent may send up to 60 s after connecting. Default true.
   */
  needsHeartbeat?: boolean;
}

export const noConfigSource: ConfigSource = {
  async configFor() {
    return undefined;
  },
};
