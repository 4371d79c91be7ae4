/**
 * The config push of a Transfer stream: once per connection, on connect (a config source that
 * does not need the heartbeat) or on the first heartbeat.
 */

import type { Logger } from '../../platform/obs/logger.js';
import type { ConfigSource } from './config-source.js';
import { agentDetail, type Detail } from './heartbeat.js';
import type { AgentSession, SessionRegistry } from './sessions.js';

export class ConfigPusher {
  /** Sessions whose config was pushed (once per connection). */
  private readonly pushed = new WeakSet<AgentSession>();

  constructor(
    private readonly configSource: ConfigSource,
    private readonly sessions: SessionRegistry,
    private readonly log: Logger,
  ) {}

  push(session: AgentSession, detail: Detail, when: string): void {
    if (this.pushed.has(session)) return;
    this.pushed.add(session);
    this.configSource.configFor(detail).then(
      async (items) => {
        if (items === undefined || !session.live) return;
        const result = await this.sessions.send(session.agentId, { Config: items });
        this.log.info({ agentId: session.agentId, items: items.length, result }, `config pushed ${when}`);
      },
      (err: unknown) =>
        this.log.warn({ agentId: session.agentId, err }, 'config source failed; no config pushed'),
    );
  }
}

/** What is known of an agent before its first heartbeat: the detail's header fields. */
export function headerDetail(session: AgentSession): Detail {
  return agentDetail(
    {},
    {
      agentId: session.agentId,
      peer: session.peer,
      connectedAt: session.connectedAt,
      header: session.header,
      nowSeconds: Math.floor(Date.now() / 1000),
    },
  );
}
