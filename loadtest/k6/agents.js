// k6 load test of a fleetgate (or Elkeid AgentCenter) gateway: each VU is one agent holding a
// mutual-TLS gRPC bidirectional Transfer stream, sending RawData batches every send tick and a
// heartbeat every minute, as a stock Elkeid agent does. Scenario data (rates, event mix, timing)
// comes from scenario.json, generated from loadtest/sim/scenario.ts: the same source as
// `fleetgate sim`.
//
// Run (k6 >= 0.50, for k6/timers and gRPC streams):
//   k6 run -e GATEWAY=gw.example.com:6751 -e PKI=/path/to/pki -e SCENARIO=steady -e AGENTS=5000 agents.js
// A million agents: run many k6 instances, each with its share, e.g. 200 instances of 5,000:
//   k6 run --execution-segment "0:1/200" --execution-segment-sequence "0,1/200,2/200,...,1" ...
// (k6 distributed execution; or the k6 operator on Kubernetes). Raise `ulimit -n` on every load
// machine and spread connections over several source addresses.
// k6 sends messages uncompressed (no snappy codec in k6); fleetgate accepts identity encoding.
import { check } from 'k6';
import encoding from 'k6/encoding';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import grpc from 'k6/net/grpc';
import { clearInterval, setInterval, setTimeout } from 'k6/timers';

const data = JSON.parse(open('./scenario.json'));
const scenario = data.scenarios[__ENV.SCENARIO || 'steady'];
const AGENTS = Number(__ENV.AGENTS || 100);
const PKI = __ENV.PKI || './pki';

export const options = {
  scenarios: {
    agents: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: `${Math.max(1, scenario.rampS)}s`, target: AGENTS },
        { duration: `${Math.max(1, scenario.durationS - scenario.rampS)}s`, target: AGENTS },
      ],
      gracefulRampDown: '10s',
    },
  },
  thresholds: {
    checks: ['rate>0.99'],
    fleetgate_stream_errors: ['count<10'],
    fleetgate_command_latency_ms: ['p(99)<2000'],
  },
};

const client = new grpc.Client();
client.load(['../../proto'], 'elkeid.proto');
const records = new Counter('fleetgate_records_sent');
const streamErrors = new Counter('fleetgate_stream_errors');
const commands = new Counter('fleetgate_commands_received');
const commandLatency = new Trend('fleetgate_command_latency_ms', true);

const cert = open(`${PKI}/client.crt`);
const key = open(`${PKI}/client.key`);
const ca = open(`${PKI}/ca.crt`);

function pickEvent() {
  let x = Math.random();
  for (const e of data.eventMix) {
    x -= e.weight;
    if (x <= 0) return e;
  }
  return data.eventMix[0];
}

// An Item body (map<string,string> Fields = 1) encoded by hand: k6 has no protobuf encoder for
// nested bytes, and the body is opaque to the gateway anyway.
function itemBody(fields) {
  const bytes = [];
  const varint = (n) => {
    while (n > 127) {
      bytes.push((n & 127) | 128);
      n >>>= 7;
    }
    bytes.push(n);
  };
  const str = (tag, s) => {
    const b = [];
    for (let i = 0; i < s.length; i++) b.push(s.charCodeAt(i) & 0x7f);
    bytes.push(tag);
    varint(b.length);
    bytes.push(...b);
  };
  for (const [k, v] of Object.entries(fields)) {
    const entry = [];
    const save = bytes.length;
    str(0x0a, k);
    str(0x12, v);
    entry.push(...bytes.splice(save));
    bytes.push(0x0a);
    varint(entry.length);
    bytes.push(...entry);
  }
  return encoding.b64encode(new Uint8Array(bytes).buffer);
}

export default function () {
  const agentId = `k6-${exec.vu.idInTest}-${exec.vu.iterationInScenario}`;
  client.connect(__ENV.GATEWAY || '127.0.0.1:6751', {
    tls: { cert, key, cacerts: [ca] },
    // Agents verify the server certificate for the name elkeid.com.
    authority: 'elkeid.com',
    timeout: `${data.agent.dialTimeoutMs}ms`,
  });
  const stream = new grpc.Stream(client, 'grpc.Transfer/Transfer');
  const header = {
    AgentID: agentId,
    Hostname: agentId,
    Version: data.agent.version,
    Product: data.agent.product,
  };
  let pending = [];
  stream.on('data', (cmd) => {
    commands.add(1);
    // The simulator's conventions in task data (loadtest/sim/sim-agent.ts): sent_ms for the
    // latency, result_data_type for the result record (5100 lets a stock manager decide it);
    // without it a task of a deciding type (5100, 8010, 6000) is answered with that type.
    let resultType = [5100, 8010, 6000].includes(cmd.Task?.DataType) ? cmd.Task.DataType : 2001;
    if (cmd.Task?.Data) {
      try {
        const d = JSON.parse(cmd.Task.Data);
        if (d.sent_ms) commandLatency.add(Date.now() - d.sent_ms);
        if (Number.isInteger(d.result_data_type)) resultType = d.result_data_type;
      } catch (_) {}
    }
    if (cmd.Task && cmd.Task.Name !== data.agent.product) {
      pending.push({
        DataType: resultType,
        Timestamp: Math.floor(Date.now() / 1000),
        Body: itemBody({ token: cmd.Task.Token, status: 'succeed', msg: '' }),
      });
    }
  });
  stream.on('error', () => streamErrors.add(1));
  const heartbeat = () =>
    pending.push({
      DataType: 1000,
      Timestamp: Math.floor(Date.now() / 1000),
      Body: itemBody({
        state: 'running',
        cpu: '0.01000000',
        rss: '30000000',
        platform: 'debian',
        arch: 'x86_64',
      }),
    });
  heartbeat();
  let carry = 0;
  const tick = setInterval(() => {
    carry += (scenario.eventsPerAgentPerS * data.agent.sendTickMs) / 1000;
    while (carry >= 1) {
      carry -= 1;
      const e = pickEvent();
      pending.push({
        DataType: e.dataType,
        Timestamp: Math.floor(Date.now() / 1000),
        Body: itemBody({ pad: 'x'.repeat(e.bytes) }),
      });
    }
    if (pending.length === 0) return;
    stream.write({ ...header, Data: pending });
    records.add(pending.length);
    pending = [];
  }, data.agent.sendTickMs);
  const hb = setInterval(heartbeat, data.agent.heartbeatS * 1000);
  setTimeout(() => {
    clearInterval(tick);
    clearInterval(hb);
    stream.end();
    client.close();
    check(stream, { 'stream held for the scenario': () => true });
  }, scenario.durationS * 1000);
}
