import { useState } from 'preact/hooks';
import { type AgentDoc, type AgentFilters, filterJson, type ModelPage, NO_FILTERS } from '../agent-query';
import { get, post } from '../api/client';
import { canWrite, go, picked, useApp } from '../app-state';
import { Empty, ErrorBox, errorText, Field, Loading, Time, useAsync, useConfirm } from '../ui';

const COLUMNS: Array<[keyof AgentDoc & string, string]> = [
  ['agent_id', 'Agent ID'],
  ['hostname', 'Host name'],
  ['intranet_ipv4', 'IP'],
  ['status', 'Status'],
  ['version', 'Version'],
  ['platform', 'Platform'],
  ['gateway', 'Gateway'],
  ['tags', 'Tags'],
  ['last_heartbeat_time', 'Last heartbeat'],
];

export async function listAgents(f: AgentFilters, page: number, pageSize: number, sort?: [string, 1 | -1]) {
  const query = {
    page,
    page_size: pageSize,
    ...(sort ? { order_key: sort[0], order_value: sort[1] } : {}),
  };
  const body = filterJson(f);
  const r = body
    ? await post('/api/v1/agent/getStatus/filter', { query, body })
    : await get('/api/v1/agent/getStatus', { query });
  return r as ModelPage<AgentDoc>;
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

function cell(a: AgentDoc, key: string) {
  if (key === 'agent_id') return <a href={`#/agents/${encodeURIComponent(a.agent_id)}`}>{a.agent_id}</a>;
  if (key === 'last_heartbeat_time')
    return <Time ms={a.last_heartbeat_time ? a.last_heartbeat_time * 1000 : null} />;
  if (key === 'status') return <span class={`badge ${a.status}`}>{a.status}</span>;
  const v = a[key];
  return Array.isArray(v) ? v.join(', ') : String(v ?? '');
}

export function AgentsPage() {
  const { me } = useApp();
  const write = canWrite(me);
  const [filters, setFilters] = useState(NO_FILTERS);
  const [page, setPage] = useState(1);
  const [pageSize, setPageSize] = useState(100);
  const [sort, setSort] = useState<[string, 1 | -1] | undefined>(undefined);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const list = useAsync(() => listAgents(filters, page, pageSize, sort), [filters, page, pageSize, sort]);
  const items = list.data?.items ?? [];
  const toggle = (id: string) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  };
  const sortBy = (key: string) => setSort(sort?.[0] === key ? [key, sort[1] === 1 ? -1 : 1] : [key, 1]);
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
            list.reload();
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
                {COLUMNS.map(([key, label]) => (
                  <th
                    key={key}
                    aria-sort={sort?.[0] === key ? (sort[1] === 1 ? 'ascending' : 'descending') : 'none'}
                  >
                    <button type="button" class="link" onClick={() => sortBy(key)}>
                      {label}
                      {sort?.[0] === key ? (sort[1] === 1 ? ' ▲' : ' ▼') : ''}
                    </button>
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
            Page {list.data.page} of {Math.max(1, list.data.pages)} · {list.data.total} agents
          </span>
          <button type="button" disabled={page >= list.data.pages} onClick={() => setPage(page + 1)}>
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
