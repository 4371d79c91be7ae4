/**
 * Agent control as a stock Elkeid agent understands it. The agent's Command has no AgentCtrl
 * field (docs/elkeid-protocol.md §1.10): a Command carrying only AgentCtrl arrives as an empty Command,
 * which the agent reads as "the complete plugin config is: nothing" and uninstalls every plugin.
 * What the agent does act on are its own task data types, sent as a Task named `elkeid-agent`.
 * So an `agent_ctrl` value is mapped to that task when it is one the agent runs without data,
 * and refused with this explanation otherwise.
 */

/** The agent's product name: tasks with this name are run by the agent itself. */
export const AGENT_TASK_NAME = 'elkeid-agent';

/** agent_ctrl values that map to an agent task of the same data type. */
export const AGENT_CTRL_TASKS: ReadonlyMap<number, string> = new Map([
  [1060, 'restart: the agent exits and its service manager (systemd) starts it again'],
]);

export class AgentCtrlError extends Error {}

/** The Task a stock agent runs for `ctrl`; throws AgentCtrlError for values it has no task for. */
export function agentCtrlTask(ctrl: number): { Name: string; DataType: number; Data: string } {
  if (AGENT_CTRL_TASKS.has(ctrl)) return { Name: AGENT_TASK_NAME, DataType: ctrl, Data: '' };
  const known = [...AGENT_CTRL_TASKS].map(([v, what]) => `${v} (${what})`).join(', ');
  throw new AgentCtrlError(
    `agent_ctrl ${ctrl} is not understood by stock Elkeid agents: their Command has no AgentCtrl ` +
      'field and an empty command makes them uninstall every plugin. Supported: ' +
      `${known}, sent to the agent as a task named "${AGENT_TASK_NAME}"; for anything else send a task ` +
      '(e.g. data_type 1050 upload, 1051 set idc/region) or a config',
  );
}
