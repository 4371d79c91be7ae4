// Local single-node Apache Kafka broker (KRaft, no ZooKeeper) on 127.0.0.1:9092 for tests,
// benchmarks and CI. The jars come from Maven Central (infra/local/kafka/pom.xml), cached in
// infra/local/cache/kafka/; broker config, data, pid and log live in the state dir
// ($FLEETGATE_KAFKA_STATE_DIR, default infra/local/state/). See infra/local/README.md.
//
//   import { ensureKafka, stopKafka } from '../infra/local/kafka-control.mjs';
//   const { brokers } = await ensureKafka({ log: console.log }); // ['127.0.0.1:9092']
//   await stopKafka();
//
// Every exported function also takes an optional `instance` = { port = 9092, controllerPort =
// port + 1, stateDir }: a second, disposable broker with its own ports and state dir that a test may
// kill (killKafka) and restart (startKafka) without touching the shared one on 9092:
//
//   const port = await findFreePortPair();
//   const instance = { port, stateDir: await mkdtemp(path.join(os.tmpdir(), 'kafka-')) };
//   await ensureKafka({ log }, instance);   // brokers: [`127.0.0.1:${port}`]
//   await killKafka(instance, 'SIGKILL');   // a crash; resolves once the port is closed
//   await startKafka(instance);             // same storage: topics and records are kept
//   await stopKafka({ log }, instance);     // SIGTERM

import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const KAFKA_HOST = '127.0.0.1';
export const KAFKA_PORT = 9092;
export const CONTROLLER_PORT = 9093;
export const KAFKA_BROKER = `${KAFKA_HOST}:${KAFKA_PORT}`;

const HERE = path.dirname(fileURLToPath(import.meta.url));
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;
const MAVEN_TIMEOUT_MS = 15 * 60_000;
const LOG_TAIL_LINES = 50;
const HEAP_OPTS = ['-Xms256m', '-Xmx512m'];
// Disposable instances: a smaller heap, and C1 only (about 1.5 s less per start; they carry test
// traffic, not benchmarks).
const DISPOSABLE_JVM_OPTS = ['-Xms128m', '-Xmx384m', '-XX:TieredStopAtLevel=1'];
const DISPOSABLE_POLL_MS = 200; // the default broker is polled every second, as it always was
const KILL_TIMEOUT_MS = 30_000;
const JVM_OPTS = [
  '-XX:+UseG1GC',
  '-XX:MaxGCPauseMillis=20',
  '-XX:InitiatingHeapOccupancyPercent=35',
  '-XX:+ExplicitGCInvokesConcurrent',
  '-XX:MaxInlineLevel=15',
  '-Djava.awt.headless=true',
];

/** Error whose message is meant for a person; kafka.mjs prints it without a stack. */
export class KafkaSetupError extends Error {
  name = 'KafkaSetupError';
}

// ---------------------------------------------------------------------------------------------
// Instances

function defaultStateDir() {
  return process.env.FLEETGATE_KAFKA_STATE_DIR
    ? path.resolve(process.env.FLEETGATE_KAFKA_STATE_DIR)
    : path.join(HERE, 'state');
}

/** The path with symlinks resolved when it exists (for comparisons only). */
function canonical(p) {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

const INSTANCE_KEYS = ['port', 'controllerPort', 'stateDir', 'tls'];

function checkPort(name, value) {
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new TypeError(`Kafka instance: ${name} must be an integer port number, got ${String(value)}`);
  }
}

/**
 * { port, controllerPort, stateDir, host, broker, controller, isDefault } of an instance
 * argument. The default instance (127.0.0.1:9092, controller 9093, the default state dir) is the
 * shared broker of `npm run kafka:up`; any other instance must have a state dir of its own.
 */
function resolveInstance(instance = {}) {
  if (instance === null || typeof instance !== 'object' || Array.isArray(instance)) {
    throw new TypeError(
      `Kafka instance must be an object { port, controllerPort, stateDir }, got ${instance}`,
    );
  }
  for (const key of Object.keys(instance)) {
    if (!INSTANCE_KEYS.includes(key)) {
      throw new TypeError(`unknown Kafka instance field '${key}' (expected ${INSTANCE_KEYS.join(', ')})`);
    }
  }
  const port = instance.port ?? KAFKA_PORT;
  const controllerPort = instance.controllerPort ?? port + 1;
  checkPort('port', port);
  checkPort('controllerPort', controllerPort);
  if (port === controllerPort) {
    throw new TypeError(`Kafka instance: port and controllerPort are both ${port}`);
  }
  const fallback = defaultStateDir();
  const stateDir = instance.stateDir == null ? fallback : path.resolve(String(instance.stateDir));
  const sharedDir = canonical(stateDir) === canonical(fallback);
  const isDefault = sharedDir && port === KAFKA_PORT && controllerPort === CONTROLLER_PORT;
  // A TLS listener (disposable instances only): { port, keystore } where keystore is a PEM file
  // holding the broker's certificate chain and its unencrypted PKCS#8 key, advertised as
  // localhost:<port> (the name the certificate must carry).
  let tls = null;
  if (instance.tls != null) {
    checkPort('tls.port', instance.tls.port);
    if (typeof instance.tls.keystore !== 'string')
      throw new TypeError('Kafka instance: tls.keystore must be a path');
    if ([port, controllerPort].includes(instance.tls.port))
      throw new TypeError('Kafka instance: tls.port is taken');
    tls = { port: instance.tls.port, keystore: path.resolve(instance.tls.keystore) };
  }
  if (isDefault && tls) throw new TypeError('Kafka instance: the default broker has no TLS listener');
  if (sharedDir && !isDefault) {
    throw new KafkaSetupError(
      `a Kafka instance on ${KAFKA_HOST}:${port} (controller ${controllerPort}) needs a stateDir of its own ` +
        `(e.g. a temp dir); ${stateDir} belongs to the default broker on ${KAFKA_BROKER}`,
    );
  }
  return {
    port,
    controllerPort,
    stateDir,
    host: KAFKA_HOST,
    broker: `${KAFKA_HOST}:${port}`,
    controller: `${KAFKA_HOST}:${controllerPort}`,
    isDefault,
    tls,
  };
}

/**
 * The instance of a call `fn(options, instance)`. For convenience (and so that `stopKafka(instance)`
 * never falls back to the shared broker) the instance fields may also come in the options object.
 */
function instanceOf(options, instance) {
  const inOptions = {};
  if (options && typeof options === 'object') {
    for (const key of INSTANCE_KEYS) if (options[key] !== undefined) inOptions[key] = options[key];
  }
  if (Object.keys(inOptions).length === 0) return resolveInstance(instance ?? {});
  if (instance !== undefined) {
    throw new TypeError('Kafka instance given twice: in the options object and as the instance argument');
  }
  return resolveInstance(inOptions);
}

/**
 * Every file and directory used, resolved for this machine (nothing here is written into a file).
 * `instance` as for ensureKafka; its state dir holds everything but the jar cache, which is shared.
 */
export function kafkaPaths(instance) {
  const { stateDir } = resolveInstance(instance ?? {});
  return {
    pom: path.join(HERE, 'kafka', 'pom.xml'),
    cacheDir: path.join(HERE, 'cache', 'kafka'),
    stateDir,
    // Files inside the state dir hold only paths relative to it (the broker runs with cwd = stateDir).
    dataDir: path.join(stateDir, 'data'),
    serverProperties: path.join(stateDir, 'server.properties'),
    log4jProperties: path.join(stateDir, 'log4j2.properties'),
    clusterIdFile: path.join(stateDir, 'cluster.id'),
    pidFile: path.join(stateDir, 'kafka.pid'),
    logFile: path.join(stateDir, 'broker.log'),
    lockFile: path.join(stateDir, '.lock'),
  };
}

const listenersLine = (inst) =>
  `listeners=PLAINTEXT://${inst.broker},CONTROLLER://${inst.controller}${inst.tls ? `,SSL://${KAFKA_HOST}:${inst.tls.port}` : ''}`;

/** The TLS listener's lines (disposable instances with `tls` only). */
const tlsProperties = (inst) =>
  inst.tls
    ? `ssl.keystore.type=PEM
ssl.keystore.location=${inst.tls.keystore}
ssl.client.auth=none
`
    : '';

// Disposable instances only: fewer consumer-offset partitions (consumer groups get ready sooner),
// and a 4 s broker session (heartbeat every 0.5 s) instead of 9 s: after a SIGKILL the restarted
// broker cannot register until the controller has expired the dead incarnation's session.
const DISPOSABLE_PROPERTIES = `offsets.topic.num.partitions=4
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=500
`;

/** server.properties; for the default instance byte for byte what it always was. */
function serverProperties(inst, nodeId) {
  return `# Generated by infra/local/kafka-control.mjs on every start: edit that file, not this one.
process.roles=broker,controller
node.id=${nodeId}
controller.quorum.bootstrap.servers=${inst.controller}
${listenersLine(inst)}
advertised.listeners=PLAINTEXT://${inst.broker}${inst.tls ? `,SSL://localhost:${inst.tls.port}` : ''}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT${inst.tls ? ',SSL:SSL' : ''}
${tlsProperties(inst)}log.dirs=data
num.partitions=4
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=1
${inst.isDefault ? '' : DISPOSABLE_PROPERTIES}transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
`;
}

/** The fields of data/meta.properties (written by the storage format), or null before formatting. */
function metaProperties(paths) {
  let text;
  try {
    text = fs.readFileSync(path.join(paths.dataDir, 'meta.properties'), 'utf8');
  } catch {
    return null;
  }
  const props = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([^#!\s][^=]*?)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) props[m[1]] = m[2];
  }
  return props;
}

/** 1 for the default broker; a disposable instance keeps the node id it was formatted with (else its port). */
function nodeIdOf(inst, paths) {
  if (inst.isDefault) return 1;
  const formatted = Number.parseInt(metaProperties(paths)?.['node.id'] ?? '', 10);
  return Number.isInteger(formatted) ? formatted : inst.port;
}

const LOG4J_PROPERTIES = `# Generated by infra/local/kafka-control.mjs: everything goes to stdout, i.e. broker.log.
status = warn
name = fleetgate-local-kafka
# keep logging while the broker shuts down on SIGTERM
shutdownHook = disable
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
`;

const ANSI_ESCAPES = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`;

// ---------------------------------------------------------------------------------------------
// Probing

/** Resolves 'closed' when nothing accepts on host:port, else 'open'. */
function tcpState(host, port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (state) => {
      socket.destroy();
      resolve(state);
    };
    socket.setTimeout(timeoutMs, () => done('closed'));
    socket.once('connect', () => done('open'));
    socket.once('error', () => done('closed'));
  });
}

let kafkajsModule;
async function kafkajs() {
  if (!kafkajsModule) {
    const mod = await import('kafkajs');
    kafkajsModule = mod.default ?? mod;
  }
  return kafkajsModule;
}

/**
 * 'kafka' when a Kafka broker answers a metadata request on 127.0.0.1:9092 (or the instance's
 * port), 'closed' when nothing listens there, 'other' when something accepts connections but does
 * not (yet) answer as Kafka. `probeKafka({ timeoutMs }, instance)`.
 */
export async function probeKafka(options = {}, instance = undefined) {
  const inst = instanceOf(options, instance);
  return (await describeBroker(inst, options?.timeoutMs ?? 3000)).state;
}

/** { state, clusterId } of whatever listens on the instance's port (clusterId only for 'kafka'). */
async function describeBroker(inst, timeoutMs = 3000) {
  if ((await tcpState(inst.host, inst.port)) === 'closed') return { state: 'closed', clusterId: null };
  const { Kafka, logLevel } = await kafkajs();
  const admin = new Kafka({
    clientId: 'fleetgate-kafka-probe',
    brokers: [inst.broker],
    logLevel: logLevel.NOTHING,
    connectionTimeout: Math.min(2000, timeoutMs),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
  }).admin();
  let timer;
  try {
    const cluster = admin.connect().then(() => admin.describeCluster());
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('probe timed out')), timeoutMs);
    });
    const { brokers, clusterId } = await Promise.race([cluster, timeout]);
    return brokers.length > 0 ? { state: 'kafka', clusterId } : { state: 'other', clusterId: null };
  } catch {
    return { state: 'other', clusterId: null };
  } finally {
    clearTimeout(timer);
    admin.disconnect().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

function processArgs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/^\d+ \(.*\) Z/s.test(stat)) return null; // zombie: already dead
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch (err) {
    if (err.code !== 'ENOENT' || fs.existsSync('/proc/self')) return null;
  }
  const ps = spawnSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' });
  return ps.status === 0 ? ps.stdout : null;
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** The working directory of a process (null when it cannot be read, e.g. without /proc). */
function processCwd(pid) {
  try {
    return fs.readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return null;
  }
}

/**
 * The pid of the broker these scripts started from this state dir, if that process still runs;
 * else null. The broker runs with cwd = state dir, so a reused pid (even that of another of these
 * brokers) is not taken for it.
 */
function brokerPid(paths) {
  let pid;
  try {
    pid = Number.parseInt(fs.readFileSync(paths.pidFile, 'utf8'), 10);
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 1) return null;
  const args = processArgs(pid);
  if (!args?.includes('kafka.Kafka')) return null;
  const cwd = processCwd(pid);
  return cwd === null || cwd === canonical(paths.stateDir) ? pid : null;
}

async function waitForExit(pid, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid) || processArgs(pid) === null) return true;
    await sleep(200);
  }
  return false;
}

/** The first ERROR/FATAL lines of the broker log (often the cause) and then its last lines. */
function logExcerpt(file, lines = LOG_TAIL_LINES) {
  let all;
  try {
    all = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
  } catch {
    return '(no broker log)';
  }
  const errors = all.filter((l) => /^\[[^\]]+\] (ERROR|FATAL) |^Caused by: /.test(l)).slice(0, 10);
  const first = errors.length ? `First errors in ${file}:\n${errors.join('\n')}\n\n` : '';
  return `${first}Last ${lines} lines of ${file}:\n${all.slice(-lines).join('\n')}`;
}

// ---------------------------------------------------------------------------------------------
// Tools

function javaCommand() {
  const home = process.env.JAVA_HOME;
  if (home && fs.existsSync(path.join(home, 'bin', 'java'))) return path.join(home, 'bin', 'java');
  return 'java';
}

function checkJava() {
  const java = javaCommand();
  const res = spawnSync(java, ['-version'], { encoding: 'utf8' });
  if (res.error) {
    throw new KafkaSetupError(
      `Java not found (${res.error.code === 'ENOENT' ? `no '${java}' on PATH` : res.error.message}). ` +
        'The local Kafka broker needs a Java 17+ runtime: install one (Debian: apt-get install ' +
        'openjdk-17-jre-headless) or set JAVA_HOME.',
    );
  }
  const m = /version "(\d+)(?:\.(\d+))?/.exec(`${res.stderr}${res.stdout}`);
  const major = m ? (m[1] === '1' ? Number(m[2]) : Number(m[1])) : Number.NaN;
  if (major < 17) {
    throw new KafkaSetupError(
      `Java ${major} found at '${java}', but Apache Kafka 4.x needs Java 17 or newer.`,
    );
  }
  return java;
}

function checkMaven() {
  const res = spawnSync('mvn', ['-v'], { encoding: 'utf8' });
  if (res.error || res.status !== 0) {
    throw new KafkaSetupError(
      `Maven not found (${res.error?.code === 'ENOENT' ? "no 'mvn' on PATH" : (res.error?.message ?? `mvn -v exited ${res.status}`)}). ` +
        'It is needed once to fetch the Kafka jars from Maven Central into infra/local/cache/: ' +
        'install it (Debian: apt-get install maven).',
    );
  }
}

/** Runs a command to completion, collecting its output; prints a progress line every 10 s. */
function run(cmd, args, { cwd, log, what, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    const progress = setInterval(() => log(`  … still ${what} (${seconds(Date.now() - started)})`), 10_000);
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearInterval(progress);
      clearTimeout(killer);
      reject(new KafkaSetupError(`${what}: could not run ${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearInterval(progress);
      clearTimeout(killer);
      const clean = output.replace(ANSI_ESCAPES, '').trim(); // Debian's mvn prints ESC[0m even when -q
      if (code === 0) resolve(clean);
      else reject(new KafkaSetupError(`${what} failed (${signal ?? `exit ${code}`}):\n${clean}`));
    });
  });
}

function pomStamp(paths) {
  return createHash('sha256').update(fs.readFileSync(paths.pom)).digest('hex');
}

/** Makes sure infra/local/cache/kafka/ holds the jars of the current pom.xml; returns the classpath. */
async function ensureJars(paths, log) {
  const stampFile = path.join(paths.cacheDir, '.pom-sha256');
  const stamp = pomStamp(paths);
  const cached = fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8').trim() === stamp;
  if (!cached) {
    checkMaven();
    log('resolving Kafka jars with Maven… (the first run downloads about 45 MB into ~/.m2)');
    const tmp = `${paths.cacheDir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    try {
      await run(
        'mvn',
        [
          '-B',
          '-q',
          '-Dstyle.color=never',
          '-f',
          paths.pom,
          'dependency:copy-dependencies',
          `-DoutputDirectory=${tmp}`,
          '-DincludeScope=runtime',
        ],
        { cwd: path.dirname(paths.pom), log, what: 'resolving Kafka jars', timeoutMs: MAVEN_TIMEOUT_MS },
      );
      const jars = fs.readdirSync(tmp).filter((f) => f.endsWith('.jar'));
      if (!jars.some((f) => /^kafka_2\.13-.*\.jar$/.test(f))) {
        throw new KafkaSetupError(`Maven copied no kafka_2.13 jar (got: ${jars.join(', ') || 'nothing'})`);
      }
      fs.writeFileSync(path.join(tmp, '.pom-sha256'), `${stamp}\n`);
      fs.rmSync(paths.cacheDir, { recursive: true, force: true });
      fs.renameSync(tmp, paths.cacheDir);
      log(`  ${jars.length} jars cached in infra/local/cache/kafka/`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  return path.join(paths.cacheDir, '*');
}

/** The Kafka version of the cached jars (from the kafka_2.13 jar's name). */
export function cachedKafkaVersion() {
  try {
    const jar = fs.readdirSync(kafkaPaths().cacheDir).find((f) => /^kafka_2\.13-.*\.jar$/.test(f));
    return jar ? jar.slice('kafka_2.13-'.length, -'.jar'.length) : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Lock: one ensureKafka at a time per state dir (parallel test files / benchmarks).

async function withLock(paths, timeoutMs, log, fn) {
  const deadline = Date.now() + timeoutMs;
  let announced = false;
  for (;;) {
    try {
      fs.writeFileSync(paths.lockFile, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      const holder = Number.parseInt(fs.readFileSync(paths.lockFile, 'utf8'), 10);
      if (!Number.isInteger(holder) || !isAlive(holder)) {
        fs.rmSync(paths.lockFile, { force: true }); // stale
        continue;
      }
      if (Date.now() > deadline) {
        throw new KafkaSetupError(`another process (pid ${holder}) holds ${paths.lockFile} for too long`);
      }
      if (!announced) log(`waiting for another kafka:up (pid ${holder}) to finish…`);
      announced = true;
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(paths.lockFile, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Start / stop

function newClusterId() {
  // Same shape as Kafka's Uuid.randomUuid().toString(): 16 random bytes, URL-safe base64, no padding.
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

async function formatStorage(paths, java, classpath, log) {
  if (fs.existsSync(path.join(paths.dataDir, 'meta.properties'))) return;
  log('formatting storage…');
  fs.rmSync(paths.dataDir, { recursive: true, force: true }); // a half-formatted dir from an earlier crash
  const clusterId = newClusterId();
  fs.writeFileSync(paths.clusterIdFile, `${clusterId}\n`);
  await run(
    java,
    [
      '-Xmx256m',
      '-Dlog4j2.configurationFile=log4j2.properties',
      '-cp',
      classpath,
      'kafka.tools.StorageTool',
      'format',
      '--standalone',
      '--cluster-id',
      clusterId,
      '--config',
      'server.properties',
    ],
    { cwd: paths.stateDir, log, what: 'formatting storage', timeoutMs: 120_000 },
  );
  log(`  cluster id ${clusterId}`);
}

function startBroker(inst, paths, java, classpath) {
  if (fs.existsSync(paths.logFile)) fs.renameSync(paths.logFile, `${paths.logFile}.1`);
  const out = fs.openSync(paths.logFile, 'a');
  const extra = (process.env.FLEETGATE_KAFKA_JVM_OPTS ?? '').split(/\s+/).filter(Boolean);
  try {
    const child = spawn(
      java,
      [
        ...(inst.isDefault ? HEAP_OPTS : DISPOSABLE_JVM_OPTS),
        ...JVM_OPTS,
        ...extra,
        '-Dlog4j2.configurationFile=log4j2.properties',
        '-cp',
        classpath,
        'kafka.Kafka',
        'server.properties',
      ],
      { cwd: paths.stateDir, detached: true, stdio: ['ignore', out, out] }, // detached = setsid()
    );
    child.on('error', () => {}); // java was checked before; a failed spawn shows up as a dead pid
    child.unref();
    if (!child.pid) throw new KafkaSetupError(`could not start ${java}`);
    fs.writeFileSync(paths.pidFile, `${child.pid}\n`);
    return child.pid;
  } finally {
    fs.closeSync(out);
  }
}

/**
 * 'ours' when the instance's broker serves, 'closed'/'other' as probeKafka, 'foreign' when a Kafka
 * broker of another cluster answers on a disposable instance's port. The default instance accepts
 * any Kafka broker on 9092, as it always did.
 */
async function serving(inst, paths) {
  const { state, clusterId } = await describeBroker(inst, 3000);
  if (state !== 'kafka') return state;
  if (inst.isDefault) return 'ours';
  const expected = metaProperties(paths)?.['cluster.id'];
  return expected && expected === clusterId ? 'ours' : 'foreign';
}

function foreignBrokerError(inst) {
  return new KafkaSetupError(
    `another Kafka broker (not the one of state dir ${inst.stateDir}) serves on ${inst.broker}; ` +
      'pick other ports (findFreePortPair())',
  );
}

async function waitUntilServing(inst, paths, pid, timeoutMs, log) {
  const started = Date.now();
  let lastReport = started;
  log(`waiting for ${inst.broker} …`);
  for (;;) {
    const state = await serving(inst, paths);
    if (state === 'ours') return;
    if (state === 'foreign') throw foreignBrokerError(inst);
    const now = Date.now();
    // Exited only when the process is gone: a /proc read that does not (yet) show our java in
    // our state dir is not proof (a CI run once failed here with the broker's log still empty).
    if (brokerPid(paths) !== pid && (!isAlive(pid) || processArgs(pid) === null)) {
      fs.rmSync(paths.pidFile, { force: true });
      throw new KafkaSetupError(
        `the broker (pid ${pid}) exited before serving.\n${logExcerpt(paths.logFile)}`,
      );
    }
    if (now - started > timeoutMs) {
      const excerpt = logExcerpt(paths.logFile);
      await terminate(pid, log);
      fs.rmSync(paths.pidFile, { force: true });
      throw new KafkaSetupError(
        `Kafka did not serve on ${inst.broker} within ${seconds(timeoutMs)}; stopped it (pid ${pid}).\n${excerpt}`,
      );
    }
    if (now - lastReport >= 5000) {
      log(`  … still waiting (${seconds(now - started)})`);
      lastReport = now;
    }
    await sleep(inst.isDefault ? 1000 : DISPOSABLE_POLL_MS);
  }
}

async function terminate(pid, log) {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitForExit(pid, STOP_TIMEOUT_MS)) return;
  log(`broker (pid ${pid}) still runs after ${seconds(STOP_TIMEOUT_MS)}; sending SIGKILL`);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitForExit(pid, 10_000);
}

/**
 * A disposable instance must be restarted with the ports its storage was set up with (the KRaft
 * metadata records the controller endpoint); a clear error beats a broker that never elects itself.
 */
function checkSamePorts(inst, paths) {
  if (inst.isDefault || !metaProperties(paths)) return;
  let previous;
  try {
    previous = fs
      .readFileSync(paths.serverProperties, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('listeners='));
  } catch {
    return;
  }
  if (previous && previous !== listenersLine(inst)) {
    throw new KafkaSetupError(
      `state dir ${inst.stateDir} belongs to a broker with ${previous}; start it with the same ports ` +
        `(asked for ${inst.broker}, controller ${inst.controller}) or use a new state dir`,
    );
  }
}

/**
 * Starts the local broker unless a Kafka broker already serves on 127.0.0.1:9092, and waits until it
 * answers. Resolves { brokers: ['127.0.0.1:9092'], pid, started }; pid is null for a broker these
 * scripts did not start. Rejects with KafkaSetupError (a message meant for a person) on failure.
 *
 * `ensureKafka({ log, timeoutMs }, instance)`: with a disposable instance { port, controllerPort,
 * stateDir } only that instance's own broker counts as serving (same cluster id); its storage is
 * formatted on the first start only, so later starts keep topics and records.
 */
export async function ensureKafka(options = {}, instance = undefined) {
  const inst = instanceOf(options, instance);
  const { log = console.log, timeoutMs = START_TIMEOUT_MS } = options ?? {};
  const paths = kafkaPaths(instanceFields(inst));
  const t0 = Date.now();
  const already = async () => {
    const state = await serving(inst, paths);
    if (state === 'foreign') throw foreignBrokerError(inst);
    if (state !== 'ours') return null;
    const pid = brokerPid(paths);
    log(`Kafka already serves on ${inst.broker} (${pid ? `pid ${pid}` : 'not started by these scripts'})`);
    return { brokers: [inst.broker], pid, started: false };
  };
  const found = await already();
  if (found) return found;

  fs.mkdirSync(paths.stateDir, { recursive: true });
  return withLock(paths, timeoutMs + 5 * 60_000, log, async () => {
    const foundNow = await already(); // another process may have started it meanwhile
    if (foundNow) return foundNow;

    let pid = brokerPid(paths);
    if (pid) {
      log(`broker (pid ${pid}) runs but does not serve yet`);
    } else {
      for (const port of [inst.port, inst.controllerPort]) {
        if ((await tcpState(KAFKA_HOST, port)) === 'open') {
          throw new KafkaSetupError(
            `something other than the local Kafka broker listens on ${KAFKA_HOST}:${port}; free the port and retry`,
          );
        }
      }
      checkSamePorts(inst, paths);
      const java = checkJava();
      const classpath = await ensureJars(paths, log);
      fs.writeFileSync(paths.serverProperties, serverProperties(inst, nodeIdOf(inst, paths)));
      fs.writeFileSync(paths.log4jProperties, LOG4J_PROPERTIES);
      await formatStorage(paths, java, classpath, log);
      log('starting broker…');
      pid = startBroker(inst, paths, java, classpath);
    }
    await waitUntilServing(inst, paths, pid, timeoutMs, log);
    log(`Kafka serves on ${inst.broker} (pid ${pid}) after ${seconds(Date.now() - t0)}`);
    return { brokers: [inst.broker], pid, started: true };
  });
}

/** The public { port, controllerPort, stateDir } of a resolved instance. */
function instanceFields(inst) {
  return { port: inst.port, controllerPort: inst.controllerPort, stateDir: inst.stateDir };
}

function requireInstance(instance, fn) {
  if (instance === undefined || instance === null) {
    throw new TypeError(
      `${fn}(instance) needs an instance { port, controllerPort, stateDir } (pass {} for the default broker)`,
    );
  }
  return resolveInstance(instance);
}

/**
 * Restarts a stopped or killed instance on its existing storage (topics, records and committed
 * offsets are kept, as on a real broker restart); ensureKafka otherwise, so a no-op when it serves.
 * Rejects when the state dir was never formatted (that would be a new, empty cluster: use
 * ensureKafka). `startKafka(instance, { log, timeoutMs })`; resolves as ensureKafka.
 */
export async function startKafka(instance, options = {}) {
  const inst = requireInstance(instance, 'startKafka');
  if (!metaProperties(kafkaPaths(instanceFields(inst)))) {
    throw new KafkaSetupError(
      `startKafka: no formatted Kafka storage in ${inst.stateDir}; start the instance with ensureKafka first`,
    );
  }
  return ensureKafka({ log: () => {}, ...options }, instanceFields(inst));
}

/**
 * Sends `signal` (default SIGKILL: a crash) to the instance's broker, found by its pid file, and
 * waits until the process has exited and nothing answers on its ports any more (at most 30 s, else
 * rejects with KafkaSetupError; no escalation, so a SIGTERM really is a clean shutdown). No restart,
 * no cleanup: the storage stays as the signal left it, ready for startKafka(instance).
 * Resolves { killed: pid | null, signal, ms }; killed is null when no broker of the instance runs.
 * `killKafka(instance, signal, { log })`.
 */
export async function killKafka(instance, signal = 'SIGKILL', { log = () => {} } = {}) {
  const inst = requireInstance(instance, 'killKafka');
  const paths = kafkaPaths(instanceFields(inst));
  const t0 = Date.now();
  const pid = brokerPid(paths);
  if (!pid) {
    fs.rmSync(paths.pidFile, { force: true });
    log(`no broker of ${inst.stateDir} runs`);
    return { killed: null, signal, ms: 0 };
  }
  log(`sending ${signal} to the broker on ${inst.broker} (pid ${pid})`);
  try {
    process.kill(pid, signal);
  } catch (err) {
    if (err.code !== 'ESRCH') throw err; // it died on its own meanwhile
  }
  const deadline = t0 + KILL_TIMEOUT_MS;
  for (;;) {
    const exited = !isAlive(pid) || processArgs(pid) === null;
    if (exited) {
      const ports = await Promise.all(
        [inst.port, inst.controllerPort].map((p) => tcpState(KAFKA_HOST, p, 500)),
      );
      if (ports.every((s) => s === 'closed')) break;
    }
    if (Date.now() > deadline) {
      throw new KafkaSetupError(
        `the broker on ${inst.broker} (pid ${pid}) ${exited ? 'exited, but its ports still answer' : 'still runs'} ` +
          `${seconds(KILL_TIMEOUT_MS)} after ${signal}`,
      );
    }
    await sleep(50);
  }
  fs.rmSync(paths.pidFile, { force: true });
  const ms = Date.now() - t0;
  log(`broker (pid ${pid}) gone after ${seconds(ms)}`);
  return { killed: pid, signal, ms };
}

/**
 * Stops the broker these scripts started (SIGTERM, up to 30 s, then SIGKILL). Idempotent.
 * Resolves { stopped: pid | null }. `stopKafka({ log }, instance)` (or `stopKafka(instance)`).
 */
export async function stopKafka(options = {}, instance = undefined) {
  const inst = instanceOf(options, instance);
  const { log = console.log } = options ?? {};
  const paths = kafkaPaths(instanceFields(inst));
  const pid = brokerPid(paths);
  if (!pid) {
    fs.rmSync(paths.pidFile, { force: true });
    const state = await serving(inst, paths);
    if (state === 'ours' || state === 'foreign') {
      log(`a Kafka broker serves on ${inst.broker} but was not started by these scripts; left alone`);
    } else {
      log('Kafka is not running');
    }
    return { stopped: null };
  }
  log(`stopping Kafka (pid ${pid})…`);
  await terminate(pid, log);
  fs.rmSync(paths.pidFile, { force: true });
  log('Kafka stopped');
  return { stopped: pid };
}

/**
 * { serving, pid, version, stateDir, logFile, broker } without changing anything.
 * `kafkaStatus(instance)`; for a disposable instance `serving` means its own broker serves.
 */
export async function kafkaStatus(instance) {
  const inst = resolveInstance(instance ?? {});
  const paths = kafkaPaths(instanceFields(inst));
  return {
    serving: (await serving(inst, paths)) === 'ours',
    pid: brokerPid(paths),
    version: cachedKafkaVersion(),
    stateDir: paths.stateDir,
    logFile: paths.logFile,
    broker: inst.broker,
  };
}

// ---------------------------------------------------------------------------------------------
// Ports for disposable instances

/** [low, high] of the kernel's ephemeral (outgoing) port range, or null. */
function ephemeralPortRange() {
  try {
    const [low, high] = fs
      .readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    return Number.isInteger(low) && Number.isInteger(high) ? [low, high] : null;
  } catch {
    return null;
  }
}

function canListen(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host: KAFKA_HOST, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A port p in 20000–39999 such that p and p + 1 are free on 127.0.0.1 (for { port: p }, controller
 * p + 1). Random, so parallel test files rarely collide; ports below the kernel's ephemeral range
 * (where outgoing connections take their local port) are tried first.
 */
export async function findFreePortPair() {
  const low = 20_000;
  const high = 39_999;
  const ephemeral = ephemeralPortRange();
  const belowEphemeral = ephemeral && ephemeral[0] - 2 > low ? Math.min(high, ephemeral[0] - 2) : null;
  for (let attempt = 0; attempt < 200; attempt++) {
    const top = belowEphemeral !== null && attempt < 100 ? belowEphemeral : high;
    const port = low + Math.floor(Math.random() * (top - low + 1));
    if ((await canListen(port)) && (await canListen(port + 1))) return port;
  }
  throw new KafkaSetupError(`no free pair of ports found in ${low}–${high + 1} on ${KAFKA_HOST}`);
}
