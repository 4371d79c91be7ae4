/**
 * Least-loaded ordering of `/registry/detail` and the Elkeid JSON of one instance.
 *
 * Order (stock Elkeid agents dial the answer in order, so this is the whole balancing):
 *   1. Left out: expired instances, and full ones (a known limit with weight >= limit).
 *   2. First, instances with a known limit (> 0), by ascending load ratio weight / limit.
 *   3. Then instances registered without a limit (stock Elkeid AgentCenters), by ascending
 *      weight: their load relative to capacity is unknown, so they are used after every
 *      instance whose headroom is known.
 *   4. Ties (equal ratio, or equal weight in step 3) are shuffled per request, so agents that
 *      ask at the same moment spread over equally loaded gateways instead of all dialing one.
 *
 * The expensive part (filtering, sorting, JSON of each element) happens once per cache refresh
 * in `prepare`; each request only shuffles within tie groups and joins prepared strings.
 */
import type { RegistryInstance } from './registry-store.js';

/** Elkeid's status from seconds since the last renewal (endpoint.go registryRefresh). */
export function elkeidStatus(ageSeconds: number): number {
  if (ageSeconds <= 45) return 0;
  if (ageSeconds <= 60) return 1;
  if (ageSeconds <= 75) return 2;
  if (ageSeconds <= 90) return 3;
  return 4;
}

const GO_UNSAFE = /[<>&\u2028\u2029]/;
const GO_UNSAFE_ALL = /[<>&\u2028\u2029]/g;
const GO_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

/** JSON as Go's encoding/json writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped. */
export function goJson(value: unknown): string {
  const s = JSON.stringify(value) ?? 'null';
  return GO_UNSAFE.test(s) ? s.replace(GO_UNSAFE_ALL, (c) => GO_ESCAPES[c]!) : s;
}

/** Go marshals maps with sorted keys, at every depth; `extra` is a Go map. */
export function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeysDeep((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

/**
 * One element of a detail answer: Elkeid's Registry fields in Elkeid's order (`name, ip, port,
 * status, create_at, update_at, weight, extra`, times in unix seconds), then ours: `limit`,
 * `load` (weight / limit) when a limit is known, `cpu`, `mem`, `version` when reported, and
 * `expire_at` (unix seconds).
 */
export function registryJson(inst: RegistryInstance, nowMs: number): string {
  const updateAt = Math.floor(inst.updatedAt / 1000);
  const out: Record<string, unknown> = {
    name: inst.name,
    ip: inst.ip,
    port: inst.port,
    status: elkeidStatus(Math.floor(nowMs / 1000) - updateAt),
    create_at: Math.floor(inst.createdAt / 1000),
    update_at: updateAt,
    weight: inst.weight,
    extra: inst.extra === null ? null : sortKeysDeep(inst.extra),
  };
  if (inst.limit !== undefined && inst.limit > 0) {
    out.limit = inst.limit;
    out.load = inst.weight / inst.limit;
  }
  if (inst.cpu !== undefined) out.cpu = inst.cpu;
  if (inst.mem !== undefined) out.mem = inst.mem;
  if (inst.version !== undefined) out.version = inst.version;
  out.expire_at = Math.ceil(inst.expiresAtMs / 1000);
  return goJson(out);
}

export interface PreparedEntry {
  json: string;
  expiresAtMs: number;
  /** `name|ip|port`: which registrant (instanceId). */
  id: string;
}

/** The identity of one registrant in discovery's own bookkeeping. */
export function instanceId(i: { name: string; ip: string; port: number }): string {
  return `${i.name}|${i.ip}|${i.port}`;
}

/** Instances in answer order, grouped into runs of equal load that are shuffled per request. */
export interface PreparedDetail {
  readonly groups: readonly (readonly PreparedEntry[])[];
  readonly total: number;
}

function hasLimit(i: RegistryInstance): i is RegistryInstance & { limit: number } {
  return i.limit !== undefined && i.limit > 0;
}

export function prepareDetail(instances: readonly RegistryInstance[], nowMs: number): PreparedDetail {
  const known: Array<{ key: number; inst: RegistryInstance }> = [];
  const unknown: Array<{ key: number; inst: RegistryInstance }> = [];
  for (const inst of instances) {
    if (inst.expiresAtMs <= nowMs) continue;
    if (hasLimit(inst)) {
      if (inst.weight >= inst.limit) continue; // full: it would refuse the agent
      known.push({ key: inst.weight / inst.limit, inst });
    } else {
      unknown.push({ key: inst.weight, inst });
    }
  }
  const groups: PreparedEntry[][] = [];
  for (const part of [known, unknown]) {
    part.sort((a, b) => a.key - b.key);
    let lastKey = Number.NaN;
    for (const { key, inst } of part) {
      const entry = { json: registryJson(inst, nowMs), expiresAtMs: inst.expiresAtMs, id: instanceId(inst) };
      if (key === lastKey) groups[groups.length - 1]!.push(entry);
      else groups.push([entry]);
      lastKey = key;
    }
  }
  return { groups, total: known.length + unknown.length };
}

/**
 * The JSON array of at most `count` instances in answer order, ties shuffled with `random`.
 * With `liveAfterMs`, instances that expired since `prepareDetail` are left out too; a stale
 * answer (store unreachable) passes undefined and `keep`, which decides from what the node
 * heard itself (routes.ts).
 */
export function pickDetail(
  prepared: PreparedDetail,
  count: number,
  liveAfterMs: number | undefined,
  random: () => number = Math.random,
  keep?: (e: PreparedEntry) => boolean,
): string {
  let out = '[';
  let n = 0;
  const scratch: PreparedEntry[] = [];
  for (const group of prepared.groups) {
    if (n >= count) break;
    let members: readonly PreparedEntry[] = group;
    if (group.length > 1) {
      // Partial Fisher-Yates: only as many draws as the answer still needs.
      scratch.length = 0;
      for (const e of group) scratch.push(e);
      const draws = Math.min(scratch.length, count - n + 8);
      for (let i = 0; i < draws && i < scratch.length - 1; i++) {
        const j = i + Math.floor(random() * (scratch.length - i));
        const tmp = scratch[i]!;
        scratch[i] = scratch[j]!;
        scratch[j] = tmp;
      }
      members = scratch;
    }
    for (const e of members) {
      if (n >= count) break;
      if (liveAfterMs !== undefined && e.expiresAtMs <= liveAfterMs) continue;
      if (keep && !keep(e)) continue;
      out += n === 0 ? e.json : `,${e.json}`;
      n++;
    }
  }
  return `${out}]`;
}
