import { useState } from 'preact/hooks';
import { get, post, setToken } from '../api/client';
import type { Me } from '../app-state';
import { ErrorBox, errorText, Field } from '../ui';

export function LoginPage({ onSignedIn }: { onSignedIn(me: Me): void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const r = (await post('/api/v1/user/login', { body: { username, password } })) as { token: string };
      setToken(r.token);
      onSignedIn(await get('/api/fleet/me'));
    } catch (err) {
      setError(errorText(err) === 'auth failed' ? 'Wrong user name or password.' : errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login" id="main">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">fleetgate</h1>
        <p class="muted">Sign in with your manager account.</p>
        <Field label="User name">
          <input
            name="username"
            autoComplete="username"
            required
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
          />
        </Field>
        <Field label="Password">
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </Field>
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
