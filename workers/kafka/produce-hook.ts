/**
 * Our Produce request encoder (record-batch.ts) inside kafkajs, which stays the Kafka client:
 * connections, metadata, partitioning, retries, acks and response handling are all kafkajs'.
 *
 * kafkajs has no documented hook for request encoding, so this wraps the Produce entry of its
 * request table (`require('kafkajs/src/protocol/requests').requests.Produce`, looked up by the
 * broker for every produce) for the exact version it was written against, 2.2.4. The wrapper
 * builds kafkajs' own request object and replaces only its `encode` — and only when every
 * message of the request is one of our record-set messages (`RecordSetMessage`), which only our
 * producer creates; any other request (other kafkajs clients in the process: consumers' tools,
 * tests, a plain `producer.send`) is kafkajs' own, untouched. Versions below 3 (pre-v2 message
 * sets) are kafkajs' too.
 *
 * Installing checks the kafkajs version and the shape of the table, then encodes a sample request
 * with both encoders and compares the bytes. On any mismatch it installs nothing and says why;
 * the producer then hands kafkajs plain messages (`decodeRecordSet`) and logs a warning.
 */
import { createRequire } from 'node:module';
import {
  type BatchCodec,
  decodeRecordSet,
  type EncodeContext,
  encodeProduceRequest,
  encodeRecordSet,
  type ProduceArgs,
  type RecordSet,
} from './record-batch.js';

/** The kafkajs version whose Produce encoding record-batch.ts reproduces. */
export const KAFKAJS_VERSION = '2.2.4';

const require = createRequire(import.meta.url);

/**
 * A kafkajs message that stands for a whole record set: the partitioner sees its key once, and
 * the Produce encoder writes the set's records. `value` is null so kafkajs' "message without
 * value" check passes; no kafkajs code reads more than `key`, `partition` and `value` before
 * the encoder.
 */
export class RecordSetMessage {
  readonly value = null;
  readonly key: string | Buffer | null;
  constructor(
    readonly set: RecordSet,
    /** Compress with the codec's synchronous function when it has one. */
    readonly syncCompression: boolean,
  ) {
    this.key = set.key;
  }
}

interface KafkaEncoder {
  buf: Buffer;
  offset: number;
  readonly buffer: Buffer;
}
type BuiltRequest = {
  request: { encode: () => Promise<KafkaEncoder> } & Record<string, unknown>;
  response: unknown;
};
type MakeRequest = (args: ProduceArgs) => BuiltRequest;
interface RequestDefinition {
  versions: string[];
  protocol: (opts: { version: number | string }) => MakeRequest;
  [HOOKED]?: true;
}

const HOOKED = Symbol.for('fleetgate.produceEncoder');

export type HookState = { installed: true } | { installed: false; reason: string };

let state: HookState | undefined;
let installing: Promise<HookState> | undefined;
/** Requests encoded by our encoder and handed to kafkajs' own, in this thread (tests, diagnostics). */
export const produceEncoderStats = { ours: 0, kafkajs: 0, mixed: 0 };

function kafkajsModules() {
  const Encoder = require('kafkajs/src/protocol/encoder') as { prototype: object };
  const compression = require('kafkajs/src/protocol/message/compression') as {
    lookupCodec: (type: number) => BatchCodec | null;
  };
  const table = require('kafkajs/src/protocol/requests') as { requests: Record<string, RequestDefinition> };
  return { Encoder, lookupCodec: compression.lookupCodec, requests: table.requests };
}

/** An Encoder of kafkajs around `buf` (what `request.encode()` must return). */
function encoderAround(EncoderProto: object, buf: Buffer): KafkaEncoder {
  const e = Object.create(EncoderProto) as KafkaEncoder;
  e.buf = buf;
  e.offset = buf.length;
  return e;
}

type Kind = 'sets' | 'plain' | 'mixed';
function kindOf(args: ProduceArgs): Kind {
  let sets = 0;
  let plain = 0;
  for (const t of args.topicData)
    for (const p of t.partitions)
      for (const m of p.messages) {
        if (m instanceof RecordSetMessage) sets++;
        else plain++;
      }
  return plain === 0 && sets > 0 ? 'sets' : sets === 0 ? 'plain' : 'mixed';
}

/** The records of record-set messages as plain kafkajs messages, the rest as they are. */
export function expandMessages(messages: ReadonlyArray<unknown>): unknown[] {
  const out: unknown[] = [];
  for (const m of messages) {
    if (!(m instanceof RecordSetMessage)) {
      out.push(m);
      continue;
    }
    for (const r of decodeRecordSet(m.set)) out.push({ key: r.key, value: r.value, headers: r.headers });
  }
  return out;
}

function expandArgs(args: ProduceArgs): ProduceArgs {
  return {
    ...args,
    topicData: args.topicData.map((t) => ({
      ...t,
      partitions: t.partitions.map((p) => ({ ...p, messages: expandMessages(p.messages) })),
    })),
  };
}

const setOf = (m: unknown) => (m as RecordSetMessage).set;

/** The Produce definition with our encoder for record-set requests (v3+), kafkajs' for the rest. */
function wrap(
  original: RequestDefinition,
  ctx: Omit<EncodeContext, 'sync'>,
  EncoderProto: object,
): RequestDefinition {
  return {
    versions: original.versions,
    [HOOKED]: true,
    protocol: ({ version }) => {
      const make = original.protocol({ version });
      if (Number(version) < 3) return make;
      return (args) => {
        const kind = kindOf(args);
        if (kind === 'plain') {
          produceEncoderStats.kafkajs++;
          return make(args);
        }
        if (kind === 'mixed') {
          produceEncoderStats.mixed++;
          return make(expandArgs(args));
        }
        produceEncoderStats.ours++;
        const built = make(args);
        const first = args.topicData[0]?.partitions[0]?.messages[0] as RecordSetMessage;
        const sync = first.syncCompression;
        return {
          ...built,
          request: {
            ...built.request,
            encode: async () =>
              encoderAround(EncoderProto, await encodeProduceRequest(args, setOf, { ...ctx, sync })),
          },
        };
      };
    },
  };
}

/** Encodes a small request with kafkajs and with ours (same timestamp) and compares the bytes. */
async function selfCheck(
  original: RequestDefinition,
  ctx: Omit<EncodeContext, 'sync'>,
): Promise<string | undefined> {
  const records = [
    {
      key: 'agent-ä',
      value: Buffer.from([0, 1, 2, 255]),
      headers: { 'fleetgate-gw': 'gw/1', 'fleetgate-seq': '1' },
    },
    { key: 'agent-ä', value: null, headers: { a: ['x', Buffer.from('y')] } },
  ];
  const set = encodeRecordSet('agent-ä', records);
  const args = (messages: unknown[]): ProduceArgs => ({
    acks: -1,
    timeout: 1000,
    compression: 0,
    transactionalId: undefined,
    producerId: -1,
    producerEpoch: 0,
    topicData: [{ topic: 'hids_svr', partitions: [{ partition: 3, firstSequence: 0, messages }] }],
  });
  const theirs = (await original.protocol({ version: 7 })(args(records)).request.encode()).buffer;
  // Request: txid (2) acks (2) timeout (4) topics (4) topic (2+8) partitions (4) partition (4)
  // size (4), then the batch: FirstTimestamp at 27 within it.
  const at = 2 + 2 + 4 + 4 + 2 + 8 + 4 + 4 + 4 + 27;
  if (theirs.length < at + 8) return 'kafkajs encoded a shorter request than expected';
  const timestamp = Number(theirs.readBigInt64BE(at));
  const ours = await encodeProduceRequest(args([new RecordSetMessage(set, false)]), setOf, {
    ...ctx,
    now: () => timestamp,
  });
  return ours.equals(theirs) ? undefined : 'a sample Produce request differs from what kafkajs encodes';
}

/** Why a kafkajs version does not take our encoder (any but the exact one it reproduces). */
export function versionMismatch(version: unknown): string | undefined {
  return version === KAFKAJS_VERSION ? undefined : `kafkajs ${String(version)} is not ${KAFKAJS_VERSION}`;
}

/**
 * Puts our encoder into kafkajs (once per thread; later calls return the first outcome). Never
 * throws: any problem leaves kafkajs as it is and is reported in the result.
 */
export function installProduceEncoder(): Promise<HookState> {
  installing ??= (async (): Promise<HookState> => {
    try {
      const mismatch = versionMismatch((require('kafkajs/package.json') as { version?: unknown }).version);
      if (mismatch) return { installed: false, reason: mismatch };
      const { Encoder, lookupCodec, requests } = kafkajsModules();
      const original = requests.Produce;
      if (!original || typeof original.protocol !== 'function' || !Array.isArray(original.versions))
        return { installed: false, reason: 'kafkajs has no Produce request definition where expected' };
      if (original[HOOKED]) return { installed: true };
      if (!['3', '4', '5', '6', '7'].every((v) => original.versions.includes(v)))
        return { installed: false, reason: `unexpected Produce versions ${original.versions.join(',')}` };
      const ctx = {
        lookupCodec,
        encoderOf: (buffer: Buffer) => encoderAround(Encoder.prototype, buffer),
      };
      const problem = await selfCheck(original, ctx);
      if (problem) return { installed: false, reason: problem };
      requests.Produce = wrap(original, ctx, Encoder.prototype);
      return { installed: true };
    } catch (err) {
      return { installed: false, reason: `installing failed: ${(err as Error).message}` };
    }
  })().then((s) => {
    state = s;
    return s;
  });
  return installing;
}

/** The outcome of `installProduceEncoder` so far (undefined before it settled). */
export function produceEncoderState(): HookState | undefined {
  return state;
}
