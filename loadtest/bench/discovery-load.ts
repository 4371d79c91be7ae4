/**
 * The load generator of `bench:discovery`, a child process: keep-alive HTTP/1.1 GETs over raw
 * TCP sockets (one request in flight per connection, as agents and node:http agents do), with
 * latencies in an HDR histogram. Raw sockets keep the client's own cost per request low, so on a
 * 2-core machine the server, not the client, is what runs out first.
 *
 * Commands (one JSON line each on stdin): `run` {port, path, connections, durationMs, rate?}:
 * closed loop (each connection sends its next request when the answer is in) or, with `rate`,
 * open loop at that many requests per second in total: a request that is late because the
 * previous answer was late is timed from its scheduled time (no coordinated omission); one sent
 * by the connection's own timer from when it was sent (libuv timers have millisecond slack).
 */
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { processStats, reply, serveCommands } from './child-protocol.js';

interface RunArgs {
  port: number;
  path: string;
  connections: number;
  durationMs: number;
  rate?: number;
}

const HEADER_END = Buffer.from('\r\n\r\n');

function run(args: RunArgs) {
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const request = Buffer.from(
    `GET ${args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: fleetgate-bench\r\n\r\n`,
  );
  let ok = 0;
  let non200 = 0;
  let errors = 0;
  let bytes = 0;
  const started = performance.now();
  const endAt = started + args.durationMs;
  const period = args.rate ? (args.connections * 1000) / args.rate : 0; // ms between sends per connection
  const cpu0 = processStats();
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();

  return new Promise<object>((resolve) => {
    let open = args.connections;
    const finish = () => {
      if (--open > 0) return;
      const elapsedS = (performance.now() - started) / 1000;
      const cpu1 = processStats();
      const us = (q: number) => histogram.getValueAtPercentile(q);
      resolve({
        requests: ok,
        non200,
        errors,
        bytes,
        elapsedS,
        rps: ok / elapsedS,
        latencyUs: {
          p50: us(50),
          p90: us(90),
          p99: us(99),
          p999: us(99.9),
          max: histogram.maxValue,
          mean: histogram.mean,
        },
        clientCpuS: (cpu1.cpuUser + cpu1.cpuSystem - cpu0.cpuUser - cpu0.cpuSystem) / 1e6,
        clientLoopDelayMs: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
      });
      loopDelay.disable();
    };
    for (let i = 0; i < args.connections; i++) {
      const socket = net.connect({ port: args.port, host: '127.0.0.1', noDelay: true });
      let buf: Buffer = Buffer.alloc(0);
      let sentAt = 0;
      // Open loop: the schedule of this connection, staggered across connections.
      let nextAt = started + (period * i) / args.connections;
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const stop = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        finish();
      };
      /** `fromTimer`: called by this connection's timer rather than right after an answer. */
      const send = (fromTimer = false) => {
        const now = performance.now();
        if (now >= endAt) return stop();
        if (period > 0) {
          const wait = nextAt - now;
          if (wait > 0.5) {
            timer = setTimeout(() => send(true), wait);
            return;
          }
          // Behind schedule because the previous answer came late: the wait is the server's, so
          // latency counts from the scheduled time (no coordinated omission). Sent by our own
          // timer: libuv timers fire up to a millisecond or so late, which is the client's doing,
          // so latency counts from now.
          sentAt = fromTimer ? now : Math.min(nextAt, now);
          nextAt += period;
        } else {
          sentAt = now;
        }
        socket.write(request);
      };
      socket.on('connect', () => send());
      socket.on('data', (chunk: Buffer) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        for (;;) {
          const headerEnd = buf.indexOf(HEADER_END);
          if (headerEnd < 0) return;
          const head = buf.subarray(0, headerEnd).toString('latin1');
          const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          if (!m) {
            errors++;
            return stop();
          }
          const total = headerEnd + 4 + Number(m[1]);
          if (buf.length < total) return;
          const status = head.charCodeAt(9) === 50 && head.startsWith('200', 9);
          if (status) ok++;
          else non200++;
          bytes += total;
          histogram.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1000)));
          buf = buf.subarray(total);
          send();
        }
      });
      socket.on('error', () => {
        errors++;
        stop();
      });
      socket.on('close', stop);
    }
  });
}

serveCommands({ run: (c) => run(c as unknown as RunArgs) }, () => process.exit(0));
reply({ pid: process.pid });
