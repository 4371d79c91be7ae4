import type { AgentDoc } from '../agent-query';
import { get } from '../api/client';
import { Empty, ErrorBox, Loading, Time, useAsync } from '../ui';
import { AgentConnections, AgentTasks } from './agent-history';

type Item = { name: string; version?: string; [k: string]: unknown };

/** Which scope last set each plugin of the effective config (default, then tags, then the agent). */
async function sources(id: string, tags: string[]): Promise<Map<string, string>> {
  const scopes: Array<[string, Promise<{ config: unknown[] }>]> = [
    ['default', get('/api/fleet/configs/default')],
    ...tags.map((tag): [string, Promise<{ config: unknown[] }>] => [
      `tag ${tag}`,
      get('/api/fleet/configs/tags/{tag}', { params: { tag } }),
    ]),
    ['this agent', get('/api/fleet/configs/agents/{id}', { params: { id } })],
  ];
  const from = new Map<string, string>();
  for (const [label, p] of scopes) {
    for (const item of (await p).config as Item[]) from.set(item.name, label);
  }
  return from;
}

async function load(id: string) {
  const agent = (await get('/api/fleet/agents/{id}', { params: { id } })) as unknown as AgentDoc;
  const tags = agent.tags ?? [];
  const [config, from] = await Promise.all([
    get('/api/fleet/agents/{id}/config', { params: { id } }),
    sources(id, tags),
  ]);
  return { agent, config: config.config as Item[], from };
}

const secs = (v: unknown) => (typeof v === 'number' ? v * 1000 : null);

export function AgentPage({ id }: { id: string }) {
  const r = useAsync(() => load(id), [id]);
  if (r.error) return <ErrorBox error={r.error} />;
  if (!r.data) return <Loading what={`agent ${id}`} />;
  const { agent: a, config, from } = r.data;
  const fields: Array<[string, unknown]> = [
    ['Status', a.status],
    ['Host name', a.hostname],
    ['Version', a.version],
    ['Platform', `${a.platform ?? ''} ${String(a.platform_version ?? '')}`],
    ['Kernel', a.kernel_version],
    ['Architecture', a.arch],
    ['IPv4', (a.intranet_ipv4 ?? []).join(', ')],
    ['fleetgate gateway', a.fleet_gateway],
    ['Default route', a.gateway],
    ['CPU', a.cpu],
    ['RSS', a.rss],
    ['Tags', (a.tags ?? []).join(', ') || '—'],
  ];
  return (
    <>
      <h1>Agent {a.agent_id}</h1>
      <section class="card">
        <h2>Heartbeat</h2>
        <dl class="fields">
          {fields.map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{v === undefined || v === '' ? '—' : String(v)}</dd>
            </div>
          ))}
          <div>
            <dt>Last heartbeat</dt>
            <dd>
              <Time ms={secs(a.last_heartbeat_time)} />
            </dd>
          </div>
        </dl>
      </section>
      <section class="card">
        <h2>Connection history</h2>
        <dl class="fields">
          <div>
            <dt>First seen</dt>
            <dd>
              <Time ms={secs(a.first_heartbeat_time)} />
            </dd>
          </div>
          <div>
            <dt>Connected</dt>
            <dd>
              <Time ms={secs(a.connected_at)} />
            </dd>
          </div>
          <div>
            <dt>Disconnected</dt>
            <dd>
              <Time ms={secs(a.disconnected_at)} />
            </dd>
          </div>
        </dl>
        <AgentConnections id={a.agent_id} />
      </section>
      <AgentTasks id={a.agent_id} />
      <section class="card">
        <h2>Plugins</h2>
        {(a.plugins ?? []).length === 0 ? (
          <Empty>The agent reports no plugins.</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Version</th>
                <th>State</th>
                <th class="num">CPU</th>
                <th class="num">RSS</th>
              </tr>
            </thead>
            <tbody>
              {(a.plugins ?? []).map((p) => (
                <tr key={String(p.name)}>
                  <td>{String(p.name ?? '')}</td>
                  <td>{String(p.version ?? '')}</td>
                  <td>{String(p.status ?? p.state ?? '')}</td>
                  <td class="num">{String(p.cpu ?? '')}</td>
                  <td class="num">{String(p.rss ?? '')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section class="card">
        <h2>Effective config</h2>
        {config.length === 0 ? (
          <Empty>No plugin is configured for this agent (nothing is pushed).</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Plugin</th>
                <th>Version</th>
                <th>From</th>
              </tr>
            </thead>
            <tbody>
              {config.map((c) => (
                <tr key={c.name}>
                  <td>{c.name}</td>
                  <td>{c.version ?? ''}</td>
                  <td>{from.get(c.name) ?? 'default'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <p>
        <a href="#/agents">Back to agents</a>
      </p>
    </>
  );
}
