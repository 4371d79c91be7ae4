import type { Verifier } from './aksk.js';
import { type Handler, type HttpRequest, type HttpResponse, json, type Route } from './types.js';

export interface RouterOptions {
  /** Required when any route has `auth: 'aksk'`. */
  verifier?: Verifier;
  /**
   * The refusal of a badly signed request. It differs per API (the gateway answers Elkeid's
   * AgentCenter envelope with HTTP 200, discovery answers 403), so the caller decides.
   */
  onAuthFailure: (reason: string, req: HttpRequest) => HttpResponse;
  logger?: { warn(obj: object, msg: string): void };
  /** `route` is the declared path or `unmatched`, never the raw path, to bound metric cardinality. */
  onRequest?: (route: string, status: number, seconds: number) => void;
}

const UNMATCHED = 'unmatched';

interface PathEntry {
  /** The path as declared, used as the metrics label. */
  label: string;
  methods: Map<string, Route>;
  /** The Allow header of a 405. */
  allow: string;
}

/** Elkeid's signer drops one trailing '/', and clients send either form; both must reach the route. */
function normalizePath(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

export function createRouter(routes: Route[], opts: RouterOptions): Handler {
  const byPath = new Map<string, PathEntry>();
  for (const route of routes) {
    // Fails at startup rather than letting every request to the route be refused.
    if (route.auth === 'aksk' && !opts.verifier) {
      throw new Error(`route ${route.method} ${route.path} requires AK/SK but the router has no verifier`);
    }
    const key = normalizePath(route.path);
    let entry = byPath.get(key);
    if (!entry) {
      entry = { label: route.path, methods: new Map(), allow: '' };
      byPath.set(key, entry);
    }
    if (entry.methods.has(route.method)) throw new Error(`duplicate route ${route.method} ${route.path}`);
    entry.methods.set(route.method, route);
    entry.allow = [...entry.methods.keys()].join(', ');
  }

  const handler: Handler = async (req) => {
    const started = performance.now();
    const entry = byPath.get(normalizePath(req.path));
    const label = entry ? entry.label : UNMATCHED;
    let response: HttpResponse;
    try {
      response = await dispatch(entry, req);
    } catch (err) {
      // The error may carry internals (paths, queries, peer data): it goes to the log, not the wire.
      opts.logger?.warn({ err, method: req.method, path: req.path }, 'http handler failed');
      response = json(500, { msg: 'internal error' });
    }
    opts.onRequest?.(label, response.status, (performance.now() - started) / 1000);
    return response;
  };
  // A signed route's request whose headers already fail (no key, unknown AK, stale timestamp) is
  // answered before its body is read; the others' bodies are unverified until verify() runs.
  handler.beforeBody = (head) => {
    const route = byPath.get(normalizePath(head.path))?.methods.get(head.method);
    if (route?.auth !== 'aksk') return { unverified: false };
    const check = opts.verifier!.precheck(head.headers);
    if (check.ok) return { unverified: true };
    const response = opts.onAuthFailure(check.reason, { ...head, body: Buffer.alloc(0) });
    opts.onRequest?.(byPath.get(normalizePath(head.path))!.label, response.status, 0);
    return { respond: response };
  };
  return handler;

  async function dispatch(entry: PathEntry | undefined, req: HttpRequest): Promise<HttpResponse> {
    if (!entry) return json(404, { msg: 'not found' });
    const route = entry.methods.get(req.method);
    if (!route) return json(405, { msg: 'method not allowed' }, { allow: entry.allow });
    if (route.auth === 'aksk') {
      const result = opts.verifier!.verify(req);
      if (!result.ok) return opts.onAuthFailure(result.reason, req);
    }
    return await route.handler(req);
  }
}
