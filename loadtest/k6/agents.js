// k6 load test of a fleetgate (or Elkeid AgentCenter) gateway: each VU is one agent that asks
// discovery, dials the gateways it lists in order with mutual TLS, holds one gRPC Transfer stream,
// sends RawData batches every send tick and a heartbeat every minute, answers plugin tasks, and
// redials 5 s after its stream ends, as a stock Elkeid agent does. Scenario data (rates, event
// mix, timing) comes from scenario.json, generated from loadtest/sim/scenario.ts: the same source
// as `fleetgate sim`. How to run it, and what it cannot do that the simulator does: README.md.
//
//   k6 run -e DISCOVERY=http://sd.internal:8088 -e PKI=/etc/fleetgate/pki -e AGENTS=5000 agents.js
//
// Every VU runs exactly one iteration (per-vu-iterations) that joins at its place in the ramp and
// ends at the scenario's end, counted from the scenario's start, so no VU is cut off at the end.
import { check } from 'k6';
import { SharedArray } from 'k6/data';
import encoding from 'k6/encoding';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter, Rate, Trend } from 'k6/metrics';
import grpc from 'k6/net/grpc';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'k6/timers';
import { bucketLabel, bucketLabels, DIAL_FAILURE_REASONS, summaryReport, summaryText } from './summary.js';

const data = JSON.parse(open('./scenario.json'));
const SCENARIO = __ENV.SCENARIO || 'steady';
const scenario = data.scenarios[SCENARIO];
if (!scenario) {
  throw new Error(`SCENARIO=${SCENARIO}: want one of ${Object.keys(data.scenarios).join(', ')}`);
}
const AGENTS = envNumber('AGENTS', 100, 1, true);
// This instance's agents are ID_PREFIX + AGENT_BASE … ID_PREFIX + (AGENT_BASE + AGENTS − 1).
const AGENT_BASE = envNumber('AGENT_BASE', 0, 0, true);
const ID_PREFIX = __ENV.ID_PREFIX || 'k6-';
const PKI = __ENV.PKI || './pki';
const CERTS = __ENV.CERTS || '';
const DISCOVERY = (__ENV.DISCOVERY || '').replace(/\/+$/, '');
const GATEWAY = __ENV.GATEWAY || (DISCOVERY ? '' : '127.0.0.1:6751');
// Agents verify the server certificate for the name elkeid.com; empty omits the connect param.
const AUTHORITY = __ENV.AUTHORITY === undefined ? 'elkeid.com' : __ENV.AUTHORITY;
const JITTER = envNumber('RECONNECT_JITTER', 0.1, 0, false);
// Events per agent per second: the scenario's unless overridden (as `fleetgate sim --rate`).
const RATE = envNumber('RATE', scenario.eventsPerAgentPerS, 0, false);
const SUMMARY_FILE = __ENV.SUMMARY || `k6-summary-${AGENT_BASE}.json`;
const DIAL_TIMEOUT_MS = data.agent.dialTimeoutMs;
const DISCOVERY_TIMEOUT_MS = 5000;

export const options = {
  scenarios: {
    agents: {
      executor: 'per-vu-iterations',
      vus: AGENTS,
      iterations: 1,
      // The iteration ends by itself at durationS: no dial or discovery request starts after it,
      // and one in flight delays the end by its timeout at most (15 s), well inside the margin.
      maxDuration: `${scenario.durationS + 60}s`,
      gracefulStop: '30s',
    },
  },
  thresholds: thresholds(),
};

const records = new Counter('fleetgate_records_sent');
const recordsDropped = new Counter('fleetgate_records_dropped');
const dialOk = new Rate('fleetgate_dial_ok');
const dialFailures = new Counter('fleetgate_dial_failures');
const dialMs = new Trend('fleetgate_dial_ms', true);
const discoveryFailures = new Counter('fleetgate_discovery_failures');
const streamErrors = new Counter('fleetgate_stream_errors');
const streamsHeld = new Rate('fleetgate_streams_held');
const reconnectMs = new Trend('fleetgate_reconnect_ms', true);
const reconnectBuckets = new Counter('fleetgate_reconnect_bucket');
const commands = new Counter('fleetgate_commands_received');
const commandLatency = new Trend('fleetgate_command_latency_ms', true);
const commandBuckets = new Counter('fleetgate_command_latency_bucket');

const client = new grpc.Client();
client.load(['../../proto'], 'elkeid.proto');
const caCert = open(`${PKI}/ca.crt`);
// Fleet identity: every VU presents the shared client certificate (FLEETGATE_IDENTITY=fleet).
const fleetCert = CERTS ? undefined : { cert: open(`${PKI}/client.crt`), key: open(`${PKI}/client.key`) };
// Per-agent identity (FLEETGATE_IDENTITY=per-agent): agent-<id>.crt/.key as `fleetgate certs agent`
// writes them, read once per instance and shared by its VUs; VU n takes entry n − 1.
const agentCerts = CERTS
  ? new SharedArray('agent certificates', () =>
      Array.from({ length: AGENTS }, (_, i) => {
        const id = agentId(i);
        return { id, cert: open(`${CERTS}/agent-${id}.crt`), key: open(`${CERTS}/agent-${id}.key`) };
      }),
    )
  : undefined;

// Bodies are opaque to the gateway: one per event kind, built once per VU.
const eventBodies = data.eventMix.map((e) => itemBody({ pad: 'x'.repeat(e.bytes) }));
const heartbeatBody = itemBody({
  state: 'running',
  cpu: '0.01000000',
  rss: '30000000',
  platform: 'debian',
  arch: 'x86_64',
});

function envNumber(name, fallback, min, integer) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new Error(`${name}=${raw}: want ${integer ? 'an integer' : 'a number'} ≥ ${min}`);
  }
  return n;
}

function agentId(index) {
  return `${ID_PREFIX}${AGENT_BASE + index}`;
}

function thresholds() {
  const t = {
    // Most dials failing means a wrong address, PKI or authority: stop instead of measuring that.
    fleetgate_dial_ok: [
      {
        threshold: `rate>=${envNumber('MIN_DIAL_OK', 0.5, 0, false)}`,
        abortOnFail: true,
        delayAbortEval: '1m',
      },
    ],
    fleetgate_streams_held: [`rate>=${envNumber('MIN_HELD', 0.99, 0, false)}`],
    checks: [`rate>=${envNumber('MIN_CHECKS', 0.99, 0, false)}`],
    fleetgate_command_latency_ms: ['p(99)<2000'],
  };
  // Thresholds that always pass put each tagged count into the end-of-test summary data.
  for (const reason of DIAL_FAILURE_REASONS) t[`fleetgate_dial_failures{reason:${reason}}`] = ['count>=0'];
  for (const le of bucketLabels()) {
    t[`fleetgate_command_latency_bucket{le:${le}}`] = ['count>=0'];
    t[`fleetgate_reconnect_bucket{le:${le}}`] = ['count>=0'];
  }
  return t;
}

// An Item body (map<string,string> Fields = 1) encoded by hand: k6 has no protobuf encoder for
// nested bytes, and the body is opaque to the gateway anyway.
function itemBody(fields) {
  const bytes = [];
  const varint = (n) => {
    let v = n;
    while (v > 127) {
      bytes.push((v & 127) | 128);
      v >>>= 7;
    }
    bytes.push(v);
  };
  const str = (tag, s) => {
    bytes.push(tag);
    varint(s.length);
    for (let i = 0; i < s.length; i++) bytes.push(s.charCodeAt(i) & 0x7f);
  };
  for (const [k, v] of Object.entries(fields)) {
    const save = bytes.length;
    str(0x0a, k);
    str(0x12, v);
    const entry = bytes.splice(save);
    bytes.push(0x0a);
    varint(entry.length);
    for (const b of entry) bytes.push(b);
  }
  return encoding.b64encode(new Uint8Array(bytes).buffer);
}

function pickEvent() {
  let x = Math.random();
  for (let i = 0; i < data.eventMix.length; i++) {
    x -= data.eventMix[i].weight;
    if (x <= 0) return i;
  }
  return 0;
}

function hostPort(ip, port) {
  return ip.includes(':') && !ip.startsWith('[') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The gateways a registry answer lists, in its order, or why there are none. */
function parseRegistry(res) {
  if (res.status !== 200) return { list: [], problem: res.status ? `status_${res.status}` : 'unreachable' };
  let body;
  try {
    body = JSON.parse(res.body);
  } catch (_) {
    return { list: [], problem: 'bad_json' };
  }
  const entries = body && Array.isArray(body.data) ? body.data : [];
  const list = entries
    .filter((d) => d && typeof d.ip === 'string' && d.ip !== '' && Number.isInteger(d.port))
    .filter((d) => d.port > 0 && d.port < 65536)
    .slice(0, data.agent.discoveryCount)
    .map((d) => hostPort(d.ip, d.port));
  return { list, problem: list.length > 0 ? '' : 'empty' };
}

/** Discovery's answer, as the agent asks it before every dial round (elkeid-protocol §1.8). */
function discover() {
  const url = `${DISCOVERY}/registry/detail?name=${data.agent.discoveryName}&count=${data.agent.discoveryCount}`;
  const res = http.get(url, { timeout: `${DISCOVERY_TIMEOUT_MS}ms`, tags: { name: 'registry/detail' } });
  const { list, problem } = parseRegistry(res);
  check(res, { 'discovery listed a gateway': () => problem === '' });
  if (problem) discoveryFailures.add(1, { reason: problem });
  return list;
}

/** Why a dial failed, from k6's (grpc-go's) error text: a storm's refusals are not a PKI mistake. */
function dialFailureReason(err) {
  const text = String(err?.message || err);
  if (/deadline exceeded|timed? ?out/i.test(text)) return 'timeout';
  if (/refused/i.test(text)) return 'refused';
  if (/reset|broken pipe|EOF/i.test(text)) return 'reset';
  if (/tls|x509|certificate|handshake/i.test(text)) return 'tls';
  return 'other';
}

/** This VU's agent: identity, TLS material and connection state for its one iteration. */
function newAgent(index, endAt) {
  const own = agentCerts ? agentCerts[index] : undefined;
  const id = own ? own.id : agentId(index);
  const tls = { ...(own ? { cert: own.cert, key: own.key } : fleetCert), cacerts: [caCert] };
  const connectParams = { tls, timeout: `${DIAL_TIMEOUT_MS}ms` };
  if (AUTHORITY) connectParams.authority = AUTHORITY;
  return {
    id,
    header: { AgentID: id, Hostname: id, Version: data.agent.version, Product: data.agent.product },
    connectParams,
    endAt,
    stream: null,
    stopping: false,
    pending: [],
    carry: 0,
    lastTickAt: 0,
    lostAt: 0,
    timers: [],
    redial: null,
  };
}

/** Dials the candidates in order until one answers; false when none did (or time ran out). */
function dialRound(a, addresses) {
  for (const address of addresses) {
    // A dial blocks the VU (timers wait) for up to the dial timeout: none starts after the end,
    // so an iteration overruns durationS by one dial at most, well inside maxDuration.
    if (a.stopping || Date.now() >= a.endAt) return false;
    const started = Date.now();
    let failure = '';
    try {
      client.connect(address, a.connectParams);
    } catch (err) {
      failure = dialFailureReason(err);
    }
    dialOk.add(failure === '');
    check(failure, { 'gateway dial succeeded': (f) => f === '' });
    if (failure === '') {
      dialMs.add(Date.now() - started);
      return true;
    }
    dialFailures.add(1, { reason: failure });
  }
  return false;
}

/** One connection attempt as the agent makes it: discovery, dial round, stream; else wait and retry. */
function connect(a) {
  a.redial = null;
  if (a.stopping) return;
  let candidates = [];
  if (DISCOVERY && Date.now() < a.endAt) candidates = discover();
  if (candidates.length === 0 && GATEWAY) candidates = [GATEWAY];
  if (dialRound(a, candidates) && openStream(a)) return;
  scheduleRedial(a);
}

/** The agent waits 5 s after a failed round or a lost stream (jittered here: RECONNECT_JITTER). */
function scheduleRedial(a) {
  if (a.stopping) return;
  a.redial = setTimeout(() => connect(a), scenario.reconnectDelayMs * (1 + JITTER * Math.random()));
}

function openStream(a) {
  let stream;
  try {
    stream = new grpc.Stream(client, 'grpc.Transfer/Transfer');
  } catch (_) {
    streamErrors.add(1, { code: 'open' });
    client.close();
    return false;
  }
  stream.on('data', (cmd) => onCommand(a, cmd));
  // k6 calls 'error' (with the gRPC status) and then 'end' for the same stream.
  stream.on('error', (err) =>
    streamErrors.add(1, { code: String(err && err.code !== undefined ? err.code : 'unknown') }),
  );
  stream.on('end', () => onStreamEnd(a, stream));
  a.stream = stream;
  if (a.lostAt) {
    const ms = Date.now() - a.lostAt;
    reconnectMs.add(ms);
    reconnectBuckets.add(1, { le: bucketLabel(ms) });
  }
  // The agent heartbeats at the start of every stream, then every minute.
  heartbeat(a);
  return true;
}

function onStreamEnd(a, stream) {
  if (a.stream !== stream) return; // ended by stop(), or already replaced
  a.stream = null;
  check(a, { 'stream not lost before the scenario end': () => false });
  a.lostAt = Date.now();
  client.close();
  scheduleRedial(a);
}

function onCommand(a, cmd) {
  commands.add(1);
  if (!cmd?.Task) return;
  // The simulator's conventions in task data (loadtest/sim/sim-agent.ts): sent_ms for the
  // latency, result_data_type for the result record (5100 lets a stock manager decide it).
  // Without sent_ms/result_data_type, a task of a deciding type (5100, 8010, 6000) is answered
  // with that type, as the agent's plugins do.
  let resultType = [5100, 8010, 6000].includes(cmd.Task.DataType) ? cmd.Task.DataType : 2001;
  if (cmd.Task.Data) {
    try {
      const d = JSON.parse(cmd.Task.Data);
      if (d && typeof d.sent_ms === 'number') {
        const ms = Date.now() - d.sent_ms;
        commandLatency.add(ms);
        commandBuckets.add(1, { le: bucketLabel(ms) });
      }
      if (d && Number.isInteger(d.result_data_type)) resultType = d.result_data_type;
    } catch (_) {
      // Task data that is not JSON is the plugin's business; the result record still goes back.
    }
  }
  if (cmd.Task.Name === data.agent.product) return; // tasks for the agent itself get no record
  a.pending.push({
    DataType: resultType,
    Timestamp: Math.floor(Date.now() / 1000),
    Body: itemBody({ token: cmd.Task.Token || '', status: 'succeed', msg: '' }),
  });
}

function heartbeat(a) {
  a.pending.push({ DataType: 1000, Timestamp: Math.floor(Date.now() / 1000), Body: heartbeatBody });
}

/** Every send tick: events accrue by elapsed time (as on a host), one RawData carries them all. */
function tick(a) {
  const now = Date.now();
  const elapsed = a.lastTickAt ? now - a.lastTickAt : data.agent.sendTickMs;
  a.lastTickAt = now;
  a.carry += (RATE * elapsed) / 1000;
  while (a.carry >= 1) {
    a.carry -= 1;
    const i = pickEvent();
    a.pending.push({
      DataType: data.eventMix[i].dataType,
      Timestamp: Math.floor(now / 1000),
      Body: eventBodies[i],
    });
  }
  // The agent's ring holds ringSlots records; beyond that the oldest are lost (as stock).
  if (a.pending.length > data.agent.ringSlots) {
    recordsDropped.add(a.pending.length - data.agent.ringSlots);
    a.pending.splice(0, a.pending.length - data.agent.ringSlots);
  }
  if (!a.stream || a.pending.length === 0) return;
  a.stream.write({ ...a.header, Data: a.pending });
  records.add(a.pending.length);
  a.pending = [];
}

function start(a) {
  a.timers.push(setInterval(() => tick(a), data.agent.sendTickMs));
  a.timers.push(setInterval(() => heartbeat(a), data.agent.heartbeatS * 1000));
  connect(a);
}

/** The scenario's end: the agent's state is measured, then everything it holds is released. */
function stop(a) {
  a.stopping = true;
  for (const t of a.timers) clearInterval(t);
  if (a.redial) clearTimeout(a.redial);
  const up = a.stream !== null;
  streamsHeld.add(up);
  check(a, { 'stream not lost before the scenario end': () => up });
  if (a.stream) {
    const s = a.stream;
    a.stream = null;
    s.end();
  }
  client.close();
}

export default function () {
  const index = exec.vu.idInInstance - 1;
  const t0 = exec.scenario.startTime;
  // Agents join evenly over rampS (as `fleetgate sim` ramps) and all leave at durationS.
  const joinAt = t0 + Math.floor((index * scenario.rampS * 1000) / AGENTS);
  const a = newAgent(index, t0 + scenario.durationS * 1000);
  const startTimer = setTimeout(() => start(a), Math.max(0, joinAt - Date.now()));
  setTimeout(
    () => {
      clearTimeout(startTimer);
      stop(a);
    },
    Math.max(0, a.endAt - Date.now()),
  );
}

export function handleSummary(summary) {
  const report = summaryReport(summary, {
    scenario: SCENARIO,
    agents: AGENTS,
    agentBase: AGENT_BASE,
    idPrefix: ID_PREFIX,
  });
  return {
    stdout: summaryText(report, SUMMARY_FILE),
    [SUMMARY_FILE]: `${JSON.stringify(report, null, 2)}\n`,
  };
}
