/**
 * How tasks and subtasks are shown: Elkeid's fields and numbers from our items (types.ts).
 *
 * Counting as Elkeid shows it (§4.5 step 6): a subtask waiting for a retry (`failed`) is still in
 * flight, so it counts as running; for Agent_Task `succeed` (delivered, waiting for the agent's
 * result) counts as running and only result_* are final; for config and ctrl tasks a delivery
 * is the success.
 */
import type { HeadOverlay, SubtaskItem, TaskItem } from './model.js';
import type { CommandBody, SubtaskView, TaskCounts, TaskType, TaskView } from './types.js';

/** Elkeid's four numbers from our six states. */
export function elkeidNumbers(type: TaskType, c: TaskCounts) {
  const waiting = type === 'Agent_Task' ? c.succeed : 0;
  return {
    sub_task_created: c.created,
    sub_task_running: c.running + c.failed + waiting,
    sub_task_succeed: c.result_succeed + (type === 'Agent_Task' ? 0 : c.succeed),
    sub_task_failed: c.result_failed,
  };
}

export function taskView(t: TaskItem, counts: TaskCounts): TaskView {
  let data: CommandBody = {};
  try {
    data = JSON.parse(t.data) as CommandBody;
  } catch {
    // stored by us; never invalid
  }
  return {
    task_id: t.taskId,
    task_type: t.taskType,
    action: t.action,
    task_name: t.taskName,
    task_user: t.user,
    tag: t.tag,
    id_list: t.idList ?? [],
    data,
    task_status: t.state,
    subtask_running_timeout: t.timeoutS,
    id_count: t.total,
    distributed_count: t.released,
    ...elkeidNumbers(t.taskType, counts),
    counts,
    create_time: Math.floor(t.createdAt / 1000),
    update_time: Math.floor(t.updatedAt / 1000),
  };
}

export function subtaskView(s: SubtaskItem): SubtaskView {
  return {
    task_id: s.taskId,
    agent_id: s.agentId,
    token: s.token,
    status: s.state,
    status_msg: s.msg ?? '',
    task_type: s.taskType,
    attempts: s.attempts,
    gateway: s.gateway ?? '',
    task_result: s.result ?? null,
    insert_time: Math.floor(s.insertAt / 1000),
    update_time: Math.floor(s.updatedAt / 1000),
  };
}

/** A config/ctrl subtask with its chunk head's state letter applied (model.ts). */
export function overlay(
  s: SubtaskItem,
  head: Pick<HeadOverlay, 'start' | 'st' | 'gw'> | undefined,
): SubtaskItem {
  if (s.taskType === 'Agent_Task' || typeof head?.st !== 'string') return s;
  const i = s.idx - head.start;
  const letter = head.st[i];
  const gateway = head.gw?.[i] || s.gateway;
  if (letter === 'S' && s.state !== 'result_succeed') {
    // Delivered at the first attempt (no item written) or after failures (the item shows them).
    return {
      ...s,
      state: 'result_succeed',
      msg: '',
      attempts: s.state === 'created' ? 1 : s.attempts + 1,
      ...(gateway ? { gateway } : {}),
    };
  }
  return gateway ? { ...s, gateway } : s;
}
