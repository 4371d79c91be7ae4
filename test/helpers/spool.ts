/** Spool directories written as a gateway process writes them, for tests of what reads them back. */
import { Spool } from '../../gateway/ingest/spool.js';
import { grpc } from '../../proto/gen/elkeid.js';
import { encodeEnvelope } from '../../workers/spool-entry.js';
import type { ConsumedRecord } from './kafka.js';

/**
 * Appends `count` records of agent `key` to the spool in `dir` with the spool's own writer (small
 * segments, several appends), as gateway instance `gw` accepted them with seqs 1..count; returns
 * their identities `gw/seq` (the Kafka headers fleetgate-gw and fleetgate-seq).
 */
export async function writeSpoolRecords(
  dir: string,
  gw: string,
  key: string,
  count: number,
): Promise<string[]> {
  const spool = await Spool.open(dir, { segmentBytes: 4096, fsyncIntervalMs: 0 });
  try {
    for (let seq = 1; seq <= count; seq += 25) {
      const batch = Array.from({ length: Math.min(25, count - seq + 1) }, (_, i) => {
        const mq = grpc.MQData.encode({
          DataType: 5001,
          AgentID: key,
          Body: Buffer.from(`orphan ${seq + i}`),
        });
        return { key, value: encodeEnvelope({ gw, seq: seq + i, value: mq.finish() }) };
      });
      await spool.append(batch);
    }
  } finally {
    await spool.close();
  }
  return Array.from({ length: count }, (_, i) => `${gw}/${i + 1}`);
}

/** The fleetgate-seq headers of `gw`'s records in the order the topic holds them (one key: one partition). */
export function seqsOf(records: ConsumedRecord[], gw: string): number[] {
  return records
    .filter((r) => r.headers['fleetgate-gw'] === gw)
    .sort((a, b) => Number(a.offset) - Number(b.offset))
    .map((r) => Number(r.headers['fleetgate-seq']));
}
