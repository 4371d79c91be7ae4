/**
 * A simulator process driven by `npm run bench:fleet` (child protocol of child-protocol.ts):
 * holds its share of simulated Elkeid agents (loadtest/sim/sim-agent.ts: mTLS HTTP/2, 100 ms send
 * tick, 60 s heartbeats, the scenario's event mix, 5 s reconnect) and answers on stdin:
 *
 *   start {target, count, firstIndex, idPrefix, localAddresses, encoding, rate, spacingMs}
 *         creates `count` more agents (AgentID = idPrefix + zero-padded index) and starts them
 *         `spacingMs` apart; replies at once
 *   stats        counters, process CPU and memory
 *   histograms   command-latency and reconnect HdrHistograms (compressed base64) since the last
 *                `reset`
 *   reset        clears both histograms
 *   drop         destroys every agent's connection at once (a network failure as the agent sees
 *                it); each agent reconnects after its fixed 5 s delay
 *
 *   node --import tsx loadtest/bench/fleet-sim.ts --pki DIR
 *
 * Closing stdin stops every agent and exits.
 */
import { parseArgs } from 'node:util';
import { readAgentTls } from '../agent/raw-agent.js';
import { encodeHistogram, newHistogram, recordSamples } from '../sim/report.js';
import { SCENARIOS, type Scenario } from '../sim/scenario.js';
import { newStats, SimAgent, setMaxDialsInFlight } from '../sim/sim-agent.js';
import { loopLagMeter, openFileLimit, processStats, reply, serveCommands } from './child-protocol.js';

const { values } = parseArgs({ options: { pki: { type: 'string' } } });
if (!values.pki) throw new Error('--pki DIR is required');
const tls = readAgentTls(values.pki);

const stats = newStats();
const agents: SimAgent[] = [];
const timers = new Set<NodeJS.Timeout>();
let commandHist = newHistogram();
let reconnectHist = newHistogram();

/** Moves the latency samples the agents pushed into the histograms (keeps the arrays short). */
function drain(): void {
  if (stats.commandLatencyMs.length > 0) recordSamples(commandHist, stats.commandLatencyMs.splice(0));
  if (stats.reconnectMs.length > 0) recordSamples(reconnectHist, stats.reconnectMs.splice(0));
}
const drainer = setInterval(drain, 1000);
drainer.unref();
// A late simulator loop delays the agents' ticks and what they record as command arrival.
const loopLag = loopLagMeter(1);

interface StartArgs {
  target: { host: string; port: number };
  count: number;
  firstIndex: number;
  idPrefix: string;
  localAddresses: string[];
  encoding: 'snappy' | 'identity';
  rate: number;
  spacingMs: number;
  /** Dials in flight in this process (DialPool); absent: unbounded. */
  maxDials?: number;
}

serveCommands(
  {
    start(c) {
      const a = c as unknown as StartArgs;
      if (a.maxDials !== undefined) setMaxDialsInFlight(a.maxDials);
      const scenario: Scenario = {
        ...SCENARIOS.steady!,
        name: 'bench-fleet',
        eventsPerAgentPerS: a.rate,
        rampS: 0,
        durationS: Number.POSITIVE_INFINITY,
      };
      const created: SimAgent[] = [];
      for (let i = 0; i < a.count; i++) {
        const index = a.firstIndex + i;
        const local =
          a.localAddresses.length > 0 ? a.localAddresses[index % a.localAddresses.length] : undefined;
        const agent = new SimAgent(`${a.idPrefix}${String(index).padStart(7, '0')}`, index, {
          tls,
          gateway: a.target,
          ...(local ? { localAddress: local } : {}),
          scenario,
          stats,
          encoding: a.encoding,
        });
        agents.push(agent);
        created.push(agent);
      }
      // Started in a paced loop (not one timer per agent): spacingMs apart on average.
      let next = 0;
      const startedAt = Date.now();
      const step = () => {
        const due = a.spacingMs > 0 ? Math.floor((Date.now() - startedAt) / a.spacingMs) + 1 : created.length;
        while (next < Math.min(due, created.length)) created[next++]!.start();
        if (next < created.length) {
          const t = setTimeout(() => {
            timers.delete(t);
            step();
          }, 10);
          timers.add(t);
        }
      };
      step();
      return { created: created.length, total: agents.length };
    },
    stats() {
      drain();
      let connectedNow = 0;
      for (const a of agents) if (a.connected) connectedNow++;
      return {
        ...loopLag(),
        agents: agents.length,
        connected: connectedNow,
        connects: stats.connects,
        recordsSent: stats.recordsSent,
        bytesSent: stats.bytesSent,
        commands: stats.commands,
        errors: Object.fromEntries(stats.errors),
        ...processStats(),
      };
    },
    histograms() {
      drain();
      return {
        commandLatency: encodeHistogram(commandHist),
        reconnect: encodeHistogram(reconnectHist),
      };
    },
    reset() {
      drain();
      commandHist = newHistogram();
      reconnectHist = newHistogram();
      return {};
    },
    drop() {
      let dropped = 0;
      for (const a of agents) {
        if (a.connected) dropped++;
        a.drop();
      }
      return { dropped };
    },
  },
  () => {
    for (const t of timers) clearTimeout(t);
    for (const a of agents) void a.stop();
    setTimeout(() => process.exit(0), 200).unref();
  },
);
reply({ pid: process.pid, nofile: openFileLimit() ?? null });
