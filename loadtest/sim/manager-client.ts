/**
 * The few manager API calls the simulator's rolling-task driver makes (Elkeid's v1 task routes,
 * docs/manager.md), authenticated with an API key in `X-Api-Key`. Answers are Elkeid's envelope
 * `{code, msg, data}`; anything but code 0 is thrown with the manager's message, so the report
 * says why a run could not start.
 */

export interface SubtaskRow {
  agent_id: string;
  token: string;
  status: string;
}

export interface TaskRow {
  task_id: string;
  task_status: string;
  id_count: number;
  distributed_count: number;
  counts?: Record<string, number>;
}

export interface ManagerClient {
  createTask(body: Record<string, unknown>): Promise<{ task_id: string; count: number }>;
  run(taskId: string, rollingPercent: number): Promise<{ id_count: number }>;
  getTask(taskId: string): Promise<TaskRow>;
  subtasks(taskId: string): Promise<SubtaskRow[]>;
}

export class ManagerCallError extends Error {}

/** Each call is bounded (a hung manager must not outlive the scenario). */
const CALL_TIMEOUT_MS = 15_000;

export function managerClient(base: string, apiKey: string): ManagerClient {
  const root = base.replace(/\/+$/, '');
  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await fetch(root + path, {
      method,
      headers: {
        'x-api-key': apiKey,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
    const text = await res.text();
    let env: { code?: number; msg?: string; data?: T } | undefined;
    try {
      env = JSON.parse(text) as typeof env;
    } catch {
      // not JSON: reported below with the status
    }
    if (!res.ok || env?.code !== 0) {
      throw new ManagerCallError(
        `${method} ${path}: HTTP ${res.status}${env?.msg ? ` ${env.msg}` : ` ${text.slice(0, 200)}`}`,
      );
    }
    return env.data as T;
  }
  const id = (taskId: string) => encodeURIComponent(taskId);
  return {
    createTask: (body) => call('POST', '/api/v1/agent/createTask/task', body),
    run: (taskId, rollingPercent) =>
      call('POST', '/api/v1/agent/controlTask', {
        task_id: taskId,
        action: 'run',
        rolling_percent: rollingPercent,
      }),
    getTask: (taskId) => call('GET', `/api/v1/agent/getTask/${id(taskId)}`),
    subtasks: (taskId) => call('GET', `/api/v1/agent/getSubTask/${id(taskId)}`),
  };
}
