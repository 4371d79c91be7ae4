/** Small building blocks every page uses: async data, times, states, confirmations, charts. */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Async<T> {
  data: T | undefined;
  error: string | undefined;
  loading: boolean;
  reload(): void;
}

/** Runs `load` when `deps` change; keeps the last data while reloading. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): Async<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    load().then(
      (d) => {
        if (!live) return;
        setData(d);
        setError(undefined);
        setLoading(false);
      },
      (e: unknown) => {
        if (!live) return;
        setError(e instanceof Error ? e.message : String(e));
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return { data, error, loading, reload: useCallback(() => setN((x) => x + 1), []) };
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const UNITS: Array<[number, string]> = [
  [86_400_000, 'd'],
  [3_600_000, 'h'],
  [60_000, 'min'],
  [1000, 's'],
];

export function age(ms: number, now = Date.now()): string {
  const d = now - ms;
  if (Math.abs(d) < 1000) return 'just now';
  for (const [unit, name] of UNITS) {
    if (Math.abs(d) >= unit) {
      const n = Math.floor(Math.abs(d) / unit);
      return d >= 0 ? `${n} ${name} ago` : `in ${n} ${name}`;
    }
  }
  return 'just now';
}

/** A moment in the viewer's local time, with its relative age. `ms` unix milliseconds. */
export function Time({ ms }: { ms: number | null | undefined }) {
  if (!ms) return <span class="muted">—</span>;
  const d = new Date(ms);
  return (
    <time dateTime={d.toISOString()} title={d.toLocaleString()}>
      {d.toLocaleString()} <span class="muted">({age(ms)})</span>
    </time>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="loading" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function ErrorBox({ error }: { error: string | undefined }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error}
    </p>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

export function Progress({ done, failed, total }: { done: number; failed: number; total: number }) {
  const pct = (n: number) => (total > 0 ? (100 * n) / total : 0);
  const label = `${Math.round(pct(done))} % succeeded, ${Math.round(pct(failed))} % failed of ${total}`;
  return (
    <div
      class="progress"
      role="progressbar"
      aria-valuenow={Math.round(pct(done))}
      aria-label={label}
      title={label}
    >
      <span class="ok" style={{ width: `${pct(done)}%` }} />
      <span class="bad" style={{ width: `${pct(failed)}%` }} />
    </div>
  );
}

export interface ConfirmRequest {
  title: string;
  body: ComponentChildren;
  confirm: string;
  danger?: boolean;
}

/** A modal confirmation (native <dialog>: focus trapped, Esc cancels). */
export function useConfirm(): [ComponentChildren, (r: ConfirmRequest) => Promise<boolean>] {
  const ref = useRef<HTMLDialogElement>(null);
  const [req, setReq] = useState<ConfirmRequest | undefined>(undefined);
  const resolver = useRef<(ok: boolean) => void>(() => undefined);
  useEffect(() => {
    if (req && ref.current && !ref.current.open) ref.current.showModal();
  }, [req]);
  const close = (ok: boolean) => {
    ref.current?.close();
    setReq(undefined);
    resolver.current(ok);
  };
  const element = req ? (
    <dialog ref={ref} class="confirm" onCancel={() => close(false)} aria-labelledby="confirm-title">
      <h2 id="confirm-title">{req.title}</h2>
      <div>{req.body}</div>
      <div class="actions">
        <button type="button" onClick={() => close(false)}>
          Cancel
        </button>
        <button type="button" class={req.danger ? 'danger' : 'primary'} onClick={() => close(true)}>
          {req.confirm}
        </button>
      </div>
    </dialog>
  ) : null;
  const ask = (r: ConfirmRequest) =>
    new Promise<boolean>((resolve) => {
      resolver.current = resolve;
      setReq(r);
    });
  return [element, ask];
}

/** A line chart of `values` over the last samples, in SVG (no chart library needed for this). */
export function Sparkline({ label, values }: { label: string; values: number[] }) {
  const w = 300;
  const h = 60;
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? w / (values.length - 1) : w;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(h - (v / max) * (h - 4) - 2).toFixed(1)}`);
  const last = values[values.length - 1];
  return (
    <figure class="spark">
      <figcaption>
        {label}: <strong>{last ?? '—'}</strong> <span class="muted">(max {max})</span>
      </figcaption>
      <svg
        viewBox={`0 0 ${w} ${h}`}
        role="img"
        aria-label={`${label} over the last hour`}
        preserveAspectRatio="none"
      >
        {values.length > 1 ? <polyline points={points.join(' ')} /> : null}
      </svg>
    </figure>
  );
}

/** A labelled control: the label wraps the control so the two are associated. */
export function Field({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    // biome-ignore lint/a11y/noLabelWithoutControl: the control is the child passed in
    <label class="field">
      <span>{label}</span>
      {children}
    </label>
  );
}
