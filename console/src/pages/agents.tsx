import { useState } from 'preact/hooks';
import { type AgentFilters, NO_FILTERS } from '../agent-query';
import { get, post, type Schemas } from '../api/client';
import type { paths } from '../api/openapi.gen';
import { canWrite, go, picked, useApp } from '../app-state';
import { Empty, ErrorBox, errorText, Field, Loading, Time, useAsync, useConfirm } from '../ui';

type Row = Schemas['AgentRow'];
type SortKey = NonNullable<NonNullable<ListQuery>['sort']>;
type ListQuery = paths['/api/fleet/agents']['get']['parameters']['query'];

/** Columns; those with a sort key are sorted by the manager. */
const COLUMNS: Array<[keyof Row, string, SortKey | undefined]> = [
  ['agent_id', 'Agent ID', 'agent_id'],
  ['hostname', 'Host name', 'hostname'],
  ['ips', 'IP', undefined],
  ['status', 'Status', 'status'],
  ['version', 'Version', 'version'],
  ['platform', 'Platform', 'platform'],
  ['gateway', 'Gateway', 'gateway'],
  ['tags', 'Tags', undefined],
  ['last_heartbeat_time', 'Last heartbeat', 'last_heartbeat_time'],
];

export function listAgents(
  f: AgentFilters,
  page: number,
  pageSize: number,
  sort: [SortKey, 1 | -1],
  fresh: boolean,
) {
  return get('/api/fleet/agents', {
    query: {
      page,
      page_size: pageSize,
      sort: sort[0],
      order: sort[1] === 1 ? 'asc' : 'desc',
      id: f.id.trim(),
      hostname: f.hostname.trim(),
      ip: f.ip.trim(),
      tag: f.tag.trim(),
      version: f.version.trim(),
      status: f.status,
      gateway: f.gateway.trim(),
      fresh: fresh ? '1' : undefined,
    },
  });
}

function Filters({ value, onApply }: { value: AgentFilters; onApply(f: AgentFilters): void }) {
  const [f, setF] = useState(value);
  const text = (key: keyof AgentFilters, label: string) => (
    <Field label={label}>
      <input
        name={`filter-${key}`}
        value={f[key]}
        onInput={(e) => setF({ ...f, [key]: e.currentTarget.value })}
      />
    </Field>
  );
  return (
    <form
      class="filters"
      onSubmit={(e) => {
        e.preventDefault();
        onApply(f);
      }}
    >
      {text('id', 'ID')}
      {text('hostname', 'Host name')}
      {text('ip', 'IP')}
      {text('tag', 'Tag')}
      {text('version', 'Version')}
      <Field label="Status">
        <select
          name="filter-status"
          value={f.status}
          onChange={(e) => setF({ ...f, status: e.currentTarget.value })}
        >
          <option value="">any</option>
          <option value="running">running</option>
          <option value="abnormal">abnormal</option>
          <option value="offline">offline</option>
        </select>
      </Field>
      {text('gateway', 'Gateway')}
      <button type="submit">Filter</button>
      <button
        type="button"
        onClick={() => {
          setF(NO_FILTERS);
          onApply(NO_FILTERS);
        }}
      >
        Clear
      </button>
    </form>
  );
}

function BulkActions({ ids, done }: { ids: string[]; done(msg: string): void }) {
  const [tag, setTag] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [dialog, confirm] = useConfirm();
  const tagging = async (add: boolean) => {
    setError(undefined);
    const ok = await confirm({
      title: add ? 'Add tag' : 'Remove tag',
      body: `${add ? 'Add' : 'Remove'} tag “${tag}” ${add ? 'to' : 'from'} ${ids.length} agent(s)?`,
      confirm: add ? 'Add tag' : 'Remove tag',
    });
    if (!ok) return;
    try {
      await post(add ? '/api/v1/addTags' : '/api/v1/delTags', { body: { tag, id_list: ids } });
      done(`${add ? 'Tagged' : 'Untagged'} ${ids.length} agent(s) “${tag}”.`);
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <fieldset class="bulk" aria-label="selected agents">
      <span>{ids.length} selected</span>
      <input
        aria-label="Tag for the selected agents"
        name="bulk-tag"
        placeholder="tag"
        value={tag}
        onInput={(e) => setTag(e.currentTarget.value)}
      />
      <button type="button" disabled={!tag || ids.length === 0} onClick={() => void tagging(true)}>
        Add tag
      </button>
      <button type="button" disabled={!tag || ids.length === 0} onClick={() => void tagging(false)}>
        Remove tag
      </button>
      <button
        type="button"
        disabled={ids.length === 0}
        onClick={() => {
          picked.ids = ids;
          go('tasks', 'new');
        }}
      >
        Create task…
      </button>
      <ErrorBox error={error} />
      {dialog}
    </fieldset>
  );
}

function cell(a: Row, key: keyof Row) {
  if (key === 'agent_id') return <a href={`#/agents/${encodeURIComponent(a.agent_id)}`}>{a.agent_id}</a>;
  if (key === 'last_heartbeat_time')
    return <Time ms={a.last_heartbeat_time ? a.last_heartbeat_time * 1000 : null} />;
  if (key === 'status') return <span class={`badge ${a.status}`}>{a.status}</span>;
  // Two addresses fit the column; the agent's page lists all.
  if (key === 'ips') return a.ips.length > 2 ? `${a.ips.slice(0, 2).join(', ')}, …` : a.ips.join(', ');
  const v = a[key];
  return Array.isArray(v) ? v.join(', ') : String(v ?? '');
}

export function AgentsPage() {
  const { me } = useApp();
  const write = canWrite(me);
  const [filters, setFilters] = useState(NO_FILTERS);
  const [page, setPage] = useState(1);
  const [pageSize, setPageSize] = useState(100);
  const [sort, setSort] = useState<[SortKey, 1 | -1]>(['agent_id', 1]);
  const [fresh, setFresh] = useState(0);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const list = useAsync(
    () => listAgents(filters, page, pageSize, sort, fresh > 0),
    [filters, page, pageSize, sort, fresh],
  );
  const pages = list.data ? Math.max(1, Math.ceil(list.data.total / list.data.page_size)) : 1;
  const items = list.data?.items ?? [];
  const toggle = (id: string) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  };
  const sortBy = (key: SortKey) => setSort(sort[0] === key ? [key, sort[1] === 1 ? -1 : 1] : [key, 1]);
  return (
    <>
      <h1>Agents</h1>
      <Filters
        value={filters}
        onApply={(f) => {
          setFilters(f);
          setPage(1);
        }}
      />
      {write ? (
        <BulkActions
          ids={[...selected]}
          done={(msg) => {
            setNotice(msg);
            setSelected(new Set());
            // Our own change: wait for the manager's index to include it.
            setFresh((n) => n + 1);
          }}
        />
      ) : null}
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      <ErrorBox error={list.error} />
      {list.loading && !list.data ? <Loading what="agents" /> : null}
      {list.data && items.length === 0 ? <Empty>No agent matches these filters.</Empty> : null}
      {items.length > 0 ? (
        <div class="scroll">
          <table class="agents" aria-busy={list.loading}>
            <thead>
              <tr>
                {write ? (
                  <th>
                    <input
                      type="checkbox"
                      aria-label="select all on this page"
                      checked={items.every((a) => selected.has(a.agent_id))}
                      onChange={(e) =>
                        setSelected(new Set(e.currentTarget.checked ? items.map((a) => a.agent_id) : []))
                      }
                    />
                  </th>
                ) : null}
                {COLUMNS.map(([key, label, sortKey]) => (
                  <th
                    key={key}
                    aria-sort={
                      sortKey && sort[0] === sortKey
                        ? sort[1] === 1
                          ? 'ascending'
                          : 'descending'
                        : undefined
                    }
                  >
                    {sortKey ? (
                      <button type="button" class="link" onClick={() => sortBy(sortKey)}>
                        {label}
                        {sort[0] === sortKey ? (sort[1] === 1 ? ' ▲' : ' ▼') : ''}
                      </button>
                    ) : (
                      label
                    )}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {items.map((a) => (
                <tr key={a.agent_id} data-testid="agent-row">
                  {write ? (
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`select ${a.agent_id}`}
                        checked={selected.has(a.agent_id)}
                        onChange={() => toggle(a.agent_id)}
                      />
                    </td>
                  ) : null}
                  {COLUMNS.map(([key]) => (
                    <td key={key}>{cell(a, key)}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {list.data ? (
        <nav class="pager" aria-label="pages">
          <button type="button" disabled={page <= 1} onClick={() => setPage(page - 1)}>
            Previous
          </button>
          <span>
            Page {list.data.page} of {pages} · {list.data.total} agents
          </span>
          <button type="button" disabled={page >= pages} onClick={() => setPage(page + 1)}>
            Next
          </button>
          <select
            aria-label="rows per page"
            value={pageSize}
            onChange={(e) => setPageSize(Number(e.currentTarget.value))}
          >
            {[25, 50, 100, 500].map((n) => (
              <option key={n} value={n}>
                {n} per page
              </option>
            ))}
          </select>
        </nav>
      ) : null}
    </>
  );
}
