/**
 * Route matching: paths with `:param` segments, literal segments winning over parameters
 * (`getStatus/filter` before `getStatus/:id`), duplicates refused when the table is built.
 */
import type { ManagerRoute } from './router-types.js';

interface CompiledRoute {
  route: ManagerRoute;
  segments: string[];
  literals: number;
}

export interface RouteMatch {
  route: ManagerRoute;
  params: Record<string, string>;
}

export interface RouteTable {
  /** The route for `method` and `path` with its decoded params; else the methods the path has (405). */
  find(method: string, path: string): { found: RouteMatch } | { found: undefined; methods: Set<string> };
}

function split(path: string): string[] {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  return trimmed.split('/').slice(1);
}

function match(c: CompiledRoute, segs: string[]): Record<string, string> | undefined {
  if (c.segments.length !== segs.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segs.length; i++) {
    const want = c.segments[i]!;
    const got = segs[i]!;
    if (want.startsWith(':')) {
      if (got === '') return undefined;
      let v: string;
      try {
        v = decodeURIComponent(got);
      } catch {
        return undefined;
      }
      params[want.slice(1)] = v;
    } else if (want !== got) return undefined;
  }
  return params;
}

export function createRouteTable(routes: readonly ManagerRoute[]): RouteTable {
  const compiled: CompiledRoute[] = routes.map((route) => {
    const segments = split(route.path);
    return { route, segments, literals: segments.filter((s) => !s.startsWith(':')).length };
  });
  compiled.sort((a, b) => b.literals - a.literals);
  const seen = new Set<string>();
  for (const c of compiled) {
    const key = `${c.route.method} ${c.segments.map((s) => (s.startsWith(':') ? ':' : s)).join('/')}`;
    if (seen.has(key)) throw new Error(`duplicate route ${c.route.method} ${c.route.path}`);
    seen.add(key);
  }
  return {
    find(method, path) {
      const segs = split(path);
      let found: RouteMatch | undefined;
      const methods = new Set<string>();
      for (const c of compiled) {
        const params = match(c, segs);
        if (!params) continue;
        methods.add(c.route.method);
        if (c.route.method === method && !found) found = { route: c.route, params };
      }
      return found ? { found } : { found, methods };
    },
  };
}
