/**
 * The agent status writer with the agent's connection history: each connect and disconnect the
 * writer records also goes to the bounded connection-history recorder (the console's agent page),
 * which is flushed and stopped after the writer on close. What both manager factories of a
 * gateway's status writer build (manager/process.ts).
 */
import {
  createHeartbeatWriter,
  type HeartbeatWriter,
  type HeartbeatWriterOptions,
} from '../agent-status-writer.js';
import { createConnectionRecorder } from '../store/connection-history-store.js';

export function createStatusWriterWithHistory(
  o: Omit<HeartbeatWriterOptions, 'onConnection'>,
): HeartbeatWriter {
  const history = createConnectionRecorder({
    client: o.client,
    tablePrefix: o.tablePrefix,
    logger: o.logger,
    ...(o.registry ? { registry: o.registry } : {}),
  });
  history.start();
  const writer = createHeartbeatWriter({ ...o, onConnection: (e) => history.record(e) });
  return {
    ...writer,
    async close() {
      await writer.close();
      await history.close();
    },
  };
}
