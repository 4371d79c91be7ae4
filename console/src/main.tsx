/** The console's entry: sign-in, then the shell with navigation, live updates and the pages. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { get, setToken, whenUnauthorized } from './api/client';
import { type LiveMode, type LiveSnapshot, startLive } from './api/live';
import { App, go, isAdmin, type Me, useRoute } from './app-state';
import { AdminPage } from './pages/admin';
import { AgentPage } from './pages/agent';
import { AgentsPage } from './pages/agents';
import { ConfigsPage } from './pages/configs';
import { GatewaysPage } from './pages/gateways';
import { LoginPage } from './pages/login';
import { OverviewPage } from './pages/overview';
import { NewTaskPage, TaskPage, TasksPage } from './pages/tasks';
import './style.css';

function Page({ route }: { route: string[] }) {
  const [a, b, c] = route;
  if (a === 'agents' && b) return <AgentPage id={b} />;
  if (a === 'agents') return <AgentsPage />;
  if (a === 'tasks' && b === 'new') return <NewTaskPage />;
  if (a === 'tasks' && b) return <TaskPage id={b} />;
  if (a === 'tasks') return <TasksPage />;
  if (a === 'configs') return <ConfigsPage />;
  if (a === 'gateways') return <GatewaysPage />;
  if (a === 'admin') return <AdminPage tab={c ?? b ?? 'users'} />;
  return <OverviewPage />;
}

const NAV: Array<[string, string, boolean]> = [
  ['overview', 'Overview', false],
  ['agents', 'Agents', false],
  ['tasks', 'Tasks', false],
  ['configs', 'Configs', false],
  ['gateways', 'Gateways', false],
  ['admin', 'Users & audit', true],
];

function Shell({ me, onSignOut }: { me: Me; onSignOut(): void }) {
  const route = useRoute();
  const [live, setLive] = useState<LiveSnapshot | undefined>(undefined);
  const [mode, setMode] = useState<LiveMode>('connecting');
  useEffect(() => startLive({ snapshot: setLive, mode: setMode, ended: onSignOut }), [onSignOut]);
  const here = route[0] ?? 'overview';
  return (
    <App.Provider value={{ me, live, mode, signOut: onSignOut }}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <strong class="brand">fleetgate</strong>
        <nav aria-label="main">
          {NAV.filter(([, , admin]) => !admin || isAdmin(me)).map(([key, label]) => (
            <a key={key} href={`#/${key}`} aria-current={here === key ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span class={`mode mode-${mode}`} title="how live updates arrive" data-testid="live-mode">
          {mode === 'websocket' ? 'live' : mode}
        </span>
        <span class="who" data-testid="who">
          {me.id} ({me.role})
        </span>
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <main id="main">
        <Page route={route} />
      </main>
    </App.Provider>
  );
}

function Root() {
  const [me, setMe] = useState<Me | undefined>(undefined);
  const [checking, setChecking] = useState(true);
  useEffect(() => {
    whenUnauthorized(() => {
      setToken(undefined);
      setMe(undefined);
    });
    get('/api/fleet/me').then(
      (m) => {
        setMe(m);
        setChecking(false);
      },
      () => setChecking(false),
    );
  }, []);
  const signOut = async () => {
    try {
      await get('/api/v1/user/logout');
    } catch {
      // Ended either way: the token is dropped below.
    }
    setToken(undefined);
    setMe(undefined);
    go('overview');
  };
  if (checking) return <p class="loading">Loading…</p>;
  if (!me) return <LoginPage onSignedIn={setMe} />;
  return <Shell me={me} onSignOut={signOut} />;
}

render(<Root />, document.getElementById('root')!);
