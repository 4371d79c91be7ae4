/** `fleetgate sim`: the agent simulator (this folder), loaded by cli/main.ts only for `sim`. */
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { baseUrl } from '../../discovery/registrar.js';
import { perAgentCertsProblem } from './agent-certs.js';
import { disruptProblem, outageSeconds, rollingPercent, scheduleDisruption } from './disrupt.js';
import { fdLimitProblem } from './fd-limit.js';
import { type FleetSnapshot, runFleet, runFleetProcesses, scenarioByName, simAgentId } from './fleet.js';
import { managerClient } from './manager-client.js';
import { buildReport, mergeReports, parseReport, ReportFormatError, type SimReport } from './report.js';
import { type RollingTaskRun, rollingTaskReport, runRollingTask } from './rolling-task.js';
import { disruptDelayMs, SCENARIOS, type Scenario } from './scenario.js';
import { runSimVerify, verifyAfterRun } from './verify-command.js';

const HELP = `usage: fleetgate sim [options]
       fleetgate sim merge FILE... [--json OUT]
       fleetgate sim verify --kafka BROKERS --topic TOPIC --run ID [--sent N]

Simulates stock Elkeid agents: each holds a real mTLS HTTP/2 connection with its own AgentID,
asks discovery and dials in the order given (or --gateway), sends snappy-framed RawData every
100 ms, heartbeats every 60 s, applies config commands, answers plugin tasks with a result
record, restarts on 1060, uploads on 1050, and reconnects 5 s after its stream ends.
Stops by itself after the scenario's duration. Disruptions: reconnect-storm drops every
agent's connection at once (they reconnect after 5 s, through discovery with --sd); gateway-loss
signals the gateway (--gateway-pid, or --on-disrupt CMD); kafka-outage runs --on-disrupt CMD and
--on-recover CMD after --outage-seconds; the report says how many agents were lost and
reconnected, how long until all were back, and the records sent during an outage.
rolling-task creates one plugin task (collector, answered with a 5100 result record) for this
invocation's agents through the manager API (--manager, --api-key) and runs it in rolling
batches of --rolling-percent, releasing the next batch when every agent of the current one has
answered; the report's rollingTask section has the time to all results, each batch's time to its
last result, the result counts and the release-to-arrival time at the agents. Only the agents of
the invocation with --manager are targeted (at most 7,084: the manager's id_list cap); when
several machines' reports are merged, that invocation's rollingTask section is kept as it is, so
run the other machines with another scenario (e.g. steady) of the same duration.
Every record is numbered per agent (its body carries fleetgate_sim_run = the run id printed at
start, and fleetgate_sim_seq = 1, 2, 3, …), so --verify-kafka (or \`fleetgate sim verify\` later)
can read the topic back and count sent / stored / missing / duplicated / out-of-order records.

options:
  --agents N             agents (default 100)
  --processes P          spread agents over P child processes (default 1)
  --scenario NAME        ${Object.keys(SCENARIOS).join(' | ')} (default steady)
  --duration S           override the scenario's duration in seconds
  --ramp S               override the ramp-up seconds
  --rate R               events per agent per second (override)
  --sd URL               discovery: http://127.0.0.1:8088 or 127.0.0.1:8088
  --gateway HOST:PORT    dial this gateway (without --sd, or when discovery answers nothing)
  --pki DIR              ca.crt, client.crt, client.key (default $FLEETGATE_DATA_DIR/pki or ./data/pki)
  --source-addresses N   spread connections over 127.0.0.1..127.0.0.N (more ephemeral ports)
  --per-agent-certs      each agent presents its own certificate (CN and URI SAN = its AgentID),
                         signed at start with --pki's ca.key, for a gateway in per-agent identity
                         mode (FLEETGATE_IDENTITY=per-agent); default: the fleet's client.crt
  --max-dials N          dials in flight at once per simulator process (default: unbounded, as
                         agents on their own hosts; bound it when one process carries tens of
                         thousands of agents through a storm, so its own TLS work does not starve
                         past the 15 s dial timeout — the wait counts in the reconnect time)
  --disrupt-at S         override when the scenario's disruption happens (seconds into the run)
  --disrupt-at-time T    the disruption at a wall-clock moment instead (ISO 8601 or epoch ms): give
                         every machine of a distributed run the same T (clocks kept by NTP) and
                         they drop, signal or stop Kafka together, whenever each started
  --gateway-pid PID      gateway-sigterm / gateway-sigkill (gateway-loss): send that signal to this
                         process at the disruption (once, from the parent process)
  --on-disrupt CMD       shell command run once at the disruption: kafka-outage (stop Kafka), or
                         gateway-sigterm / gateway-sigkill without --gateway-pid (ssh, systemctl…)
  --on-recover CMD       kafka-outage: shell command run when the outage ends (restart Kafka)
  --outage-seconds S     kafka-outage: how long the outage lasts (default 30)
  --manager URL          rolling-task: the manager's base URL, e.g. http://127.0.0.1:6701
  --api-key KEY          rolling-task: a manager API key fgk_<id>_<secret> (operator role), sent
                         as X-Api-Key; or set FLEETGATE_SIM_API_KEY (keeps it off the command line)
  --rolling-percent P    rolling-task: share of the agents each run releases (default ${SCENARIOS['rolling-task']!.disrupt!.rollingPercent})
  --verify-kafka BROKERS after the run, read --verify-topic back from offset 0 (comma-separated
                         brokers, plaintext) and add a "verify" section; exit status 1 if any
                         record sent is missing
  --verify-topic TOPIC   the topic the gateway produces to (FLEETGATE_KAFKA_TOPIC)
  --verify-wait S        keep reading up to S seconds for missing records (default 60: a gateway
                         may still be shipping its spool)
  --json FILE            write the report as JSON (format fleetgate-sim/1: counts, errors, and the
                         latency HdrHistograms compressed, so reports of many processes and
                         machines merge exactly with \`fleetgate sim merge\`)
  --help

Run \`fleetgate sim merge --help\` for merging reports, \`fleetgate sim verify --help\` for checking a topic.`;

const MERGE_HELP = `usage: fleetgate sim merge FILE... [--json OUT]

Merges the --json reports of many simulator processes or machines into one: counts and errors
are summed, the reconnect and command-latency HdrHistograms are added and their percentiles
recomputed, and each input is listed under "sources". A rollingTask section is kept as it is (the
one invocation with --manager created the task); reports of two different tasks are refused. Prints the merged report (without the
encoded histograms) on stdout; --json writes it whole (mergeable again).

options:
  --json OUT    write the merged report as JSON
  --help`;

/** The report as printed on a terminal: the encoded histograms left out. */
function printable(r: SimReport): unknown {
  const { histogram: _a, ...reconnectMs } = r.reconnectMs;
  const { histogram: _b, ...commandLatencyMs } = r.commandLatencyMs;
  if (!r.rollingTask) return { ...r, reconnectMs, commandLatencyMs };
  const { histogram: _c, ...commandMs } = r.rollingTask.commandMs;
  const { histogram: _d, ...resultMs } = r.rollingTask.resultMs;
  return { ...r, reconnectMs, commandLatencyMs, rollingTask: { ...r.rollingTask, commandMs, resultMs } };
}

export async function runSimMerge(argv: string[]): Promise<number> {
  let parsed: { values: { json?: string; help?: boolean }; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: { json: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    console.error(`fleetgate sim merge: ${(err as Error).message}\n\n${MERGE_HELP}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(MERGE_HELP);
    return 0;
  }
  if (parsed.positionals.length === 0) {
    console.error(`fleetgate sim merge: give at least one report file\n\n${MERGE_HELP}`);
    return 2;
  }
  const reports: SimReport[] = [];
  try {
    for (const file of parsed.positionals) {
      let value: unknown;
      try {
        value = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        throw new ReportFormatError(`${file}: ${(err as Error).message}`);
      }
      const r = parseReport(value, file);
      reports.push({ ...r, sources: r.sources.map((s) => ({ ...s, file: s.file ?? file })) });
    }
  } catch (err) {
    if (err instanceof ReportFormatError) {
      console.error(`fleetgate sim merge: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const merged = mergeReports(reports);
  console.log(JSON.stringify(printable(merged), null, 2));
  if (parsed.values.json) writeFileSync(parsed.values.json, `${JSON.stringify(merged, null, 2)}\n`);
  return 0;
}

export function formatProgress(s: FleetSnapshot, prev: FleetSnapshot | undefined): string {
  const dt = prev ? s.elapsedS - prev.elapsedS : s.elapsedS;
  const rate = prev && dt > 0 ? Math.round((s.recordsSent - prev.recordsSent) / dt) : 0;
  const errors = Object.values(s.errors).reduce((a, b) => a + b, 0);
  const d = s.disruption;
  const disrupted = d
    ? `  disrupted: back ${d.back}/${d.lost}${d.allBackMs >= 0 ? ` in ${(d.allBackMs / 1000).toFixed(1)}s` : ''}`
    : '';
  return `[sim ${s.elapsedS.toFixed(0).padStart(4)}s] connected ${s.connected}/${s.agents}  records/s ${rate}  sent ${s.recordsSent}  commands ${s.commands}  errors ${errors}${disrupted}`;
}

export async function runSim(argv: string[]): Promise<number> {
  if (argv[0] === 'merge') return runSimMerge(argv.slice(1));
  if (argv[0] === 'verify') return runSimVerify(argv.slice(1));
  let v: Record<string, string | boolean | undefined>;
  try {
    ({ values: v } = parseArgs({
      args: argv,
      options: {
        agents: { type: 'string' },
        processes: { type: 'string' },
        scenario: { type: 'string' },
        duration: { type: 'string' },
        ramp: { type: 'string' },
        rate: { type: 'string' },
        sd: { type: 'string' },
        gateway: { type: 'string' },
        pki: { type: 'string' },
        'source-addresses': { type: 'string' },
        'disrupt-at': { type: 'string' },
        'disrupt-at-time': { type: 'string' },
        'max-dials': { type: 'string' },
        'per-agent-certs': { type: 'boolean' },
        'gateway-pid': { type: 'string' },
        'on-disrupt': { type: 'string' },
        'on-recover': { type: 'string' },
        'outage-seconds': { type: 'string' },
        manager: { type: 'string' },
        'api-key': { type: 'string' },
        'rolling-percent': { type: 'string' },
        json: { type: 'string' },
        'verify-kafka': { type: 'string' },
        'verify-topic': { type: 'string' },
        'verify-wait': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(`fleetgate sim: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  const num = (name: string, def: number) => {
    const raw = v[name];
    if (raw === undefined) return def;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
    return n;
  };
  let base: Scenario;
  try {
    base = scenarioByName(String(v.scenario ?? 'steady'));
  } catch (err) {
    console.error(`fleetgate sim: ${(err as Error).message}`);
    return 2;
  }
  const scenario: Scenario = {
    ...base,
    durationS: num('duration', base.durationS),
    rampS: num('ramp', base.rampS),
    eventsPerAgentPerS: num('rate', base.eventsPerAgentPerS),
    ...(base.disrupt ? { disrupt: { ...base.disrupt, atS: num('disrupt-at', base.disrupt.atS) } } : {}),
  };
  if (typeof v['disrupt-at-time'] === 'string') {
    const raw = v['disrupt-at-time'];
    const at = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
    const inS = (at - Date.now()) / 1000;
    if (!scenario.disrupt) {
      console.error(
        `fleetgate sim: scenario ${scenario.name} has no disruption; --disrupt-at-time does not apply`,
      );
      return 2;
    }
    if (!Number.isFinite(at) || inS < 0 || inS >= scenario.durationS) {
      console.error(
        `fleetgate sim: --disrupt-at-time ${raw} must be a moment within the run (now … +${scenario.durationS} s), ISO 8601 or epoch ms`,
      );
      return 2;
    }
    scenario.disrupt = { ...scenario.disrupt, atS: Number(inS.toFixed(1)), atEpochMs: at };
  }
  const gatewayPid = v['gateway-pid'] === undefined ? undefined : num('gateway-pid', 0);
  if (gatewayPid !== undefined && (!Number.isInteger(gatewayPid) || gatewayPid <= 0)) {
    console.error('fleetgate sim: --gateway-pid must be a process id');
    return 2;
  }
  const apiKey =
    typeof v['api-key'] === 'string' ? v['api-key'] : process.env.FLEETGATE_SIM_API_KEY || undefined;
  const disruptActions = {
    ...(gatewayPid !== undefined ? { gatewayPid } : {}),
    ...(typeof v['on-disrupt'] === 'string' ? { onDisrupt: v['on-disrupt'] } : {}),
    ...(typeof v['on-recover'] === 'string' ? { onRecover: v['on-recover'] } : {}),
    ...(v['outage-seconds'] !== undefined ? { outageS: num('outage-seconds', 30) } : {}),
    ...(typeof v.manager === 'string' ? { manager: v.manager } : {}),
    ...(apiKey ? { apiKey } : {}),
    ...(v['rolling-percent'] !== undefined ? { rollingPercent: num('rolling-percent', 0) } : {}),
    agents: num('agents', 100),
  };
  const problem = disruptProblem(scenario, disruptActions);
  if (problem) {
    console.error(`fleetgate sim: ${problem}`);
    return 2;
  }
  if (scenario.disrupt && scenario.disrupt.atS >= scenario.durationS)
    console.error(
      `fleetgate sim: warning: the disruption at ${scenario.disrupt.atS}s is after the run's end (${scenario.durationS}s)`,
    );
  let gateway: { host: string; port: number } | undefined;
  if (typeof v.gateway === 'string') {
    const i = v.gateway.lastIndexOf(':');
    gateway = { host: v.gateway.slice(0, i), port: Number(v.gateway.slice(i + 1)) };
  }
  if (!gateway && typeof v.sd !== 'string') {
    console.error('fleetgate sim: give --sd URL or --gateway HOST:PORT');
    return 2;
  }
  // --sd takes what FLEETGATE_SD_ADDRS takes: host:port or an http(s) URL.
  const sd = typeof v.sd === 'string' ? baseUrl(v.sd.trim()) : undefined;
  if (sd !== undefined && !URL.canParse(`${sd}/registry/detail`)) {
    console.error(`fleetgate sim: --sd "${v.sd}" is not host:port or an http(s) URL`);
    return 2;
  }
  if ((v['verify-kafka'] === undefined) !== (v['verify-topic'] === undefined)) {
    console.error('fleetgate sim: --verify-kafka and --verify-topic go together');
    return 2;
  }
  const pkiDir = path.resolve(String(v.pki ?? path.join(process.env.FLEETGATE_DATA_DIR ?? './data', 'pki')));
  const agents = num('agents', 100);
  const processes = Math.max(1, num('processes', 1));
  const startProblem =
    (v['per-agent-certs'] ? perAgentCertsProblem(pkiDir) : undefined) ??
    fdLimitProblem(Math.ceil(agents / processes));
  if (startProblem) {
    console.error(`fleetgate sim: ${startProblem}`);
    return 2;
  }
  let prev: FleetSnapshot | undefined;
  const onProgress = (s: FleetSnapshot) => {
    if (Math.floor(s.elapsedS) % 2 === 0) {
      console.error(formatProgress(s, prev));
      prev = s;
    }
  };
  // The agents' IDs derive from this seed in every process, so the rolling task can name them.
  const idSeed = randomUUID();
  const opts = {
    agents,
    scenario,
    pkiDir,
    idSeed,
    ...(sd !== undefined ? { discovery: sd } : {}),
    ...(gateway ? { gateway } : {}),
    sourceAddresses: num('source-addresses', 1),
    ...(v['max-dials'] !== undefined ? { maxDials: num('max-dials', 0) } : {}),
    ...(v['per-agent-certs'] ? { perAgentCerts: true } : {}),
    ...(scenario.disrupt?.kind === 'kafka-outage'
      ? { outageS: outageSeconds(scenario, disruptActions) }
      : {}),
    onProgress,
  };
  console.error(
    `simulating ${agents} agents (${scenario.name}, ${scenario.durationS}s) in ${processes} process(es) on ${os.hostname()}, run id ${idSeed}`,
  );
  const startedAt = new Date();
  const parent = scheduleDisruption(scenario, disruptActions);
  const rolling = scheduleRollingTask(scenario, disruptActions, agents, idSeed, startedAt.getTime());
  let report: FleetSnapshot;
  try {
    report = processes > 1 ? await runFleetProcesses({ ...opts, processes }) : await runFleet(opts);
  } finally {
    await parent.stop();
  }
  const rollingRun = await rolling.done();
  const summary = buildReport(report, {
    scenario: scenario.name,
    processes,
    startedAt,
    ...(scenario.disrupt
      ? { disrupt: { kind: scenario.disrupt.kind, atS: scenario.disrupt.atS, actions: parent.actions } }
      : {}),
    ...(rollingRun
      ? { rollingTask: rollingTaskReport(rollingRun, report.taskArrivals, startedAt.getTime()) }
      : {}),
  });
  const verify =
    typeof v['verify-kafka'] === 'string' && typeof v['verify-topic'] === 'string'
      ? await verifyAfterRun({
          brokers: v['verify-kafka'],
          topic: v['verify-topic'],
          run: idSeed,
          sent: report.recordsSent,
          waitS: num('verify-wait', 60),
        })
      : undefined;
  const full = { ...summary, run: idSeed, ...(verify ? { verify } : {}) };
  console.log(JSON.stringify(printable(full), null, 2));
  if (typeof v.json === 'string') writeFileSync(v.json, `${JSON.stringify(full, null, 2)}\n`);
  return verify && verify.missing > 0 ? 1 : 0;
}

/**
 * rolling-task: starts the driver at the disruption, in this (parent) process only, bounded by the
 * scenario's end; `done()` cancels it if it has not started and waits for it otherwise.
 */
function scheduleRollingTask(
  scenario: Scenario,
  a: { manager?: string; apiKey?: string; rollingPercent?: number },
  agents: number,
  idSeed: string,
  startedAt: number,
): { done(): Promise<RollingTaskRun | undefined> } {
  const d = scenario.disrupt;
  if (d?.kind !== 'rolling-task' || !a.manager || !a.apiKey || d.atS >= scenario.durationS)
    return { done: async () => undefined };
  const client = managerClient(a.manager, a.apiKey);
  let running: Promise<RollingTaskRun> | undefined;
  const timer = setTimeout(
    () => {
      running = runRollingTask({
        client,
        agentIds: Array.from({ length: agents }, (_, i) => simAgentId(idSeed, i)),
        rollingPercent: rollingPercent(scenario, a),
        runId: idSeed,
        deadline: startedAt + scenario.durationS * 1000,
        log: (line) => console.error(`[sim] ${line}`),
      });
    },
    disruptDelayMs(d, startedAt),
  );
  return {
    async done() {
      clearTimeout(timer);
      return running;
    },
  };
}
