/**
 * Key → partition functions for the `hids_svr` topic, and kafkajs partitioners built on them.
 *
 * - `fnv1a`: what Elkeid's AgentCenter does today (IBM sarama's default `hashPartitioner`):
 *   `partition := int32(fnv.New32a().Sum32(key)) % numPartitions`, negated if negative. Use it
 *   when existing consumers expect Elkeid's placement of agents on partitions.
 * - `murmur2`: Kafka's Java client (`BuiltInPartitioner.partitionForKey`):
 *   `Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions`, the same as kafkajs'
 *   `DefaultPartitioner` (checked in test/unit/kafka-partitioners.test.ts).
 *
 * Both count all partitions of the topic (sarama's hash partitioner "requires consistency",
 * Java's key partitioning ignores availability), so a key's partition never moves while a
 * leader is down. String keys are hashed as their UTF-8 bytes, as both clients do.
 */
import type { ICustomPartitioner, PartitionerArgs } from 'kafkajs';

export type PartitionerKind = 'murmur2' | 'fnv1a';

const FNV32_OFFSET = 0x811c9dc5;
const FNV32_PRIME = 0x01000193;

function keyBytes(key: Buffer | Uint8Array | string): Uint8Array {
  return typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
}

function checkPartitions(partitions: number): void {
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > 0x7fffffff) {
    throw new RangeError(`partitions must be a positive int32, got ${partitions}`);
  }
}

/** FNV-1a, 32 bits (Go's `hash/fnv.New32a`), as an unsigned 32-bit integer. */
export function fnv1a32(bytes: Uint8Array): number {
  let h = FNV32_OFFSET;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, FNV32_PRIME);
  }
  return h >>> 0;
}

/** sarama's default hash partitioner: `int32(fnv1a32(key)) % partitions`, negated if negative. */
export function saramaPartition(key: Buffer | Uint8Array | string, partitions: number): number {
  checkPartitions(partitions);
  // `| 0` is Go's int32() conversion; JS `%` truncates toward zero like Go's.
  const p = (fnv1a32(keyBytes(key)) | 0) % partitions;
  return (p < 0 ? -p : p) | 0; // `| 0` also turns JS's -0 (a negative hash % 1) into 0
}

/**
 * Kafka's `Utils.murmur2` (MurmurHash2, seed 0x9747b28c) as a signed 32-bit integer, with
 * Java's int arithmetic: Math.imul wraps like Java's `*`, `>>>` is Java's `>>>`.
 */
export function murmur2(bytes: Uint8Array): number {
  const length = bytes.length;
  const m = 0x5bd1e995;
  let h = 0x9747b28c ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = bytes[i4]! | (bytes[i4 + 1]! << 8) | (bytes[i4 + 2]! << 16) | (bytes[i4 + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  // Java's `switch (length % 4)` with fall-through, written without fall-through.
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= bytes[tail + 2]! << 16;
  if (rest >= 2) h ^= bytes[tail + 1]! << 8;
  if (rest >= 1) {
    h ^= bytes[tail]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's `Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions`. */
export function murmur2Partition(key: Buffer | Uint8Array | string, partitions: number): number {
  checkPartitions(partitions);
  return (murmur2(keyBytes(key)) & 0x7fffffff) % partitions;
}

/** The key → partition function of a partitioner kind. */
export function partitionFunction(
  kind: PartitionerKind,
): (key: Buffer | Uint8Array | string, partitions: number) => number {
  switch (kind) {
    case 'murmur2':
      return murmur2Partition;
    case 'fnv1a':
      return saramaPartition;
    default:
      throw new TypeError(`unknown partitioner ${String(kind)} (expected 'murmur2' or 'fnv1a')`);
  }
}

/**
 * A kafkajs partitioner (`createPartitioner` of `kafka.producer()`): an explicit
 * `message.partition` wins, a keyed message goes where `kind` puts its key among all the topic's
 * partitions, and a message without key goes round-robin over the partitions that have a leader
 * (kafkajs' DefaultPartitioner behaviour; the gateway always sets the AgentID as key).
 */
export function createPartitioner(kind: PartitionerKind): ICustomPartitioner {
  const partitionOf = partitionFunction(kind);
  return () => {
    const counters = new Map<string, number>();
    return ({ topic, partitionMetadata, message }: PartitionerArgs): number => {
      if (message.partition !== null && message.partition !== undefined) return message.partition;
      const numPartitions = partitionMetadata.length;
      if (message.key !== null && message.key !== undefined) {
        return partitionOf(message.key, numPartitions);
      }
      const next = ((counters.get(topic) ?? Math.floor(Math.random() * 0x7fffffff)) + 1) & 0x7fffffff;
      counters.set(topic, next);
      const available = partitionMetadata.filter((p) => p.leader >= 0);
      const pick = available.length > 0 ? available : partitionMetadata;
      return pick[next % pick.length]!.partitionId;
    };
  };
}
