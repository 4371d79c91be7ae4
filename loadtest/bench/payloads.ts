/**
 * Elkeid-shaped agent messages for the benchmarks: a RawData header as the agent fills it on
 * every batch, agent heartbeats (data_type 1000) and execve events (data_type 59, the bulk of a
 * real agent's traffic) whose bodies are encoded Item maps with the driver plugin's field names.
 * Content comes from a seeded PRNG: hashes and ids are random (incompressible), paths and
 * command lines come from small dictionaries (compressible), like real data.
 */
import { randomUUID } from 'node:crypto';
import { encodeItem } from '../../gateway/agent/item.js';
import { frameMessage } from '../../gateway/grpc/message-reader.js';
import { grpc } from '../../proto/gen/elkeid.js';
import { encodeAgentMessage } from '../agent/raw-agent.js';

export type WireEncoding = 'snappy' | 'identity';

/** mulberry32: small, fast, deterministic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const int = (rand: () => number, lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const hex = (rand: () => number, n: number) => {
  let s = '';
  for (let i = 0; i < n; i++) s += '0123456789abcdef'[Math.floor(rand() * 16)];
  return s;
};

const EXES = [
  '/usr/bin/bash',
  '/usr/bin/python3.11',
  '/usr/sbin/sshd',
  '/usr/bin/curl',
  '/usr/bin/git',
  '/usr/lib/jvm/java-17-openjdk-amd64/bin/java',
  '/usr/local/bin/node',
  '/usr/bin/dockerd',
  '/usr/bin/containerd-shim-runc-v2',
  '/usr/bin/systemctl',
  '/usr/sbin/cron',
  '/usr/bin/ps',
];
const ARGS = [
  '-c',
  '--config=/etc/app/config.yaml',
  '/opt/app/bin/worker.py',
  '--log-level=info',
  'https://mirrors.internal.example.com/debian/dists/bookworm/InRelease',
  '-namespace moby -id',
  'status nginx.service',
  '/var/lib/docker/containers',
  '-Xmx2g -XX:+UseG1GC -jar /opt/service/app.jar',
  'fetch --prune origin',
  '--address /run/containerd/containerd.sock',
  'aux --sort=-%cpu',
];
const USERS = ['root', 'www-data', 'app', 'postgres', 'deploy', 'nobody'];
const CWDS = ['/', '/root', '/home/deploy', '/opt/app', '/var/lib/postgresql', '/srv/www'];

/** The RawData header an agent puts on every batch. */
export function agentHeader(agentId: string, index: number): grpc.RawData.$Properties {
  const a = (index >> 8) & 0xff;
  const b = index & 0xff;
  return {
    AgentID: agentId,
    IntranetIPv4: [`10.${a}.${b}.${(index % 250) + 2}`, '172.17.0.1'],
    ExtranetIPv4: [],
    IntranetIPv6: [`fe80::${(index & 0xffff).toString(16)}:5054:ff:fe12:3456`],
    ExtranetIPv6: [],
    Hostname: `node-${index.toString().padStart(5, '0')}.prod.example.internal`,
    Version: '1.9.1.4',
    Product: 'elkeid-agent',
  };
}

export function newAgentId(): string {
  return randomUUID();
}

/** An agent heartbeat (data_type 1000) with the fields Elkeid's agent reports. */
export function heartbeatRecord(rand: () => number, nowSeconds: number): grpc.Record.$Properties {
  const fields: Record<string, string> = {
    kernel_version: '6.1.0-18-amd64',
    arch: 'x86_64',
    platform: 'debian',
    platform_family: 'debian',
    platform_version: '12.5',
    boot_at: String(nowSeconds - int(rand, 3600, 9_000_000)),
    start_at: String(nowSeconds - int(rand, 60, 900_000)),
    cpu: (rand() * 0.05).toFixed(8),
    rss: String(int(rand, 20_000_000, 60_000_000)),
    read_speed: String(int(rand, 0, 20000)),
    write_speed: String(int(rand, 0, 80000)),
    tx_speed: String(int(rand, 100, 20000)),
    rx_speed: String(int(rand, 100, 20000)),
    tx_tps: String(int(rand, 1, 50)),
    rx_tps: String(int(rand, 1, 50)),
    nfd: String(int(rand, 20, 80)),
    du: String(int(rand, 10_000_000, 90_000_000)),
    grs: String(int(rand, 10, 30)),
    pid: String(int(rand, 300, 40000)),
    net_mode: 'grpc',
    state: 'running',
    state_detail: '',
    cpu_name: 'Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz',
    host_serial: hex(rand, 12),
    host_id: hex(rand, 32),
    host_model: 'KVM',
    host_vendor: 'QEMU',
    dns: '10.0.0.2',
    gateway: '10.0.0.1',
    load_1: (rand() * 2).toFixed(2),
    load_5: (rand() * 2).toFixed(2),
    load_15: (rand() * 2).toFixed(2),
    running_procs: String(int(rand, 1, 6)),
    total_procs: String(int(rand, 150, 600)),
    idc: 'default',
    region: 'default',
  };
  return { DataType: 1000, Timestamp: nowSeconds, Body: encodeItem(fields) };
}

/**
 * An execve event (data_type 59) whose encoded Item is about `targetBytes` long. `extra` fields
 * (benchmark stamps) come first and count towards the size.
 */
export function execRecord(
  rand: () => number,
  nowSeconds: number,
  hostname: string,
  targetBytes = 600,
  extra: Readonly<Record<string, string>> = {},
): grpc.Record.$Properties {
  const exe = pick(rand, EXES);
  const comm = exe.slice(exe.lastIndexOf('/') + 1).slice(0, 15);
  const pid = int(rand, 1000, 4_000_000);
  const ppid = int(rand, 1, pid);
  const fields: Record<string, string> = {
    ...extra,
    uid: String(pick(rand, [0, 0, 33, 1000, 999])),
    exe,
    pid: String(pid),
    ppid: String(ppid),
    pgid: String(ppid),
    tgid: String(pid),
    sid: String(int(rand, 1, ppid)),
    comm,
    nodename: hostname,
    pns: String(4026531836 + int(rand, 0, 400)),
    root_pns: '4026531836',
    dip: '-1',
    dport: '-1',
    sip: '-1',
    sport: '-1',
    sa_family: '-1',
    pid_tree: `${pid}.${comm}<${ppid}.bash<${int(rand, 500, 999)}.sshd<1.systemd`,
    tty: pick(rand, ['-1', 'pts0', 'pts1']),
    socket_exe: '-1',
    socket_pid: '-1',
    ssh: pick(rand, ['-1', `10.1.${int(rand, 0, 255)}.${int(rand, 1, 254)} 52${int(rand, 100, 999)} 22`]),
    ld_preload: '-1',
    res: '0',
    run_path: pick(rand, CWDS),
    pgid_argv: `${pick(rand, EXES)} ${pick(rand, ARGS)}`,
    ppid_argv: `-bash ${pick(rand, ARGS)}`,
    exe_hash: hex(rand, 16),
    username: pick(rand, USERS),
    stdin: pick(rand, ['/dev/null', 'pipe:[', '/dev/pts/0']),
    stdout: pick(rand, ['/dev/null', 'pipe:[', 'socket:[']),
    ld_library_path: '-1',
    argv: '',
  };
  // Fields the driver leaves out on some kernels/versions go first when the event is too long.
  for (const optional of ['pgid_argv', 'ld_library_path', 'socket_exe', 'socket_pid', 'ld_preload', 'tgid']) {
    if (encodeItem(fields).length <= targetBytes - 60) break;
    delete fields[optional];
  }
  const base = encodeItem(fields).length;
  let argv = `${exe} ${pick(rand, ARGS)}`;
  while (base + argv.length < targetBytes - 24) argv += ` ${pick(rand, ARGS)} --id=${hex(rand, 8)}`;
  fields.argv = argv.slice(0, Math.max(1, targetBytes - base));
  return { DataType: 59, Timestamp: nowSeconds, Body: encodeItem(fields) };
}

/** A length-prefixed gRPC message as an agent sends it: snappy-framed (flag 1) or identity (flag 0). */
export function encodeFrame(raw: grpc.RawData.$Properties, encoding: WireEncoding): Buffer {
  if (encoding === 'snappy') return encodeAgentMessage(raw);
  return frameMessage(grpc.RawData.encode(raw).finish(), false);
}

/** grpc-go's request headers, with or without the snappy compressor. */
export function transferHeaders(encoding: WireEncoding): Record<string, string> {
  const h: Record<string, string> = {
    ':method': 'POST',
    ':path': '/grpc.Transfer/Transfer',
    ':scheme': 'https',
    ':authority': 'elkeid.com',
    'content-type': 'application/grpc',
    te: 'trailers',
    'user-agent': 'grpc-go/1.69.4',
  };
  if (encoding === 'snappy') {
    h['grpc-encoding'] = 'snappy';
    h['grpc-accept-encoding'] = 'snappy';
  }
  return h;
}

/** The first message of an agent: its header plus one heartbeat. */
export function firstMessage(agentId: string, index: number, rand: () => number): grpc.RawData.$Properties {
  const now = Math.floor(Date.now() / 1000);
  return { ...agentHeader(agentId, index), Data: [heartbeatRecord(rand, now)] };
}

/**
 * A data batch: the header plus `records` execve events of about `recordBytes` each; `extra(i)`
 * adds fields to the i-th record's body (benchmark stamps).
 */
export function dataMessage(
  agentId: string,
  index: number,
  rand: () => number,
  records: number,
  recordBytes: number,
  extra?: (i: number) => Readonly<Record<string, string>>,
): grpc.RawData.$Properties {
  const now = Math.floor(Date.now() / 1000);
  const header = agentHeader(agentId, index);
  const data: grpc.Record.$Properties[] = [];
  for (let i = 0; i < records; i++)
    data.push(execRecord(rand, now, header.Hostname ?? '', recordBytes, extra?.(i)));
  return { ...header, Data: data };
}
