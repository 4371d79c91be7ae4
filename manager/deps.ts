/** What the manager's route modules share (built once by api.ts). */
import type { RegistryStore } from '../discovery/registry-store.js';
import type { Logger } from '../platform/obs/logger.js';
import type { AgentReader } from './agents.js';
import type { ApiKeyStore } from './apikeys.js';
import type { AuditLog } from './audit.js';
import type { ConfigStore } from './configs.js';
import type { RateLimiter } from './rate-limit.js';
import type { ManagerStore } from './store.js';
import type { TagStore } from './tags.js';
import type { TaskService } from './tasks/types.js';
import type { TokenSigner } from './tokens.js';
import type { UserStore } from './users.js';

export interface ManagerDeps {
  store: ManagerStore;
  users: UserStore;
  apiKeys: ApiKeyStore;
  tokens: TokenSigner;
  audit: AuditLog;
  agents: AgentReader;
  tags: TagStore;
  configs: ConfigStore;
  /** The task engine (tasks/service.ts): createTask, controlTask, getTask, updateSubTask, quickTask. */
  tasks: TaskService;
  /** The discovery registry (live gateways and their connection counts: rebalance). */
  registry: Pick<RegistryStore, 'list'>;
  /** Sign-in attempts per account and address. */
  loginLimiter: RateLimiter;
  logger: Logger;
  now: () => number;
  /** Most agent items one list/filter request may examine (Scan). */
  scanLimit: number;
  /** Most matches a sorted list keeps in memory. */
  sortLimit: number;
}
