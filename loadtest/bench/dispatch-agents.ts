/**
 * A child of `bench:dispatch`: runs its share of simulated agents against one gateway and reports
 * its counters to the parent every 500 ms; exits when told to stop or when the parent goes away.
 */
import { randomUUID } from 'node:crypto';
import { readAgentTls } from '../agent/raw-agent.js';
import { newStats, SimAgent } from '../sim/sim-agent.js';

interface Start {
  agents: number;
  firstIndex: number;
  pkiDir: string;
  gateway: { host: string; port: number };
  sources: string[];
}

process.once('message', (o: Start) => {
  const tls = readAgentTls(o.pkiDir);
  const stats = newStats();
  /** version of the `collector` item → agent → commands received carrying it. */
  const received = new Map<string, Map<string, number>>();
  const agents: SimAgent[] = [];
  for (let i = 0; i < o.agents; i++) {
    const index = o.firstIndex + i;
    const a = new SimAgent(randomUUID(), index, {
      tls,
      gateway: o.gateway,
      ...(o.sources.length > 0 ? { localAddress: o.sources[index % o.sources.length]! } : {}),
      scenario: {
        name: 'dispatch',
        description: 'idle agents receiving commands',
        durationS: 3600,
        rampS: 0,
        eventsPerAgentPerS: 0,
        reconnectDelayMs: 5000,
      },
      stats,
      onCommand: (id, c) => {
        if (c.Task) return;
        const version = c.Config.find((i) => i.Name === 'collector')?.Version ?? '';
        let m = received.get(version);
        if (!m) {
          m = new Map();
          received.set(version, m);
        }
        m.set(id, (m.get(id) ?? 0) + 1);
      },
    });
    agents.push(a);
    // Spread the TLS handshakes a little so the gateway's accept queue is not flooded at once.
    setTimeout(() => a.start(), Math.floor(i / 50) * 20).unref();
  }
  const report = () => {
    const byVersion: Record<string, { agents: number; twice: number }> = {};
    for (const [v, m] of received) {
      let twice = 0;
      for (const n of m.values()) if (n > 1) twice++;
      byVersion[v] = { agents: m.size, twice };
    }
    process.send?.({ connected: stats.connected, commands: stats.commands, byVersion });
  };
  const timer = setInterval(report, 500);
  const stop = () => {
    clearInterval(timer);
    for (const a of agents) void a.stop();
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('message', (m) => {
    if (m === 'stop') stop();
    if (m === 'report') report();
  });
  process.on('disconnect', stop);
});
