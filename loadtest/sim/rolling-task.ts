/**
 * The rolling-task disruption (`fleetgate sim --scenario rolling-task`), driven once by the parent
 * process through the manager API: create one Elkeid plugin task (Agent_Task) for the
 * simulator's agents, then release it in rolling batches as an Elkeid operator does — every
 * `controlTask run` with `rolling_percent` releases the next batch (service.ts `run`) — releasing
 * the next batch only once every agent of the current one has a final result (a canary roll),
 * until all are released and final or the scenario ends.
 *
 * The manager orders a task's agents by ID and releases a prefix (create.ts), so batch k is
 * agents [k·step, (k+1)·step) of the sorted IDs; that is how results are attributed to batches.
 */
import type { ManagerClient, SubtaskRow } from './manager-client.js';
import { histogramOf, type LatencySummary, summarize } from './report.js';
import type { TaskArrival } from './sim-agent.js';

/** The plugin the task is for: the one Elkeid deploys everywhere (an agent without it answers "failed"). */
export const ROLLING_TASK_PLUGIN = 'collector';
/** The task's data type (what the simulated plugin receives; it answers any). */
export const ROLLING_TASK_DATA_TYPE = 2001;
/** The result record the simulated plugin answers with: 5100 is one of the types a stock manager decides by (docs/tasks.md). */
export const ROLLING_RESULT_DATA_TYPE = 5100;

const FINAL = new Set(['result_succeed', 'result_failed']);

export interface RollingTaskOptions {
  client: ManagerClient;
  /** The IDs of this invocation's agents (simAgentId). */
  agentIds: readonly string[];
  rollingPercent: number;
  /** The run's ID seed: marks the task's commands and makes its creation idempotent. */
  runId: string;
  /** Epoch ms the driver stops at, finished or not (the scenario's end). */
  deadline: number;
  pollMs?: number;
  log?: (line: string) => void;
}

export interface RollingBatch {
  batch: number;
  agents: number;
  /** Epoch ms of the `run` that released it. */
  releasedAt: number;
  /** Epoch ms the last of its results was seen (undefined: not all came). */
  lastResultAt?: number;
}

/** What the driver saw; `rollingTaskReport` turns it into the report's numbers. */
export interface RollingTaskRun {
  taskId: string;
  /** The targeted agents, sorted as the manager orders them. */
  ids: string[];
  agents: number;
  rollingPercent: number;
  createdAt: number;
  batches: RollingBatch[];
  /** The last poll: each agent's subtask. */
  subtasks: Map<string, SubtaskRow>;
  /** Epoch ms each agent's result was first seen final. */
  finalAt: Map<string, number>;
  taskStatus: string;
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runRollingTask(o: RollingTaskOptions): Promise<RollingTaskRun> {
  const log = o.log ?? (() => {});
  const pollMs = o.pollMs ?? 250;
  const sorted = [...new Set(o.agentIds)].sort();
  const run: RollingTaskRun = {
    taskId: '',
    ids: sorted,
    agents: sorted.length,
    rollingPercent: o.rollingPercent,
    createdAt: Date.now(),
    batches: [],
    subtasks: new Map(),
    finalAt: new Map(),
    taskStatus: '',
  };
  try {
    const created = await o.client.createTask({
      id_list: sorted,
      task_name: `fleetgate sim rolling-task ${o.runId.slice(0, 8)}`,
      data: {
        task: {
          name: ROLLING_TASK_PLUGIN,
          data_type: ROLLING_TASK_DATA_TYPE,
          data: JSON.stringify({ rolling_task: o.runId, result_data_type: ROLLING_RESULT_DATA_TYPE }),
        },
      },
      // The fan-out guard asks large tasks to state their size; this one is meant for every agent.
      confirm_fanout: sorted.length,
      request_id: `fleetgate-sim-${o.runId}`,
    });
    run.taskId = created.task_id;
    run.createdAt = Date.now();
    const step = Math.max(1, Math.floor(created.count * o.rollingPercent));
    const total = Math.ceil(created.count / step);
    log(`rolling task ${run.taskId}: ${created.count} agents in ${total} batches of ${step}`);
    let released = 0;
    let lastLogged = '';
    while (Date.now() < o.deadline) {
      const current = run.batches.at(-1);
      if (!current || current.lastResultAt !== undefined) {
        if (released >= created.count) break;
        const r = await o.client.run(run.taskId, o.rollingPercent);
        if (r.id_count <= 0) break; // nothing left to release (someone else ran it)
        const batch = { batch: run.batches.length + 1, agents: r.id_count, releasedAt: Date.now() };
        run.batches.push(batch);
        released += r.id_count;
        log(`rolling task: batch ${batch.batch}/${total} released (${r.id_count} agents)`);
      }
      await poll(o, run);
      const results = run.finalAt.size;
      const line = `rolling task: results ${results}/${released} released, ${created.count} in all`;
      if (line !== lastLogged) log(line);
      lastLogged = line;
      if (run.batches.at(-1)?.lastResultAt !== undefined && released >= created.count) break;
      await sleep(pollMs);
    }
    // The manager marks the task finished on its next recount after the last result: wait for it
    // (bounded) so the report shows the state an operator would see.
    for (;;) {
      run.taskStatus = (await o.client.getTask(run.taskId)).task_status;
      if (!['created', 'running'].includes(run.taskStatus) || run.finalAt.size < run.agents) break;
      if (Date.now() >= o.deadline) break;
      await sleep(pollMs);
    }
  } catch (err) {
    run.error = (err as Error).message;
    log(`rolling task failed: ${run.error}`);
  }
  return run;
}

/** One getSubTask: records first-seen final times and closes the batches whose agents are all final. */
async function poll(o: RollingTaskOptions, run: RollingTaskRun): Promise<void> {
  const rows = await o.client.subtasks(run.taskId);
  const now = Date.now();
  for (const s of rows) {
    run.subtasks.set(s.agent_id, s);
    if (FINAL.has(s.status) && !run.finalAt.has(s.agent_id)) run.finalAt.set(s.agent_id, now);
  }
  let start = 0;
  for (const b of run.batches) {
    const ids = run.ids.slice(start, start + b.agents);
    start += b.agents;
    if (b.lastResultAt === undefined && ids.every((id) => run.finalAt.has(id)))
      b.lastResultAt = Math.max(...ids.map((id) => run.finalAt.get(id)!));
  }
}

/** The report's `rollingTask` section. */
export interface RollingTaskReport {
  taskId: string;
  agents: number;
  rollingPercent: number;
  /** Seconds into the run the task was created. */
  atS: number;
  /** ms from the task's creation until every agent's result was seen (null: not all came). */
  allResultsMs: number | null;
  /** Per batch: ms from creation to its release, and from its release to its last result. */
  batches: Array<{ batch: number; agents: number; releasedAfterMs: number; lastResultMs: number | null }>;
  resultSucceed: number;
  resultFailed: number;
  /** Subtasks not final at the end (created, failed awaiting retry, delivered without result). */
  other: number;
  /** The task's state at the end (finished once every agent is released and final). */
  taskStatus: string;
  /** Agent side: task commands received, agents that got one, the same token again, a token not theirs. */
  commandsReceived: number;
  agentsWithCommand: number;
  duplicateCommands: number;
  wrongToken: number;
  /** ms from the release of an agent's batch to the command's arrival at the agent. */
  commandMs: LatencySummary;
  /** ms from the release of an agent's batch to its result seen by the driver (± the poll interval). */
  resultMs: LatencySummary;
  error?: string;
}

export function rollingTaskReport(
  run: RollingTaskRun,
  arrivals: readonly TaskArrival[],
  runStartedAt: number,
): RollingTaskReport {
  // Each agent's batch release, from the batches' sizes over the sorted IDs.
  const releasedAt = new Map<string, number>();
  let start = 0;
  for (const b of run.batches) {
    for (const id of run.ids.slice(start, start + b.agents)) releasedAt.set(id, b.releasedAt);
    start += b.agents;
  }
  const seen = new Set<string>();
  const agentsWith = new Set<string>();
  let duplicateCommands = 0;
  let wrongToken = 0;
  const commandMs: number[] = [];
  for (const a of arrivals) {
    const key = `${a.agentId} ${a.token}`;
    if (seen.has(key)) duplicateCommands++;
    seen.add(key);
    if (run.subtasks.get(a.agentId)?.token !== a.token) {
      wrongToken++;
      continue;
    }
    agentsWith.add(a.agentId);
    const rel = releasedAt.get(a.agentId);
    if (rel !== undefined) commandMs.push(a.atMs - rel);
  }
  const resultMs: number[] = [];
  for (const [id, at] of run.finalAt) {
    const rel = releasedAt.get(id);
    if (rel !== undefined) resultMs.push(at - rel);
  }
  const states = [...run.subtasks.values()].map((s) => s.status);
  const succeed = states.filter((s) => s === 'result_succeed').length;
  const failed = states.filter((s) => s === 'result_failed').length;
  const all = run.taskId !== '' && run.finalAt.size === run.agents;
  return {
    taskId: run.taskId,
    agents: run.agents,
    rollingPercent: run.rollingPercent,
    atS: Number(((run.createdAt - runStartedAt) / 1000).toFixed(1)),
    allResultsMs: all ? Math.max(...run.finalAt.values()) - run.createdAt : null,
    batches: run.batches.map((b) => ({
      batch: b.batch,
      agents: b.agents,
      releasedAfterMs: b.releasedAt - run.createdAt,
      lastResultMs: b.lastResultAt === undefined ? null : b.lastResultAt - b.releasedAt,
    })),
    resultSucceed: succeed,
    resultFailed: failed,
    other: run.agents - succeed - failed,
    taskStatus: run.taskStatus,
    commandsReceived: arrivals.length,
    agentsWithCommand: agentsWith.size,
    duplicateCommands,
    wrongToken,
    commandMs: summarize(histogramOf(commandMs)),
    resultMs: summarize(histogramOf(resultMs)),
    ...(run.error ? { error: run.error } : {}),
  };
}
