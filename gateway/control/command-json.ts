/**
 * Elkeid's JSON form of a Command (`POST /command/`, §2.12) to the protobuf message, validated.
 * A present `task` object, even empty, becomes a Task, which makes the agent ignore `config`
 * (Elkeid behaves the same; the manager never sends both). A command with neither a task nor a
 * config is never built: `agent_ctrl` alone becomes the agent task it stands for, or is refused
 * (agent-ctrl.ts) — stock agents would read it as an empty plugin config.
 */
import type { grpc } from '../../proto/gen/elkeid.js';
import { AgentCtrlError, agentCtrlTask } from './agent-ctrl.js';

export class CommandJsonError extends Error {}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(o: Json, key: string, where: string): string {
  const v = o[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new CommandJsonError(`${where}.${key} must be a string`);
  return v;
}

function int32(o: Json, key: string, where: string): number {
  const v = o[key];
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
    throw new CommandJsonError(`${where}.${key} must be a 32-bit integer`);
  }
  return v;
}

export function commandFromJson(value: unknown): grpc.Command.$Properties {
  if (!isObject(value)) throw new CommandJsonError('command must be an object');
  const out: grpc.Command.$Properties = { AgentCtrl: int32(value, 'agent_ctrl', 'command') };
  if (value.task !== undefined && value.task !== null) {
    const t = value.task;
    if (!isObject(t)) throw new CommandJsonError('command.task must be an object');
    out.Task = {
      DataType: int32(t, 'data_type', 'command.task'),
      Name: str(t, 'name', 'command.task'),
      Data: str(t, 'data', 'command.task'),
      Token: str(t, 'token', 'command.task'),
    };
  }
  if (value.config !== undefined && value.config !== null) {
    if (!Array.isArray(value.config)) throw new CommandJsonError('command.config must be an array');
    out.Config = value.config.map((c, i) => {
      const where = `command.config[${i}]`;
      if (!isObject(c)) throw new CommandJsonError(`${where} must be an object`);
      const urls = c.download_url ?? [];
      if (!Array.isArray(urls) || urls.some((u) => typeof u !== 'string')) {
        throw new CommandJsonError(`${where}.download_url must be an array of strings`);
      }
      return {
        Name: str(c, 'name', where),
        Type: str(c, 'type', where),
        Version: str(c, 'version', where),
        SHA256: str(c, 'sha256', where),
        Signature: str(c, 'signature', where),
        DownloadURL: urls as string[],
        Detail: str(c, 'detail', where),
      };
    });
  }
  if (!out.Task && !out.Config) {
    if (!out.AgentCtrl) throw new CommandJsonError('command needs a task, a config or agent_ctrl');
    try {
      out.Task = { ...agentCtrlTask(out.AgentCtrl), Token: '' };
    } catch (err) {
      if (err instanceof AgentCtrlError) throw new CommandJsonError(err.message);
      throw err;
    }
  }
  return out;
}
