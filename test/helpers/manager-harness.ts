/**
 * A manager role on 127.0.0.1 port 0 over a real dynalite, with a fixed token secret and AK/SK,
 * the first admin `root`, and helpers to call it as a user, an API key, a gateway (AK/SK) or
 * nobody. Also a fake gateway session for driving the HeartbeatWriter without sockets.
 */
import type { TestContext } from 'node:test';
import { Registry } from 'prom-client';
import type { AgentHeader, Detail } from '../../gateway/agent/heartbeat.js';
import type { WritableSession } from '../../manager/agent-status-writer.js';
import { type ManagerRole, type ManagerRoleOptions, startManagerRole } from '../../manager/process.js';
import type { Role } from '../../manager/roles.js';
import { signRequest } from '../../platform/http/aksk.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { startTestDynamo, type TestDynamo } from './dynalite.js';
import { tempDir } from './gateway.js';

export const AK = 'ekwjsyj2iucfotiy';
export const SK = 'Zq8vN3xR7tY1pL5mK9wB2cD6fG0hJ4sA';
export const SECRET = 'Tq3vN8xR1tY6pL0mK4wB7cD2fG5hJ9sAeU3iO8zX';
export const ROOT_PASSWORD = 'root-password-123';

export interface CallOptions {
  body?: unknown;
  raw?: string | Buffer;
  /** A session token or API key, sent as Elkeid's `token` header. */
  token?: string;
  /** Sent as `Authorization: Bearer`. */
  bearer?: string;
  /** AK/SK-sign the request as a gateway. */
  sign?: boolean;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test convenience over JSON answers
  json: any;
}

export interface TestManager {
  db: TestDynamo;
  role: ManagerRole;
  base: string;
  registry: Registry;
  call(method: string, pathAndQuery: string, o?: CallOptions): Promise<CallResult>;
  /** A fresh session token for `username` (no sign-in round trip, no login rate limit). */
  token(username: string): string;
  user(username: string, role: Role, password?: string): Promise<string>;
  /** Runs `fn` at the end of the test, before the manager and the store stop (last deferred first). */
  defer(fn: () => unknown): void;
}

export async function startTestManager(
  t: TestContext,
  o: {
    db?: TestDynamo;
    api?: ManagerRoleOptions['api'];
    print?: (s: string) => void;
    admin?: boolean;
    dispatcher?: ManagerRoleOptions['dispatcher'];
    liveSocket?: ManagerRoleOptions['liveSocket'];
  } = {},
): Promise<TestManager> {
  // One after-hook, run last-in first-out: writers stop before the manager, the manager before the store.
  const stack: Array<() => unknown> = [];
  t.after(async () => {
    for (const fn of stack.reverse()) await fn();
  });
  const db = o.db ?? (await startTestDynamo());
  if (!o.db) stack.push(() => db.close());
  const registry = new Registry();
  const role = await startManagerRole({
    config: {
      host: '127.0.0.1',
      managerPort: 0,
      advertiseHost: '127.0.0.1',
      dataDir: tempDir(t, 'fg-mgr-'),
      tablePrefix: db.prefix,
      admin: o.admin === false ? undefined : { name: 'root', password: ROOT_PASSWORD },
    },
    store: { client: db.client },
    logger: silentLogger(),
    registry,
    aksk: [[AK, SK]],
    env: { FLEETGATE_MANAGER_SECRET: SECRET },
    print: o.print ?? (() => {}),
    ...(o.api ? { api: o.api } : {}),
    ...(o.dispatcher !== undefined ? { dispatcher: o.dispatcher } : {}),
    ...(o.liveSocket ? { liveSocket: o.liveSocket } : {}),
  });
  stack.push(() => role.close());
  const base = `http://127.0.0.1:${role.port}`;
  // Tokens carry the account id (manager/tokens.ts); token() is synchronous, so ids are kept here.
  const accounts = new Map<string, string | undefined>();
  if (o.admin !== false) accounts.set('root', (await role.api.users.get('root'))?.accountId);
  return {
    db,
    role,
    base,
    registry,
    async call(method, pathAndQuery, c = {}) {
      const [path, query = ''] = pathAndQuery.split('?') as [string, string?];
      const body = c.raw ?? (c.body === undefined ? '' : JSON.stringify(c.body));
      const headers: Record<string, string> = { ...c.headers };
      if (body.length > 0) headers['content-type'] ??= 'application/json';
      if (c.token) headers.token = c.token;
      if (c.bearer) headers.authorization = `Bearer ${c.bearer}`;
      if (c.sign) Object.assign(headers, signRequest({ method, path, query, body, ak: AK, sk: SK }));
      const res = await fetch(base + pathAndQuery, { method, headers, ...(body.length > 0 ? { body } : {}) });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, text, json };
    },
    token(username) {
      return role.api.tokens.issue(username, undefined, accounts.get(username)).token;
    },
    defer(fn) {
      stack.push(fn);
    },
    async user(username, r, password = `${username}-password-1`) {
      const created = await role.api.users.create({ username, password, role: r });
      accounts.set(username, created.accountId);
      return role.api.tokens.issue(username, undefined, created.accountId).token;
    },
  };
}

/** A gateway session as the HeartbeatWriter sees it; tests change `detail` to "heartbeat". */
export class FakeSession implements WritableSession {
  readonly agentId: string;
  readonly peer = '127.0.0.1:40000';
  readonly connectedAt: number;
  header: AgentHeader;
  detail: Detail | undefined;
  readonly plugins = new Map<string, Detail>();
  constructor(agentId: string, opts: { version?: string; ip?: string; connectedAt?: number } = {}) {
    this.agentId = agentId;
    this.connectedAt = opts.connectedAt ?? Math.floor(Date.now() / 1000);
    this.header = {
      intranetIPv4: [opts.ip ?? '10.0.0.1'],
      extranetIPv4: [],
      intranetIPv6: [],
      extranetIPv6: [],
      hostname: `host-${agentId}`,
      version: opts.version ?? '1.9.1.4',
      product: 'elkeid-agent',
    };
  }
  /** A new 1000 heartbeat (a new detail object, as the gateway makes one per heartbeat). */
  heartbeat(fields: Record<string, unknown> = {}): void {
    this.detail = {
      agent_id: this.agentId,
      hostname: this.header.hostname,
      version: this.header.version,
      platform: 'debian',
      platform_version: '12.5',
      kernel_version: '6.1.0',
      arch: 'x86_64',
      state: 'running',
      last_heartbeat_time: Math.floor(Date.now() / 1000),
      intranet_ipv4: this.header.intranetIPv4,
      ...fields,
    };
  }
}

export class FakeRegistry {
  readonly sessions = new Set<FakeSession>();
  all(): Iterable<FakeSession> {
    return this.sessions.values();
  }
  add(s: FakeSession): FakeSession {
    this.sessions.add(s);
    return s;
  }
  remove(s: FakeSession): void {
    this.sessions.delete(s);
  }
}
