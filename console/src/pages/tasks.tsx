import { useEffect, useState } from 'preact/hooks';
import type { AgentDoc, ModelPage } from '../agent-query';
import { ApiError, get, post, type Schemas } from '../api/client';
import { canWrite, go, picked, useApp } from '../app-state';
import { Empty, ErrorBox, errorText, Field, Loading, Progress, Time, useAsync, useConfirm } from '../ui';
import { TaskRows } from './overview';

type Task = Schemas['Task'];
type Action = 'task' | 'config' | 'ctrl';

export function TasksPage() {
  const { live, me } = useApp();
  const older = useAsync(() => get('/api/fleet/tasks', { query: { limit: 100 } }), []);
  // Live tasks first (their progress moves), then the rest of the list.
  const liveIds = new Set((live?.tasks ?? []).map((t) => t.task_id));
  const tasks = [...(live?.tasks ?? []), ...(older.data?.items ?? []).filter((t) => !liveIds.has(t.task_id))];
  return (
    <>
      <h1>Tasks</h1>
      {canWrite(me) ? (
        <p>
          <a class="button primary" href="#/tasks/new">
            New task
          </a>
        </p>
      ) : null}
      <ErrorBox error={older.error} />
      {!live && older.loading ? <Loading what="tasks" /> : <TaskRows tasks={tasks} />}
    </>
  );
}

function taskCounts(t: Task) {
  const c = t.counts;
  return {
    done: (c.succeed ?? 0) + (c.result_succeed ?? 0),
    failed: (c.failed ?? 0) + (c.result_failed ?? 0),
    running: (c.running ?? 0) + (c.created ?? 0),
  };
}

export function TaskPage({ id }: { id: string }) {
  const { live, me } = useApp();
  const fromLive = live?.tasks.find((t) => t.task_id === id);
  const fetched = useAsync(
    () => get('/api/fleet/tasks/{id}', { params: { id } }),
    [id, fromLive ? 0 : live?.at],
  );
  const task = fromLive ?? fetched.data;
  const counts = task ? taskCounts(task) : undefined;
  const subs = useAsync(
    () => get('/api/fleet/tasks/{id}/subtasks', { params: { id }, query: { limit: 500 } }),
    [id, counts?.done, counts?.failed, counts?.running],
  );
  const [error, setError] = useState<string | undefined>(undefined);
  const [dialog, confirm] = useConfirm();
  if (fetched.error && !task) return <ErrorBox error={fetched.error} />;
  if (!task || !counts) return <Loading what={`task ${id}`} />;
  const pct = task.id_count > 0 ? Math.round((100 * counts.done) / task.id_count) : 0;
  const active = task.task_status === 'created' || task.task_status === 'running';
  const cancel = async () => {
    const ok = await confirm({
      title: 'Cancel task',
      body: `No agent that has not received it yet will get it (${task.id_count - counts.done - counts.failed} outstanding); deliveries in flight finish.`,
      confirm: 'Cancel task',
      danger: true,
    });
    if (!ok) return;
    try {
      await post('/api/fleet/tasks/{id}/cancel', { params: { id } });
      fetched.reload();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <>
      <h1>Task {task.task_name || task.task_id}</h1>
      <section class="card">
        <dl class="fields">
          <div>
            <dt>State</dt>
            <dd data-testid="task-state">{task.task_status}</dd>
          </div>
          <div>
            <dt>Type</dt>
            <dd>{task.task_type}</dd>
          </div>
          <div>
            <dt>Target</dt>
            <dd>{task.tag ? `tag ${task.tag}` : `${task.id_count} agents`}</dd>
          </div>
          <div>
            <dt>Created</dt>
            <dd>
              <Time ms={task.create_time * 1000} /> by {task.task_user ?? '—'}
            </dd>
          </div>
        </dl>
        <Progress done={counts.done} failed={counts.failed} total={task.id_count} />
        <p data-testid="task-progress">
          {pct} % succeeded · {counts.done} succeeded, {counts.failed} failed, {counts.running} waiting of{' '}
          {task.id_count}
        </p>
        {canWrite(me) && active && (task.counts.released ?? 0) < task.id_count ? (
          <ReleaseMore
            id={id}
            released={task.counts.released ?? 0}
            total={task.id_count}
            onDone={fetched.reload}
          />
        ) : null}
        {canWrite(me) && active ? (
          <button type="button" class="danger" onClick={() => void cancel()}>
            Cancel task
          </button>
        ) : null}
        <ErrorBox error={error} />
      </section>
      <section class="card">
        <h2>Per-agent results</h2>
        <ErrorBox error={subs.error} />
        {subs.data && subs.data.items.length === 0 ? (
          <Empty>No agent has been sent this task yet.</Empty>
        ) : null}
        {subs.data && subs.data.items.length > 0 ? (
          <table>
            <thead>
              <tr>
                <th>Agent</th>
                <th>Status</th>
                <th>Message</th>
                <th>Updated</th>
              </tr>
            </thead>
            <tbody>
              {subs.data.items.map((s) => (
                <tr key={s.agent_id}>
                  <td>
                    <a href={`#/agents/${encodeURIComponent(s.agent_id)}`}>{s.agent_id}</a>
                  </td>
                  <td>{s.status}</td>
                  <td>{s.status_msg || String(s.task_result?.msg ?? '')}</td>
                  <td>
                    <Time ms={s.update_time ? s.update_time * 1000 : null} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </section>
      {dialog}
    </>
  );
}

/** A rolling run: release a further share of the task's agents. */
function ReleaseMore(p: { id: string; released: number; total: number; onDone(): void }) {
  const [percent, setPercent] = useState('100');
  const [error, setError] = useState<string | undefined>(undefined);
  const release = async () => {
    setError(undefined);
    try {
      const share = Math.min(100, Math.max(1, Number(percent) || 100)) / 100;
      await post('/api/fleet/tasks/{id}/run', { params: { id: p.id }, body: { rolling_percent: share } });
      p.onDone();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <p class="actions">
      {p.released} of {p.total} released.
      <Field label="Release another (% of the task)">
        <input inputMode="numeric" value={percent} onInput={(e) => setPercent(e.currentTarget.value)} />
      </Field>
      <button type="button" onClick={() => void release()}>
        Release
      </button>
      <ErrorBox error={error} />
    </p>
  );
}

interface Target {
  tag: string;
  ids: string[];
}

/** How many agents a target resolves to and on which gateways (from the first 500). */
async function preview(t: Target) {
  const rule = t.tag
    ? { key: 'tags', rules: [{ operator: '$eq', value: t.tag }], condition: '$and' }
    : { key: 'agent_id', rules: [{ operator: '$in', value: t.ids }], condition: '$and' };
  const r = (await post('/api/v1/agent/getStatus/filter', {
    query: { page: 1, page_size: 500 },
    body: { filter: [rule], condition: '$and' } as Schemas['Filter'],
  })) as ModelPage<AgentDoc>;
  const gateways = new Map<string, number>();
  for (const a of r.items)
    if (a.status !== 'offline') {
      const gw = String(a.fleet_gateway ?? '');
      gateways.set(gw, (gateways.get(gw) ?? 0) + 1);
    }
  const online = r.items.filter((a) => a.status !== 'offline').length;
  return { total: r.total, online, gateways, partial: r.total > r.items.length };
}

function commandData(action: Action, f: Record<string, string>): Schemas['CommandBody'] {
  if (action === 'ctrl') return { agent_ctrl: Number(f.ctrl) };
  if (action === 'config') {
    return {
      config: [
        {
          name: f.plugin ?? '',
          version: f.version ?? '',
          ...(f.sha256 ? { sha256: f.sha256 } : {}),
          ...(f.url ? { download_url: [f.url] } : {}),
          type: 'go',
        },
      ],
    } as Schemas['CommandBody'];
  }
  return { task: { name: f.plugin ?? '', data_type: Number(f.dataType), data: f.payload ?? '' } };
}

export function NewTaskPage() {
  const { me } = useApp();
  const [action, setAction] = useState<Action>('task');
  const [name, setName] = useState('');
  const [tag, setTag] = useState(picked.ids.length > 0 ? '' : '');
  const [ids, setIds] = useState(picked.ids.join('\n'));
  const [f, setF] = useState<Record<string, string>>({
    dataType: '5100',
    payload: '{}',
    ctrl: '1060',
    rolling: '100',
  });
  const [pv, setPv] = useState<Awaited<ReturnType<typeof preview>> | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [dialog, confirm] = useConfirm();
  const target = (): Target => ({ tag: tag.trim(), ids: ids.split(/[\s,]+/).filter(Boolean) });
  useEffect(() => setPv(undefined), [tag, ids]);
  if (!canWrite(me)) return <ErrorBox error="Creating tasks needs the operator or admin role." />;
  const input = (key: string, label: string, numeric = false) => (
    <Field label={label}>
      <input
        name={`task-${key}`}
        inputMode={numeric ? 'numeric' : 'text'}
        value={f[key] ?? ''}
        onInput={(e) => setF({ ...f, [key]: e.currentTarget.value })}
      />
    </Field>
  );
  const doPreview = async () => {
    setError(undefined);
    try {
      const p = await preview(target());
      setPv(p);
      return p;
    } catch (err) {
      setError(errorText(err));
      return undefined;
    }
  };
  const create = async (e: Event) => {
    e.preventDefault();
    const t = target();
    if (!t.tag && t.ids.length === 0) return setError('Choose a tag or list agent IDs.');
    const p = pv ?? (await doPreview());
    if (!p) return;
    const gw =
      [...p.gateways.entries()].map(([g, n]) => `${g || '(none)'}: ${n}`).join(', ') || 'none online';
    const ok = await confirm({
      title: 'Send task',
      body: (
        <p>
          This {action === 'task' ? 'plugin task' : action === 'config' ? 'config task' : 'control task'} goes
          to <strong data-testid="fanout-count">{p.total}</strong> agent(s), {p.online} online now, released{' '}
          {f.rolling}% at first. Gateways: {gw}
          {p.partial ? ' (from the first 500)' : ''}.
        </p>
      ),
      confirm: `Send to ${p.total} agents`,
    });
    if (!ok) return;
    setBusy(true);
    setError(undefined);
    const body = {
      action,
      task_name: name || `${action} from the console`,
      data: commandData(action, f),
      ...(t.tag ? { tag: t.tag } : { id_list: t.ids }),
    };
    try {
      let created: { task_id: string; count: number };
      try {
        created = await post('/api/fleet/tasks', { body });
      } catch (err) {
        if (!(err instanceof ApiError) || err.error !== 'fanout_unconfirmed') throw err;
        // The manager's fan-out guard: confirmed above with the count it resolved.
        const count = Number(/(\d+) agents/.exec(err.message)?.[1] ?? p.total);
        created = await post('/api/fleet/tasks', { body: { ...body, confirm_fanout: count } });
      }
      const rolling = Math.min(100, Math.max(1, Number(f.rolling) || 100)) / 100;
      await post('/api/fleet/tasks/{id}/run', {
        params: { id: created.task_id },
        body: { rolling_percent: rolling },
      });
      picked.ids = [];
      go('tasks', created.task_id);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <h1>New task</h1>
      <form class="card form" onSubmit={create}>
        <Field label="Kind">
          <select
            name="task-action"
            value={action}
            onChange={(e) => setAction(e.currentTarget.value as Action)}
          >
            <option value="task">plugin task</option>
            <option value="config">plugin config</option>
            <option value="ctrl">agent control</option>
          </select>
        </Field>
        <Field label="Name">
          <input name="task-name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <fieldset>
          <legend>Target</legend>
          <Field label="Tag">
            <input name="task-tag" value={tag} onInput={(e) => setTag(e.currentTarget.value)} />
          </Field>
          <Field label="or agent IDs (one per line)">
            <textarea name="task-ids" rows={3} value={ids} onInput={(e) => setIds(e.currentTarget.value)} />
          </Field>
          <button type="button" onClick={() => void doPreview()}>
            Preview target
          </button>
          {pv ? (
            <p class="notice" data-testid="target-preview">
              {pv.total} agent(s), {pv.online} online, on {pv.gateways.size} gateway(s).
            </p>
          ) : null}
        </fieldset>
        {action === 'ctrl' ? (
          <Field label="Control">
            <select
              name="task-ctrl"
              value={f.ctrl}
              onChange={(e) => setF({ ...f, ctrl: e.currentTarget.value })}
            >
              <option value="1060">restart the agent (1060)</option>
              <option value="1061">shut down the agent (1061)</option>
            </select>
          </Field>
        ) : (
          input('plugin', 'Plugin name')
        )}
        {action === 'task' ? (
          <>
            {input('dataType', 'Data type', true)}
            {input('payload', 'Data (the plugin reads it)')}
          </>
        ) : null}
        {action === 'config' ? (
          <>
            {input('version', 'Version')}
            {input('sha256', 'SHA-256')}
            {input('url', 'Download URL')}
          </>
        ) : null}
        {input('rolling', 'Release now (% of the target)', true)}
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create and run'}
        </button>
      </form>
      {dialog}
    </>
  );
}
