/**
 * Minimal fakes of the k6 modules loadtest/k6/agents.js imports, so the script itself (unchanged,
 * as k6 would load it) runs under Node: k6 is AGPL and is neither installed nor run here. A
 * module hook resolves `k6` and `k6/...` to small modules that forward to `globalThis.__k6fakes`;
 * each import of the script with a fresh query string is one VU's init context. Timers forward
 * to the global ones, which the tests replace with node:test's mock timers (Date included), so a
 * ten-minute scenario runs in milliseconds. The fakes record what the script does — dials, HTTP
 * requests, streams and their writes, metric samples, checks — and the tests decide what the
 * world answers (a dial fails, discovery is down, a stream is ended by the gateway).
 */
import { existsSync, readFileSync } from 'node:fs';
import { register } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const AGENTS_JS = path.join(root, 'loadtest/k6/agents.js');

const HOOKS = `
const NAMED = {
  k6: ['check', 'fail', 'sleep'],
  'k6/metrics': ['Counter', 'Rate', 'Trend', 'Gauge'],
  'k6/timers': ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'],
  'k6/data': ['SharedArray'],
};
export async function resolve(specifier, context, next) {
  if (specifier !== 'k6' && !specifier.startsWith('k6/')) return next(specifier, context);
  const key = JSON.stringify(specifier);
  let src = 'const m = () => globalThis.__k6fakes[' + key + '];\\n';
  src += 'export default new Proxy({}, { get: (_, p) => m().default[p] });\\n';
  for (const n of NAMED[specifier] ?? []) {
    src += 'export function ' + n + '(...a) { const f = m()[' + JSON.stringify(n) + '];' +
      ' return new.target ? Reflect.construct(f, a) : f(...a); }\\n';
  }
  return { url: 'data:text/javascript,' + encodeURIComponent(src), shortCircuit: true };
}`;
register(`data:text/javascript,${encodeURIComponent(HOOKS)}`);

export interface Sample {
  value: number;
  tags: Record<string, string>;
  at: number;
}
export interface Dial {
  vu: number;
  address: string;
  params: { tls: { cert?: string; key?: string; cacerts: string[] }; timeout: string; authority?: string };
  at: number;
}
export interface HttpAnswer {
  status: number;
  body: string;
}
type Listener = (arg?: unknown) => void;
export interface K6Threshold {
  threshold: string;
  abortOnFail?: boolean;
  delayAbortEval?: string;
}
/** What agents.js exports, as k6 reads it. */
export interface AgentsModule {
  default: () => void;
  options: {
    scenarios: Record<string, Record<string, unknown>>;
    thresholds: Record<string, Array<string | K6Threshold>>;
  };
  handleSummary: (data: unknown) => Record<string, string>;
}

export class FakeStream {
  readonly writes: Array<{ AgentID: string; Data: Array<{ DataType: number; Body: string }> }> = [];
  ended = false;
  readonly #listeners = new Map<string, Listener[]>();
  constructor(
    readonly vu: number,
    readonly method: string,
    readonly openedAt: number,
  ) {}
  on(event: string, fn: Listener): void {
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), fn]);
  }
  write(msg: FakeStream['writes'][number]): void {
    if (this.ended) throw new Error('write after end');
    this.writes.push(structuredClone(msg));
  }
  end(): void {
    this.ended = true;
  }
  /** The gateway sends a command. */
  command(cmd: unknown): void {
    for (const fn of this.#listeners.get('data') ?? []) fn(cmd);
  }
  /** The gateway (or the network) ends the stream: k6 calls 'error' with the status, then 'end'. */
  serverEnd(status?: { code: number; message: string }): void {
    if (status) for (const fn of this.#listeners.get('error') ?? []) fn(status);
    for (const fn of this.#listeners.get('end') ?? []) fn({});
  }
}

export class K6World {
  env: Record<string, string> = {};
  files = new Map<string, string>();
  startTime = Date.now();
  readonly samples = new Map<string, Sample[]>();
  readonly checks: Array<{ name: string; ok: boolean; at: number }> = [];
  readonly dials: Dial[] = [];
  readonly httpGets: Array<{ url: string; at: number }> = [];
  readonly streams: FakeStream[] = [];
  readonly activeTimers = new Set<unknown>();
  readonly opened: string[] = [];
  closes = 0;
  /** What a dial to `address` does: undefined = connected, an Error = connect throws it. */
  dialResult: (address: string, vu: number) => Error | undefined = () => undefined;
  httpResult: (url: string) => HttpAnswer = () => ({ status: 0, body: '' });
  #vu = 0;
  #loads = 0;

  samplesOf(name: string): Sample[] {
    return this.samples.get(name) ?? [];
  }
  sum(name: string, tags: Record<string, string> = {}): number {
    return this.samplesOf(name)
      .filter((s) => Object.entries(tags).every(([k, v]) => s.tags[k] === v))
      .reduce((a, s) => a + s.value, 0);
  }
  checksNamed(name: string): boolean[] {
    return this.checks.filter((c) => c.name === name).map((c) => c.ok);
  }

  /** Loads agents.js as k6 does for one VU (its init context) and returns its exports. */
  async initVu(vu: number): Promise<AgentsModule> {
    this.#vu = vu;
    this.#install();
    const url = `${pathToFileURL(AGENTS_JS).href}?vu=${vu}&load=${++this.#loads}&t=${process.hrtime.bigint()}`;
    return import(url);
  }

  /** Runs VU `vu`'s one iteration (per-vu-iterations: idInInstance = vu). */
  async runVu(vu: number): Promise<void> {
    const mod = await this.initVu(vu);
    this.#vu = vu;
    mod.default();
  }

  #add(name: string, value: number, tags?: Record<string, string>): void {
    const list = this.samples.get(name) ?? [];
    list.push({ value, tags: tags ?? {}, at: Date.now() });
    this.samples.set(name, list);
  }

  #install(): void {
    const world = this;
    const g = globalThis as Record<string, unknown>;
    g.__ENV = { ...this.env };
    g.open = (p: string) => {
      // The map first; else an absolute path is read from disk (e.g. certificates a test wrote).
      const content =
        world.files.get(p) ?? (path.isAbsolute(p) && existsSync(p) ? readFileSync(p, 'utf8') : undefined);
      if (content === undefined) throw new Error(`open ${p}: no such file or directory`);
      world.opened.push(p);
      return content;
    };
    const metric = (kind: 'counter' | 'rate' | 'trend') =>
      class {
        constructor(readonly name: string) {}
        add(v: number | boolean, tags?: Record<string, string>) {
          world.#add(this.name, kind === 'rate' ? (v ? 1 : 0) : Number(v), tags);
        }
      };
    const vuOfClient = this.#vu;
    g.__k6fakes = {
      k6: {
        check(val: unknown, sets: Record<string, (v: unknown) => boolean>) {
          let all = true;
          for (const [name, fn] of Object.entries(sets)) {
            const ok = Boolean(fn(val));
            world.checks.push({ name, ok, at: Date.now() });
            all &&= ok;
          }
          return all;
        },
      },
      'k6/metrics': { Counter: metric('counter'), Rate: metric('rate'), Trend: metric('trend') },
      'k6/data': {
        SharedArray: function SharedArray(_name: string, fn: () => unknown[]) {
          return Object.freeze(fn());
        },
      },
      'k6/encoding': {
        default: { b64encode: (b: ArrayBuffer | string) => Buffer.from(b as ArrayBuffer).toString('base64') },
      },
      'k6/execution': {
        default: {
          get vu() {
            return { idInInstance: world.#vu, idInTest: world.#vu };
          },
          get scenario() {
            return { startTime: world.startTime, name: 'agents' };
          },
        },
      },
      'k6/http': {
        default: {
          get(url: string) {
            world.httpGets.push({ url, at: Date.now() });
            return world.httpResult(url);
          },
        },
      },
      'k6/net/grpc': { default: { Client: this.#clientClass(vuOfClient), Stream: this.#streamClass() } },
      'k6/timers': {
        setTimeout(fn: () => void, ms: number) {
          const h = setTimeout(() => {
            world.activeTimers.delete(h);
            fn();
          }, ms);
          world.activeTimers.add(h);
          return h;
        },
        clearTimeout(h: ReturnType<typeof setTimeout>) {
          world.activeTimers.delete(h);
          clearTimeout(h);
        },
        setInterval(fn: () => void, ms: number) {
          const h = setInterval(fn, ms);
          world.activeTimers.add(h);
          return h;
        },
        clearInterval(h: ReturnType<typeof setInterval>) {
          world.activeTimers.delete(h);
          clearInterval(h);
        },
      },
    };
  }

  #clientClass(vu: number) {
    const world = this;
    return class FakeClient {
      connected = false;
      readonly vu = vu;
      load(paths: string[], file: string) {
        if (paths[0] !== '../../proto' || file !== 'elkeid.proto') throw new Error('unexpected proto');
      }
      connect(address: string, params: Dial['params']) {
        world.dials.push({ vu, address, params: structuredClone(params), at: Date.now() });
        const err = world.dialResult(address, vu);
        if (err) throw err;
        this.connected = true;
        return true;
      }
      close() {
        world.closes++;
        this.connected = false;
      }
    };
  }

  #streamClass() {
    const world = this;
    return function Stream(client: { connected: boolean; vu: number }, method: string) {
      if (!client.connected) throw new Error('no gRPC connection, you must call connect first');
      const s = new FakeStream(client.vu, method, Date.now());
      world.streams.push(s);
      return s;
    };
  }
}
