import { get, type Schemas } from '../api/client';
import { Empty, ErrorBox, Loading, Time, useAsync } from '../ui';

const STATE_WORDS: Record<string, string> = {
  created: 'waiting',
  running: 'delivered, waiting for the result',
  succeed: 'delivered',
  failed: 'delivery failed',
  result_succeed: 'succeeded',
  result_failed: 'failed',
};

function resultText(r: Schemas['AgentTaskResult']): string {
  const fields = r.task_result
    ? Object.entries(r.task_result)
        .filter(([k]) => k !== 'token' && k !== 'agent_id')
        .map(([k, v]) => `${k}: ${v}`)
    : [];
  return [r.status_msg ?? '', ...fields].filter(Boolean).join('; ') || '—';
}

/** The newest tasks that targeted this agent, with its state and result in each. */
export function AgentTasks({ id }: { id: string }) {
  const r = useAsync(
    () => get('/api/fleet/agents/{id}/tasks', { params: { id }, query: { limit: 20 } }),
    [id],
  );
  return (
    <section class="card">
      <h2>Recent tasks</h2>
      {r.error ? (
        <ErrorBox error={r.error} />
      ) : !r.data ? (
        <Loading what="the agent's tasks" />
      ) : r.data.items.length === 0 ? (
        <Empty>No task has targeted this agent yet.</Empty>
      ) : (
        <table data-testid="agent-tasks">
          <thead>
            <tr>
              <th>Task</th>
              <th>Type</th>
              <th>Here</th>
              <th>Result</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {r.data.items.map((t) => (
              <tr key={t.task_id}>
                <td>
                  <a href={`#/tasks/${encodeURIComponent(t.task_id)}`}>{t.task_name || t.task_id}</a>
                </td>
                <td>{t.task_type}</td>
                <td>{STATE_WORDS[t.status] ?? t.status}</td>
                <td class="wrap">{resultText(t)}</td>
                <td>
                  <Time ms={(t.update_time ?? 0) * 1000} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** Connects and disconnects of this agent: which gateway, from which address, when. */
export function AgentConnections({ id }: { id: string }) {
  const r = useAsync(
    () => get('/api/fleet/agents/{id}/connections', { params: { id }, query: { limit: 20 } }),
    [id],
  );
  if (r.error) return <ErrorBox error={r.error} />;
  if (!r.data) return <Loading what="the connection history" />;
  if (r.data.items.length === 0) return <Empty>No connection recorded in the last 30 days.</Empty>;
  return (
    <table data-testid="agent-connections">
      <thead>
        <tr>
          <th>Event</th>
          <th>Gateway</th>
          <th>Agent address</th>
          <th>When</th>
        </tr>
      </thead>
      <tbody>
        {r.data.items.map((c) => (
          <tr key={`${c.at}-${c.kind}-${c.gateway}`}>
            <td>{c.kind === 'connect' ? 'connected' : 'disconnected'}</td>
            <td>{c.gateway}</td>
            <td>{c.peer || '—'}</td>
            <td>
              <Time ms={c.at} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
