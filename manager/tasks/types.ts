/**
 * The task system's public shapes: what the API routes (routes/tasks.ts) call and what the
 * engine (this folder) implements. Names follow Elkeid's documents (docs/elkeid-protocol.md §4.5) where
 * the API shows them, so the v1 endpoints can render them as Elkeid does.
 */
import type { Filter } from '../filter.js';

/** Elkeid task_type. delConfig tasks are Agent_Config tasks whose items carry only `name`. */
export type TaskType = 'Agent_Config' | 'Agent_Task' | 'Agent_Ctrl';

/** Elkeid task_status. */
export type TaskState = 'created' | 'running' | 'finished' | 'cancelled';

/** Elkeid subtask status. */
export type SubtaskState = 'created' | 'running' | 'succeed' | 'failed' | 'result_succeed' | 'result_failed';

/** An Elkeid config item (AgentConfigMsg); only `name` set = delete that plugin. */
export interface ConfigItem {
  name: string;
  type?: string;
  version?: string;
  sha256?: string;
  signature?: string;
  download_url?: string[];
  detail?: string;
}

/** The command body as the gateway control API takes it (gateway/control/command-json.ts). */
export interface CommandBody {
  agent_ctrl?: number;
  task?: { name: string; data: string; data_type: number; token?: string };
  config?: ConfigItem[];
}

/** Who a task is for: the union of the three, as Elkeid's `$or[{tags}, {agent_id ∈ id_list}, filter]`. */
export interface TaskTarget {
  tag?: string;
  id_list?: string[];
  filter?: Filter;
}

export interface CreateTaskInput {
  type: TaskType;
  /** `createTask/delConfig`: config items with only names. */
  action?: 'config' | 'task' | 'ctrl' | 'delConfig';
  target: TaskTarget;
  /** Agent_Task: task; Agent_Ctrl: agent_ctrl; Agent_Config: config (merged per agent at dispatch). */
  data: CommandBody;
  task_name?: string;
  /** Seconds a delivered subtask may wait for its result (Agent_Task) before result_failed. Default 300. */
  subtask_running_timeout?: number;
  /** Delivery attempts per agent before result_failed. Default 5. */
  max_attempts?: number;
  user: string;
  /** Fan-out guard: required when the target resolves to more than the configured N agents. */
  confirm_fanout?: number;
  /** Idempotency key: the same key within 24 h returns the first task instead of a new one. */
  request_id?: string;
}

export interface TaskCounts {
  total: number;
  released: number;
  created: number;
  running: number;
  succeed: number;
  failed: number;
  result_succeed: number;
  result_failed: number;
}

export interface TaskView {
  task_id: string;
  task_type: TaskType;
  action: string;
  task_name: string;
  task_user: string;
  tag: string;
  id_list: string[];
  data: CommandBody;
  task_status: TaskState;
  subtask_running_timeout: number;
  id_count: number;
  distributed_count: number;
  sub_task_created: number;
  sub_task_running: number;
  sub_task_failed: number;
  sub_task_succeed: number;
  counts: TaskCounts;
  /** Unix seconds, as Elkeid. */
  create_time: number;
  update_time: number;
}

export interface SubtaskView {
  task_id: string;
  agent_id: string;
  token: string;
  status: SubtaskState;
  status_msg: string;
  task_type: TaskType;
  attempts: number;
  /** The gateway control address of the last delivery attempt. */
  gateway: string;
  /** The agent's result record fields (Agent_Task), as the gateway reported them. */
  task_result: Record<string, string> | null;
  insert_time: number;
  update_time: number;
}

export interface RunInput {
  task_id: string;
  /** (0, 1]: release this share of the task's agents (Elkeid's rolling_percent). */
  rolling_percent?: number;
  /** Or release this many (Elkeid v6 run_number). */
  run_number?: number;
  /** Chunks of this task dispatched at once across all managers, 1..999. Default 100. */
  concurrence?: number;
  user: string;
}

/** One result item as Elkeid's AgentCenter posts it to updateSubTask (string map). */
export type ResultItem = Record<string, string>;

export interface QuickTaskInput {
  agent_id: string;
  command: CommandBody;
  /** Give the command a token and reconcile its result (Elkeid `token=true`). */
  token: boolean;
  /** Seconds to wait for delivery. */
  timeoutSeconds?: number;
  user: string;
}

/** The engine's API, implemented in this folder, called by routes/tasks.ts and the Lambda entries. */
export interface TaskService {
  create(input: CreateTaskInput): Promise<{ task_id: string; count: number }>;
  run(input: RunInput): Promise<{ taskID: string; jobID: string; id_count: number }>;
  cancel(taskId: string, user: string): Promise<{ taskID: string }>;
  get(taskId: string): Promise<TaskView | undefined>;
  /** Newest first; `cursor` pages (the v1 routes turn it into Elkeid's page numbers). */
  list(opts: { limit: number; cursor?: string }): Promise<{ items: TaskView[]; cursor?: string }>;
  subtasks(
    taskId: string,
    opts: { limit: number; cursor?: string },
  ): Promise<{ items: SubtaskView[]; cursor?: string }>;
  /** Gateway callback: results by token. Unknown tokens are counted, not errors. */
  applyResults(items: readonly ResultItem[]): Promise<{ applied: number; unknown: number; ignored: number }>;
  quick(input: QuickTaskInput): Promise<{ token: string; result: string }>;
}
