/**
 * Numbered records, so a run can count loss: every record a simulated agent sends carries, in
 * its Item body, the run's id and the agent's own sequence number (1, 2, 3, … per agent, in the
 * order sent). The gateway carries bodies to Kafka untouched, so reading the topic back tells,
 * per agent, which numbers arrived: missing, duplicated and out-of-order records are exact.
 *
 * The two fields are one more protobuf map entry appended to the body: an Item is a map, and a
 * concatenation of two encoded maps decodes as their union, so nothing of the body is re-encoded.
 */
import { grpc } from '../../proto/gen/elkeid.js';

export const RUN_FIELD = 'fleetgate_sim_run';
export const SEQ_FIELD = 'fleetgate_sim_seq';

/** `body` with the run id and sequence number appended (a new buffer; pooled bodies stay shared). */
export function numberBody(body: Uint8Array | undefined, run: string, seq: number): Uint8Array {
  const tail = grpc.Item.encode({ Fields: { [RUN_FIELD]: run, [SEQ_FIELD]: String(seq) } }).finish();
  if (!body || body.length === 0) return tail;
  const out = new Uint8Array(body.length + tail.length);
  out.set(body, 0);
  out.set(tail, body.length);
  return out;
}

/** The run and sequence number a body carries, or undefined when it is not a numbered one. */
export function bodySequence(body: Uint8Array): { run: string; seq: number } | undefined {
  let fields: Record<string, string>;
  try {
    fields = grpc.Item.decode(body).Fields;
  } catch {
    return undefined;
  }
  const run = fields[RUN_FIELD];
  const seq = Number(fields[SEQ_FIELD]);
  if (run === undefined || !Number.isSafeInteger(seq) || seq < 1) return undefined;
  return { run, seq };
}

export interface SequenceReport {
  /** Records the agents sent (when known: the simulator's count), else the highest numbers seen. */
  sent: number;
  /** Records of the run read back (every copy). */
  stored: number;
  /** Distinct (agent, number) pairs read back. */
  distinct: number;
  /** Sent but never read back. */
  missing: number;
  /** Copies beyond the first. */
  duplicated: number;
  /** First copies that arrived after a higher number of the same agent. */
  outOfOrder: number;
  agents: number;
  /** Up to 20 examples of agents with gaps: `agent: first missing numbers`. */
  gaps: string[];
}

/**
 * Counts one run's records per agent as they are read (in topic order: an agent's records share
 * a partition, so the read order is the stored order).
 */
export class SequenceCheck {
  readonly run: string;
  readonly #agents = new Map<string, { seen: Set<number>; max: number }>();
  #stored = 0;
  #duplicated = 0;
  #outOfOrder = 0;

  constructor(run: string) {
    this.run = run;
  }

  /** Takes one record read back; false when it is not of this run. */
  add(agentId: string, body: Uint8Array): boolean {
    const s = bodySequence(body);
    if (!s || s.run !== this.run) return false;
    let a = this.#agents.get(agentId);
    if (!a) {
      a = { seen: new Set(), max: 0 };
      this.#agents.set(agentId, a);
    }
    this.#stored++;
    if (a.seen.has(s.seq)) {
      this.#duplicated++;
      return true;
    }
    a.seen.add(s.seq);
    if (s.seq < a.max) this.#outOfOrder++;
    else a.max = s.seq;
    return true;
  }

  get stored(): number {
    return this.#stored;
  }

  /** The counts; `sent` is the simulator's count of records sent when known. */
  report(sent?: number): SequenceReport {
    let distinct = 0;
    let highest = 0;
    let gapCount = 0;
    const gaps: string[] = [];
    for (const [agent, a] of this.#agents) {
      distinct += a.seen.size;
      highest += a.max;
      const inside = a.max - a.seen.size;
      gapCount += inside;
      if (inside > 0 && gaps.length < 20) {
        const first: number[] = [];
        for (let n = 1; n <= a.max && first.length < 5; n++) if (!a.seen.has(n)) first.push(n);
        gaps.push(`${agent}: ${first.join(', ')}${inside > first.length ? ', …' : ''}`);
      }
    }
    const total = sent ?? highest;
    return {
      sent: total,
      stored: this.#stored,
      distinct,
      // Gaps inside each agent's range, and (with the sent count) the tails never stored.
      missing: Math.max(gapCount, total - distinct),
      duplicated: this.#duplicated,
      outOfOrder: this.#outOfOrder,
      agents: this.#agents.size,
      gaps,
    };
  }
}
