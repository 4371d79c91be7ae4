import type { Schemas } from '../api/client';
import { useApp } from '../app-state';
import { Empty, Loading, Progress, Sparkline, Time } from '../ui';

function Counts({ title, counts }: { title: string; counts: Record<string, number> }) {
  const rows = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  return (
    <section class="card">
      <h2>{title}</h2>
      {rows.length === 0 ? (
        <Empty>No agents online.</Empty>
      ) : (
        <table>
          <tbody>
            {rows.map(([k, n]) => (
              <tr key={k}>
                <th scope="row">{k || '(unknown)'}</th>
                <td class="num">{n}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function TaskRows({ tasks }: { tasks: Schemas['Task'][] }) {
  if (tasks.length === 0) return <Empty>No tasks yet.</Empty>;
  return (
    <table>
      <thead>
        <tr>
          <th>Task</th>
          <th>Type</th>
          <th>State</th>
          <th>Progress</th>
          <th>Created</th>
        </tr>
      </thead>
      <tbody>
        {tasks.map((t) => {
          const c = t.counts;
          const done = (c.succeed ?? 0) + (c.result_succeed ?? 0);
          const failed = (c.failed ?? 0) + (c.result_failed ?? 0);
          return (
            <tr key={t.task_id} data-testid={`task-row-${t.task_id}`}>
              <td>
                <a href={`#/tasks/${encodeURIComponent(t.task_id)}`}>{t.task_name || t.task_id}</a>
              </td>
              <td>{t.task_type}</td>
              <td>{t.task_status}</td>
              <td>
                <Progress done={done} failed={failed} total={t.id_count} /> {done}/{t.id_count}
              </td>
              <td>
                <Time ms={t.create_time * 1000} />
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function spoolText(records: number | null, bytes: number | null): string {
  if (records === null || bytes === null) return '—';
  const size =
    bytes < 1024 * 1024 ? `${Math.round(bytes / 1024)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${records} records (${size})`;
}

export function OverviewPage() {
  const { live } = useApp();
  if (!live) return <Loading what="the fleet" />;
  const s = live.stats;
  const connected = live.gateways.filter((g) => g.alive).reduce((n, g) => n + g.connected, 0);
  // The history's samples are 10 s apart; the charts end at the values shown now.
  const alive = live.gateways.filter((g) => g.alive);
  const rate = (f: (g: Schemas['Gateway']) => number | null) =>
    Math.round(alive.reduce((n, g) => n + (f(g) ?? 0), 0) * 10) / 10;
  const recordsIn = rate((g) => g.records_in_per_s);
  const recordsToKafka = rate((g) => g.records_to_kafka_per_s);
  const activeTasks = live.tasks.filter(
    (t) => t.task_status === 'created' || t.task_status === 'running',
  ).length;
  return (
    <>
      <h1>Overview</h1>
      <section class="tiles" aria-label="agents">
        <div class="tile">
          <span>Connected</span>
          <strong data-testid="connected-count">{connected}</strong>
        </div>
        <div class="tile">
          <span>Online</span>
          <strong data-testid="online-count">{s.online}</strong>
        </div>
        <div class="tile">
          <span>Offline</span>
          <strong>{s.offline}</strong>
        </div>
        <div class="tile">
          <span>Abnormal</span>
          <strong>{s.abnormal}</strong>
        </div>
        <div class="tile">
          <span>Total seen</span>
          <strong data-testid="total-count">{s.total}</strong>
        </div>
      </section>
      <p class="muted">
        As of <Time ms={s.as_of} />.
      </p>
      <section class="card charts">
        <h2>Last hour</h2>
        <Sparkline label="Connected agents" values={[...live.history.map((h) => h.connected), connected]} />
        <Sparkline label="Online agents" values={[...live.history.map((h) => h.online), s.online]} />
        <Sparkline
          label="Records/s in"
          values={[...live.history.map((h) => h.records_in_per_s), recordsIn]}
        />
        <Sparkline
          label="Records/s to Kafka"
          values={[...live.history.map((h) => h.records_to_kafka_per_s), recordsToKafka]}
        />
        <Sparkline label="Active tasks" values={[...live.history.map((h) => h.active_tasks), activeTasks]} />
      </section>
      <div class="grid">
        <Counts title="By version" counts={s.by_version} />
        <Counts title="By platform" counts={s.by_platform} />
      </div>
      <section class="card">
        <h2>Gateways</h2>
        {live.gateways.length === 0 ? (
          <Empty>No gateway has reported yet.</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Gateway</th>
                <th class="num">Connections</th>
                <th class="num">Limit</th>
                <th class="num">Records/s in</th>
                <th class="num">Records/s to Kafka</th>
                <th class="num">Spool</th>
                <th>Last report</th>
              </tr>
            </thead>
            <tbody>
              {live.gateways.map((g) => (
                <tr key={g.id} data-testid={`overview-gateway-${g.id}`}>
                  <td>
                    {g.id} {g.alive ? '' : <span class="badge bad">silent</span>}
                  </td>
                  <td class="num">{g.connected}</td>
                  <td class="num">{g.desired_limit ?? 'none'}</td>
                  <td class="num" data-testid="records-in">
                    {g.records_in_per_s ?? '—'}
                  </td>
                  <td class="num" data-testid="records-kafka">
                    {g.records_to_kafka_per_s ?? '—'}
                  </td>
                  <td class="num" data-testid="spool-depth">
                    {spoolText(g.spool_records, g.spool_bytes)}
                  </td>
                  <td>
                    <Time ms={g.updated_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section class="card">
        <h2>Task activity</h2>
        <TaskRows tasks={live.tasks} />
      </section>
    </>
  );
}
