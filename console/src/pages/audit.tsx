import { useState } from 'preact/hooks';
import { get } from '../api/client';
import { Empty, ErrorBox, Field, Loading, Time, useAsync } from '../ui';

const PAGE_SIZE = 50;

interface AuditQuery {
  from: string;
  to: string;
  actor: string;
  action: string;
  target: string;
  result: '' | 'ok' | 'failed';
}

/** The audit log, filtered and paged by the manager (oldest first within the days chosen). */
export function Audit() {
  const today = new Date().toISOString().slice(0, 10);
  const [draft, setDraft] = useState<AuditQuery>({
    from: today,
    to: today,
    actor: '',
    action: '',
    target: '',
    result: '',
  });
  const [query, setQuery] = useState<AuditQuery>(draft);
  // Cursors of the pages seen so far: page n starts at cursors[n] (undefined: the first page).
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined]);
  const page = cursors.length - 1;
  const list = useAsync(
    () =>
      get('/api/fleet/audit', {
        query: { ...query, result: query.result || undefined, limit: PAGE_SIZE, cursor: cursors[page] },
      }),
    [query, cursors],
  );
  const set = (k: keyof AuditQuery) => (e: { currentTarget: { value: string } }) =>
    setDraft({ ...draft, [k]: e.currentTarget.value });
  const items = list.data?.items ?? [];
  const next = list.data?.cursor;
  return (
    <>
      <form
        class="filters"
        aria-label="audit filters"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery(draft);
          setCursors([undefined]);
        }}
      >
        <Field label="From (UTC day)">
          <input type="date" value={draft.from} onInput={set('from')} />
        </Field>
        <Field label="To">
          <input type="date" value={draft.to} onInput={set('to')} />
        </Field>
        <Field label="Actor">
          <input value={draft.actor} onInput={set('actor')} placeholder="user or key (exact)" />
        </Field>
        <Field label="Action">
          <input value={draft.action} onInput={set('action')} placeholder="e.g. gateways" />
        </Field>
        <Field label="Target">
          <input
            value={draft.target}
            onInput={set('target')}
            placeholder="part of a target, or an agent ID"
          />
        </Field>
        <Field label="Result">
          <select value={draft.result} onChange={set('result')}>
            <option value="">any</option>
            <option value="ok">succeeded</option>
            <option value="failed">refused or failed</option>
          </select>
        </Field>
        <button type="submit">Apply filters</button>
      </form>
      <ErrorBox error={list.error} />
      {!list.data ? (
        <Loading what="the audit log" />
      ) : items.length === 0 ? (
        <Empty>{next ? 'No matching entries on this page; try the next one.' : 'No entries match.'}</Empty>
      ) : (
        <table data-testid="audit-table">
          <thead>
            <tr>
              <th>When</th>
              <th>Who</th>
              <th>Action</th>
              <th>Target</th>
              <th class="num">Agents</th>
              <th class="num">Status</th>
            </tr>
          </thead>
          <tbody>
            {items.map((e) => (
              <tr key={e.tsId} data-testid="audit-row">
                <td>
                  <Time ms={e.at} />
                </td>
                <td>{e.actor}</td>
                <td>{e.action}</td>
                <td>{e.target ?? ''}</td>
                <td class="num">{e.agentCount ?? ''}</td>
                <td class="num">{e.status}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav class="pager" aria-label="audit pages">
        <button type="button" disabled={page === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>
        <span>Page {page + 1}</span>
        <button type="button" disabled={!next} onClick={() => setCursors([...cursors, next])}>
          Next page
        </button>
      </nav>
    </>
  );
}
