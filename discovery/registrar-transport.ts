/**
 * How a registrar's registrations reach discovery: Elkeid's signed `/registry/register` and
 * `/registry/evict` over HTTP, tried on the discovery nodes in random order until one accepts, or
 * the registry store itself when discovery runs in the same process (`fleetgate all`).
 */
import { signRequest } from '../platform/http/aksk.js';
import type { RegistrarTarget, Registration } from './registrar.js';
import type { RegisterInput } from './registry-store.js';

export interface RegistryTransport {
  register(r: Registration): Promise<void>;
  evict(list: Registration[]): Promise<void>;
}

/** `host:port` or an http(s) URL (FLEETGATE_SD_ADDRS, `fleetgate sim --sd`) as a base URL. */
export function baseUrl(addr: string): string {
  return /^https?:\/\//.test(addr) ? addr.replace(/\/+$/, '') : `http://${addr}`;
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export function registryTransport(
  target: RegistrarTarget,
  o: { timeoutMs: number; random: () => number },
): RegistryTransport {
  if ('store' in target) {
    const { store } = target;
    return {
      register: async (r) => {
        await store.register(registerInput(r));
      },
      evict: (list) => store.evictMany(list),
    };
  }
  const http = { ...target, ...o };
  return {
    // Elkeid's body first (name, ip, port, weight, extra), our fields after; undefined ones are dropped.
    register: (r) =>
      post(http, '/registry/register', {
        name: r.name,
        ip: r.ip,
        port: r.port,
        weight: r.weight,
        extra: r.extra === undefined ? null : r.extra,
        limit: r.limit,
        cpu: r.cpu,
        mem: r.mem,
        version: r.version,
      }),
    evict: async (list) => {
      await Promise.all(
        list.map((r) => post(http, '/registry/evict', { name: r.name, ip: r.ip, port: r.port })),
      );
    },
  };
}

function registerInput(r: Registration): RegisterInput {
  const input: RegisterInput = { name: r.name, ip: r.ip, port: r.port, weight: r.weight };
  if (r.extra !== undefined) input.extra = r.extra;
  if (r.limit !== undefined) input.limit = r.limit;
  if (r.cpu !== undefined) input.cpu = r.cpu;
  if (r.mem !== undefined) input.mem = r.mem;
  if (r.version !== undefined) input.version = r.version;
  return input;
}

interface HttpTarget {
  sdAddrs: readonly string[];
  ak: string;
  sk: string;
  timeoutMs: number;
  random: () => number;
}

/** POSTs a signed Elkeid request to the discovery nodes in random order until one accepts. */
async function post(target: HttpTarget, path: string, payload: object): Promise<void> {
  const body = JSON.stringify(payload);
  const errors: string[] = [];
  for (const addr of shuffled(target.sdAddrs, target.random)) {
    try {
      const headers = signRequest({
        method: 'POST',
        path,
        query: '',
        body,
        ak: target.ak.toLowerCase(),
        sk: target.sk,
      });
      const res = await fetch(`${baseUrl(addr)}${path}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(target.timeoutMs),
      });
      const text = await res.text();
      if (res.status === 200) return;
      errors.push(`${addr}: HTTP ${res.status} ${text.slice(0, 200)}`);
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      errors.push(`${addr}: ${cause ?? (err as Error).message}`);
    }
  }
  throw new Error(errors.join('; '));
}
