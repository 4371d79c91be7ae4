import { useState } from 'preact/hooks';
import { del, post, put, type Schemas } from '../api/client';
import { canWrite, useApp } from '../app-state';
import { Empty, ErrorBox, errorText, Loading, Time, useConfirm } from '../ui';

type Gateway = Schemas['Gateway'];

export function GatewaysPage() {
  const { live, me } = useApp();
  const write = canWrite(me);
  const [error, setError] = useState<string | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [limits, setLimits] = useState<Record<string, string>>({});
  const [dialog, confirm] = useConfirm();
  if (!live) return <Loading what="gateways" />;
  const others = (g: Gateway) => live.gateways.filter((o) => o.alive && o.id !== g.id).length;
  const act = async (what: () => Promise<unknown>, done: string) => {
    setError(undefined);
    try {
      await what();
      setNotice(done);
    } catch (err) {
      setError(errorText(err));
    }
  };
  const setLimit = async (g: Gateway, limit: number) => {
    const moving = Math.max(0, g.connected - limit);
    const ok = await confirm({
      title: limit === 0 ? `Drain ${g.id}` : `Limit ${g.id}`,
      body:
        limit === 0
          ? `${g.connected} agent(s) will be sent away from this gateway to the ${others(g)} other gateway(s), a few per second; it stops taking new agents.`
          : `${moving} of its ${g.connected} agent(s) will move to the other gateways; it takes at most ${limit}.`,
      confirm: limit === 0 ? 'Drain' : 'Set limit',
      danger: limit === 0,
    });
    if (ok) {
      await act(
        () => put('/api/fleet/gateways/{id}/limit', { params: { id: g.id }, body: { limit } }),
        `${g.id}: limit ${limit} set.`,
      );
    }
  };
  const clear = (g: Gateway) =>
    act(() => del('/api/fleet/gateways/{id}/limit', { params: { id: g.id } }), `${g.id}: limit cleared.`);
  const rebalance = async () => {
    setError(undefined);
    try {
      const plan = await post('/api/fleet/gateways/rebalance', { body: { dry_run: true } });
      const ok = await confirm({
        title: 'Rebalance',
        body:
          plan.moved === 0
            ? 'The gateways are even: nothing would move.'
            : `${plan.moved} agent(s) will move: gateways above ${plan.target} connections get that limit for 10 minutes (${plan.gateways
                .filter((g) => g.limit !== null)
                .map((g) => `${g.id} sheds ${g.excess}`)
                .join(', ')}).`,
        confirm: 'Rebalance',
      });
      if (ok && plan.moved > 0) {
        const r = await post('/api/fleet/gateways/rebalance', { body: {} });
        setNotice(`Rebalance: ${r.moved} agent(s) moving.`);
      }
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <>
      <h1>Gateways</h1>
      <ErrorBox error={error} />
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      {write ? (
        <p>
          <button type="button" onClick={() => void rebalance()}>
            Rebalance…
          </button>
        </p>
      ) : null}
      {live.gateways.length === 0 ? (
        <Empty>No gateway has reported yet.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Gateway</th>
              <th class="num">Connections</th>
              <th class="num">Online</th>
              <th class="num">Desired limit</th>
              <th>Last report</th>
              {write ? <th>Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {live.gateways.map((g) => (
              <tr key={g.id} data-testid={`gateway-${g.id}`}>
                <td>
                  {g.id} {g.alive ? '' : <span class="badge bad">silent</span>}
                </td>
                <td class="num" data-testid="gateway-connected">
                  {g.connected}
                </td>
                <td class="num">{g.online}</td>
                <td class="num">
                  {g.desired_limit ?? 'none'}
                  {g.desired_limit_expires_at ? (
                    <>
                      {' '}
                      until <Time ms={g.desired_limit_expires_at} />
                    </>
                  ) : null}
                </td>
                <td>
                  <Time ms={g.updated_at} />
                </td>
                {write ? (
                  <td class="actions">
                    <input
                      aria-label={`limit for ${g.id}`}
                      type="number"
                      min={0}
                      size={6}
                      value={limits[g.id] ?? ''}
                      onInput={(e) => setLimits({ ...limits, [g.id]: e.currentTarget.value })}
                    />
                    <button
                      type="button"
                      disabled={!limits[g.id]}
                      onClick={() => void setLimit(g, Number(limits[g.id]))}
                    >
                      Set limit…
                    </button>
                    <button type="button" class="danger" onClick={() => void setLimit(g, 0)}>
                      Drain…
                    </button>
                    <button type="button" disabled={g.desired_limit === null} onClick={() => void clear(g)}>
                      Clear limit
                    </button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {dialog}
    </>
  );
}
