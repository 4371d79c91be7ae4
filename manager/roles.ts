/**
 * Roles of the manager API and how they map onto Elkeid's user levels (docs/elkeid-protocol.md §4.2):
 *
 *   role      Elkeid level   may
 *   admin     0              everything, including users, API keys and the audit log
 *   operator  1, 2           read + change agents: configs, tags, load control (later: tasks)
 *   viewer    3 (and 4–8)    read only
 *
 * Elkeid's levels 4–8 are hub/alarm/baseline roles with no agent-management rights beyond
 * reading; they map to viewer. The gateway principal (AK/SK) is not a user role: it may only
 * call the AgentCenter callbacks (queryInfo, GetComponentInstances, updateSubTask). updateSubTask
 * changes subtask states, so among users only writers may call it (`callback-write`).
 */
export const ROLES = ['admin', 'operator', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/** What a route requires. `public`: nobody needs to sign in (login, health). */
export type Access =
  | 'public'
  /** any signed-in user or API key */
  | 'user'
  | 'read'
  | 'write'
  | 'admin'
  /** gateways (AK/SK) and readers */
  | 'callback'
  /** gateways (AK/SK) and writers: callbacks that change state (updateSubTask) */
  | 'callback-write';

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

export function isRole(v: unknown): v is Role {
  return typeof v === 'string' && (ROLES as readonly string[]).includes(v);
}

/** Elkeid's level of a role (what `/api/v1/user/info` reports). */
export function elkeidLevel(role: Role): number {
  return role === 'admin' ? 0 : role === 'operator' ? 2 : 3;
}

export function roleFromElkeidLevel(level: number): Role {
  if (level === 0) return 'admin';
  if (level === 1 || level === 2) return 'operator';
  return 'viewer';
}

/** True when `role` is at least `min`. */
export function atLeast(role: Role, min: Role): boolean {
  return RANK[role] >= RANK[min];
}

export type PrincipalKind = 'user' | 'apikey' | 'gateway';

export interface Principal {
  kind: PrincipalKind;
  /** username, API key id, or the AK. */
  id: string;
  /** Users and API keys; gateways have none. */
  role?: Role;
  /** The user a key belongs to. */
  owner?: string;
}

export function principalLabel(p: Principal | undefined): string {
  return p ? `${p.kind}:${p.id}` : 'anonymous';
}

export function allowed(access: Access, p: Principal | undefined): boolean {
  if (access === 'public') return true;
  if (!p) return false;
  if (p.kind === 'gateway') return access === 'callback' || access === 'callback-write';
  const role = p.role;
  if (!role) return false;
  switch (access) {
    case 'user':
    case 'read':
    case 'callback':
      return true;
    case 'write':
    case 'callback-write':
      return atLeast(role, 'operator');
    case 'admin':
      return role === 'admin';
  }
}
