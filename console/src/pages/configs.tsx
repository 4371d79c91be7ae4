import { useState } from 'preact/hooks';
import { del, get, put } from '../api/client';
import { canWrite, useApp } from '../app-state';
import { diffLines } from '../diff';
import { ErrorBox, errorText, Field, Loading, useAsync, useConfirm } from '../ui';

type Scope = { kind: 'default' | 'tag' | 'agent'; name: string };

async function read(s: Scope): Promise<unknown[]> {
  if (s.kind === 'default') return (await get('/api/fleet/configs/default')).config;
  if (s.kind === 'tag')
    return (await get('/api/fleet/configs/tags/{tag}', { params: { tag: s.name } })).config;
  return (await get('/api/fleet/configs/agents/{id}', { params: { id: s.name } })).config;
}

async function write(s: Scope, config: unknown[]): Promise<void> {
  // The documented request bodies are the Elkeid config items the manager validates.
  const body = { config } as never;
  if (s.kind === 'default') await put('/api/fleet/configs/default', { body });
  else if (s.kind === 'tag') {
    if (config.length === 0) await del('/api/fleet/configs/tags/{tag}', { params: { tag: s.name } });
    else await put('/api/fleet/configs/tags/{tag}', { params: { tag: s.name }, body });
  } else if (config.length === 0) await del('/api/fleet/configs/agents/{id}', { params: { id: s.name } });
  else await put('/api/fleet/configs/agents/{id}', { params: { id: s.name }, body });
}

const pretty = (v: unknown) => JSON.stringify(v, null, 2);

function Editor({ scope }: { scope: Scope }) {
  const { me } = useApp();
  const current = useAsync(() => read(scope), [scope.kind, scope.name]);
  const [text, setText] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [dialog, confirm] = useConfirm();
  if (current.error) return <ErrorBox error={current.error} />;
  if (!current.data) return <Loading what="the config" />;
  const before = pretty(current.data);
  const edited = text ?? before;
  const save = async () => {
    setError(undefined);
    let parsed: unknown;
    try {
      parsed = JSON.parse(edited);
    } catch {
      return setError('The config is not valid JSON.');
    }
    if (!Array.isArray(parsed)) return setError('The config must be a JSON array of plugin items.');
    const diff = diffLines(before, pretty(parsed));
    const ok = await confirm({
      title: 'Review the change',
      body: (
        <pre class="diff" data-testid="config-diff">
          {diff.map((l, i) => (
            <span key={i} class={`diff-${l.kind}`}>
              {l.kind === 'add' ? '+ ' : l.kind === 'del' ? '- ' : '  '}
              {l.text}
              {'\n'}
            </span>
          ))}
        </pre>
      ),
      confirm: 'Save',
    });
    if (!ok) return;
    try {
      await write(scope, parsed);
      setText(undefined);
      setNotice('Saved. Agents get it at their next connection, or now with a config task.');
      current.reload();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <section class="card">
      <h2>{scope.kind === 'default' ? 'Default config' : `${scope.kind} ${scope.name}`}</h2>
      <textarea
        class="code"
        aria-label="config items (JSON)"
        rows={16}
        readOnly={!canWrite(me)}
        value={edited}
        onInput={(e) => setText(e.currentTarget.value)}
      />
      <ErrorBox error={error} />
      {notice ? <p class="notice">{notice}</p> : null}
      {canWrite(me) ? (
        <button type="button" class="primary" disabled={edited === before} onClick={() => void save()}>
          Review and save…
        </button>
      ) : null}
      {dialog}
    </section>
  );
}

export function ConfigsPage() {
  const [kind, setKind] = useState<Scope['kind']>('default');
  const [name, setName] = useState('');
  const [scope, setScope] = useState<Scope>({ kind: 'default', name: '' });
  return (
    <>
      <h1>Configs</h1>
      <p class="muted">
        An agent's config is the default, then each of its tags' overrides, then its own. An item with only a
        name removes that plugin.
      </p>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setScope({ kind, name: name.trim() });
        }}
      >
        <Field label="Scope">
          <select value={kind} onChange={(e) => setKind(e.currentTarget.value as Scope['kind'])}>
            <option value="default">default</option>
            <option value="tag">tag</option>
            <option value="agent">agent</option>
          </select>
        </Field>
        {kind !== 'default' ? (
          <Field label={kind === 'tag' ? 'Tag' : 'Agent ID'}>
            <input value={name} required onInput={(e) => setName(e.currentTarget.value)} />
          </Field>
        ) : null}
        <button type="submit">Open</button>
      </form>
      <Editor key={`${scope.kind}/${scope.name}`} scope={scope} />
    </>
  );
}
