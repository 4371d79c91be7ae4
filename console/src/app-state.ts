/** What every page may read: the caller, the live snapshot and how it arrives, navigation. */
import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import type { Schemas } from './api/client';
import type { LiveMode, LiveSnapshot } from './api/live';

export type Me = { kind: string; id: string; role: Schemas['Role']; level: number };

export interface AppState {
  me: Me;
  live: LiveSnapshot | undefined;
  mode: LiveMode;
  signOut(): void;
}

export const App = createContext<AppState | undefined>(undefined);

export function useApp(): AppState {
  const s = useContext(App);
  if (!s) throw new Error('useApp outside the signed-in shell');
  return s;
}

export const canWrite = (me: Me) => me.role === 'operator' || me.role === 'admin';
export const isAdmin = (me: Me) => me.role === 'admin';

/** The route is the URL fragment (`#/agents/abc`): a static page, no server-side routing. */
export function useRoute(): string[] {
  const read = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function go(...parts: string[]): void {
  location.hash = `#/${parts.map(encodeURIComponent).join('/')}`;
}

/** Agents picked on the agents page for a new task (kept in memory, not in the URL). */
export const picked: { ids: string[] } = { ids: [] };
