import { useState } from 'preact/hooks';
import { del, get, post, put, type Schemas } from '../api/client';
import { isAdmin, useApp } from '../app-state';
import { Empty, ErrorBox, errorText, Field, Loading, Time, useAsync, useConfirm } from '../ui';
import { Audit } from './audit';

type Role = Schemas['Role'];
const ROLES: Role[] = ['viewer', 'operator', 'admin'];

/** A role picker: the create-user and create-key forms and each user's row use the same one. */
function RoleSelect(props: { value: Role; onChange: (role: Role) => void; label?: string }) {
  return (
    <select
      aria-label={props.label}
      value={props.value}
      onChange={(e) => props.onChange(e.currentTarget.value as Role)}
    >
      {ROLES.map((r) => (
        <option key={r}>{r}</option>
      ))}
    </select>
  );
}

function useAction() {
  const [error, setError] = useState<string | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const run = async (what: () => Promise<unknown>, done: string) => {
    setError(undefined);
    setNotice(undefined);
    try {
      await what();
      setNotice(done);
      return true;
    } catch (err) {
      setError(errorText(err));
      return false;
    }
  };
  const view = (
    <>
      <ErrorBox error={error} />
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
    </>
  );
  return { run, view };
}

function Users() {
  const list = useAsync(() => get('/api/fleet/users'), []);
  const { run, view } = useAction();
  const [dialog, confirm] = useConfirm();
  const [form, setForm] = useState({ username: '', password: '', role: 'viewer' as Role });
  const create = async (e: Event) => {
    e.preventDefault();
    if (await run(() => post('/api/fleet/users', { body: form }), `User ${form.username} created.`)) {
      setForm({ username: '', password: '', role: 'viewer' });
      list.reload();
    }
  };
  const setRole = async (username: string, role: Role) => {
    if (
      await run(
        () => put('/api/fleet/users/{name}/role', { params: { name: username }, body: { role } }),
        `${username} is now ${role}.`,
      )
    )
      list.reload();
  };
  const reset = async (username: string) => {
    const password = prompt(`New password for ${username} (10 to 256 characters):`);
    if (!password) return;
    await run(
      () => put('/api/fleet/users/{name}/password', { params: { name: username }, body: { password } }),
      `Password of ${username} reset; their sessions ended.`,
    );
  };
  const remove = async (username: string) => {
    if (
      !(await confirm({
        title: 'Delete user',
        body: `Delete ${username}? Their sessions end now.`,
        confirm: 'Delete',
        danger: true,
      }))
    )
      return;
    if (
      await run(() => del('/api/fleet/users/{name}', { params: { name: username } }), `${username} deleted.`)
    )
      list.reload();
  };
  return (
    <>
      {view}
      <form class="filters" onSubmit={create}>
        <Field label="User name">
          <input
            required
            value={form.username}
            onInput={(e) => setForm({ ...form, username: e.currentTarget.value })}
          />
        </Field>
        <Field label="Password">
          <input
            required
            type="password"
            autoComplete="new-password"
            minLength={10}
            value={form.password}
            onInput={(e) => setForm({ ...form, password: e.currentTarget.value })}
          />
        </Field>
        <Field label="Role">
          <RoleSelect value={form.role} onChange={(role) => setForm({ ...form, role })} />
        </Field>
        <button type="submit">Create user</button>
      </form>
      <ErrorBox error={list.error} />
      {!list.data ? (
        <Loading what="users" />
      ) : (
        <table>
          <thead>
            <tr>
              <th>User</th>
              <th>Role</th>
              <th>Created</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.data.users.map((u) => (
              <tr key={u.username}>
                <td>{u.username}</td>
                <td>
                  <RoleSelect
                    label={`role of ${u.username}`}
                    value={u.role}
                    onChange={(role) => void setRole(u.username, role)}
                  />
                </td>
                <td>
                  <Time ms={u.createdAt} />
                </td>
                <td class="actions">
                  <button type="button" onClick={() => void reset(u.username)}>
                    Reset password…
                  </button>
                  <button type="button" class="danger" onClick={() => void remove(u.username)}>
                    Delete…
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {dialog}
    </>
  );
}

function Keys() {
  const list = useAsync(() => get('/api/fleet/apikeys'), []);
  const { run, view } = useAction();
  const [dialog, confirm] = useConfirm();
  const [form, setForm] = useState({ name: '', role: 'viewer' as Role });
  const [shown, setShown] = useState<string | undefined>(undefined);
  const create = async (e: Event) => {
    e.preventDefault();
    await run(async () => {
      const r = await post('/api/fleet/apikeys', { body: form });
      setShown(r.key);
      list.reload();
    }, 'Key created: copy it now, it is not shown again.');
  };
  const revoke = async (id: string, name: string) => {
    if (
      !(await confirm({
        title: 'Revoke key',
        body: `Revoke “${name}”? Scripts using it stop working.`,
        confirm: 'Revoke',
        danger: true,
      }))
    )
      return;
    if (await run(() => del('/api/fleet/apikeys/{id}', { params: { id } }), `Key ${name} revoked.`))
      list.reload();
  };
  return (
    <>
      {view}
      {shown ? <pre class="secret">{shown}</pre> : null}
      <form class="filters" onSubmit={create}>
        <Field label="Name">
          <input
            required
            value={form.name}
            onInput={(e) => setForm({ ...form, name: e.currentTarget.value })}
          />
        </Field>
        <Field label="Role">
          <RoleSelect value={form.role} onChange={(role) => setForm({ ...form, role })} />
        </Field>
        <button type="submit">Create key for me</button>
      </form>
      <ErrorBox error={list.error} />
      {!list.data ? (
        <Loading what="API keys" />
      ) : list.data.apikeys.length === 0 ? (
        <Empty>No API keys.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Owner</th>
              <th>Role</th>
              <th>Created</th>
              <th>Last used</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.data.apikeys.map((k) => (
              <tr key={k.keyId}>
                <td>{k.name}</td>
                <td>{k.owner}</td>
                <td>{k.role}</td>
                <td>
                  <Time ms={k.createdAt} />
                </td>
                <td>
                  <Time ms={k.lastUsedAt} />
                </td>
                <td>
                  {k.revokedAt ? (
                    'revoked'
                  ) : (
                    <button type="button" class="danger" onClick={() => void revoke(k.keyId, k.name)}>
                      Revoke…
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {dialog}
    </>
  );
}

export function AdminPage({ tab }: { tab: string }) {
  const { me } = useApp();
  if (!isAdmin(me)) return <ErrorBox error="Users, API keys and the audit log are for admins." />;
  return (
    <>
      <h1>Users, API keys and audit</h1>
      <nav class="tabs" aria-label="admin">
        {(
          [
            ['users', 'Users'],
            ['keys', 'API keys'],
            ['audit', 'Audit log'],
          ] as const
        ).map(([key, label]) => (
          <a key={key} href={`#/admin/${key}`} aria-current={tab === key ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
      {tab === 'keys' ? <Keys /> : tab === 'audit' ? <Audit /> : <Users />}
    </>
  );
}
