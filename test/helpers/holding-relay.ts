/**
 * A TCP relay between agents and a gateway that can hold back what the gateway sends (a slow or
 * distant return path): while held, bytes from the gateway are queued, not delivered, so an agent
 * keeps writing without seeing the gateway's status, GOAWAY or WINDOW_UPDATEs, as an agent 100 ms
 * away does. TLS passes through untouched (the relay sees only ciphertext).
 */
import net from 'node:net';
import type { TestContext } from 'node:test';

export interface HoldingRelay {
  /** Where agents connect instead of the gateway. */
  address: { host: string; port: number };
  /** From now on, bytes from the gateway are queued. */
  hold(): void;
  /** Delivers what was queued, in order (including the gateway's close), and stops holding. */
  release(): void;
  /** Drops every connection: TCP RST to the gateway (an agent host that went away). */
  reset(): void;
}

interface Pair {
  agent: net.Socket;
  gateway: net.Socket;
  queued: Array<Buffer | 'end'>;
}

export async function startHoldingRelay(
  t: TestContext,
  target: { host: string; port: number },
): Promise<HoldingRelay> {
  let holding = false;
  const pairs = new Set<Pair>();
  const deliver = (p: Pair, item: Buffer | 'end') => {
    if (item === 'end') p.agent.end();
    else p.agent.write(item);
  };
  const server = net.createServer((agent) => {
    const gateway = net.connect(target.port, target.host);
    const pair: Pair = { agent, gateway, queued: [] };
    pairs.add(pair);
    const fromGateway = (item: Buffer | 'end') => {
      if (holding || pair.queued.length > 0) pair.queued.push(item);
      else deliver(pair, item);
    };
    gateway.on('data', (d: Buffer) => fromGateway(d));
    gateway.on('end', () => fromGateway('end'));
    agent.on('data', (d: Buffer) => gateway.write(d));
    agent.on('end', () => gateway.end());
    const drop = () => {
      pairs.delete(pair);
      agent.destroy();
      gateway.destroy();
    };
    // A reset on either side ends the pair; a held return path is dropped with it (the agent
    // never sees it, like a connection that dies in transit).
    agent.on('error', drop);
    gateway.on('error', () => (pair.queued.length > 0 ? pair.queued.push('end') : drop()));
    agent.on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const p of pairs) p.agent.destroy();
    server.close();
  });
  return {
    address: { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port },
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const p of pairs) {
        const q = p.queued;
        p.queued = [];
        for (const item of q) deliver(p, item);
      }
    },
    reset() {
      for (const p of pairs) {
        pairs.delete(p);
        p.gateway.resetAndDestroy();
        p.agent.resetAndDestroy();
      }
    },
  };
}
