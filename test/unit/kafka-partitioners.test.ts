/**
 * Key → partition functions against vectors from the reference implementations:
 * - murmur2: printed by Kafka 4.4.0's own `org.apache.kafka.common.utils.Utils.murmur2` (run from
 *   the jars in infra/local/cache/kafka/ on 1,012 keys, all equal; the first six are also the
 *   vectors of Kafka's UtilsTest.testMurmur2), and kafkajs' DefaultPartitioner must agree.
 * - fnv1a: FNV-1a-32 reference values, and partitions printed by IBM sarama v1.46.3's own
 *   `NewHashPartitioner` (Elkeid's partitioner) for the same keys and 1, 3, 4, 7, 64, 1000
 *   partitions (all 6,072 equal).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { PartitionerArgs, PartitionMetadata } from 'kafkajs';
import kafkajs from 'kafkajs';
import {
  createPartitioner,
  fnv1a32,
  murmur2,
  murmur2Partition,
  partitionFunction,
  saramaPartition,
} from '../../workers/kafka/partitioners.js';

const { Partitioners } = kafkajs;

/** [key, Utils.murmur2(key UTF-8 bytes)] from the Java client. */
const MURMUR2_JAVA: Array<[string, number]> = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
  ['', 275646681],
  ['a', -1563381124],
  ['ab', 316155434],
  ['7ba5cc8e-4ac1-4bbb-9c0d-8f1f3c6f0f7a', -896002397],
  ['héllo wörld ✓', -1290846696],
  ['0123456789abcdef0123456789abcdef01234567', -1651153811],
  ['dHgTOzJUzLACBCR/WvRziusZfk', 2007783777],
  ['d6534206-373e-4ab5-ae2b-5841e2ac58fdé✓', 1303581071],
  ['nS2RWIa2T6O99kZqwDkgZrv2xcxRY8mq4', -1085441653],
];

/** [key, FNV-1a-32, sarama partition for 1, 3, 4, 7, 64, 1000 partitions] from sarama v1.46.3. */
const SARAMA_PARTITIONS = [1, 3, 4, 7, 64, 1000];
const SARAMA: Array<[string, number, number[]]> = [
  ['', 0x811c9dc5, [0, 0, 3, 2, 59, 35]],
  ['a', 0xe40c292c, [0, 0, 0, 6, 20, 76]],
  ['foobar', 0xbf9cf968, [0, 0, 0, 4, 24, 576]],
  ['21', 0x8cf297ec, [0, 0, 0, 3, 20, 452]],
  ['abc', 0x1a47e90b, [0, 2, 3, 5, 11, 331]],
  ['a-little-bit-long-string', 0xdda30828, [0, 1, 0, 1, 24, 104]],
  ['7ba5cc8e-4ac1-4bbb-9c0d-8f1f3c6f0f7a', 0x57afb64d, [0, 2, 1, 3, 13, 261]],
  ['héllo wörld ✓', 0x626ef519, [0, 1, 1, 0, 25, 873]],
  ['0123456789abcdef0123456789abcdef01234567', 0xc660d80d, [0, 0, 3, 4, 51, 763]],
];

function metadata(n: number, leader = 1): PartitionMetadata[] {
  return Array.from({ length: n }, (_, partitionId) => ({
    partitionErrorCode: 0,
    partitionId,
    leader,
    replicas: [1],
    isr: [1],
    offlineReplicas: [],
  }));
}

function args(key: string | Buffer | null, n: number, partition?: number): PartitionerArgs {
  return {
    topic: 't',
    partitionMetadata: metadata(n),
    message: { key, value: null, ...(partition === undefined ? {} : { partition }) },
  };
}

describe('FNV-1a-32 and the sarama hash partitioner', () => {
  test('FNV-1a-32 reference values', () => {
    assert.equal(fnv1a32(Buffer.from('')), 0x811c9dc5);
    assert.equal(fnv1a32(Buffer.from('a')), 0xe40c292c);
    assert.equal(fnv1a32(Buffer.from('foobar')), 0xbf9cf968);
  });

  test('partitions equal sarama v1.46.3 NewHashPartitioner, negative hashes included', () => {
    let negative = 0;
    for (const [key, hash, partitions] of SARAMA) {
      assert.equal(fnv1a32(Buffer.from(key)), hash, key);
      if ((hash | 0) < 0) negative++;
      SARAMA_PARTITIONS.forEach((n, i) => {
        assert.equal(saramaPartition(key, n), partitions[i], `${JSON.stringify(key)} over ${n}`);
        assert.equal(saramaPartition(Buffer.from(key), n), partitions[i]);
      });
    }
    assert.ok(negative >= 3, 'the vectors include int32-negative hashes (the negation branch)');
  });
});

describe('murmur2 (Kafka Java client)', () => {
  test('equals Utils.murmur2 of the Java client', () => {
    for (const [key, hash] of MURMUR2_JAVA) {
      assert.equal(murmur2(Buffer.from(key)), hash, key);
      assert.equal(murmur2Partition(key, 0x7fffffff), (hash & 0x7fffffff) % 0x7fffffff);
    }
  });

  test('partition = toPositive(murmur2) % n, and equal to kafkajs DefaultPartitioner', () => {
    const kafkajsDefault = Partitioners.DefaultPartitioner();
    const keys = [...MURMUR2_JAVA.map(([k]) => k), ...Array.from({ length: 2000 }, () => randomUUID())];
    for (const key of keys) {
      for (const n of [1, 2, 3, 4, 7, 12, 64, 1000]) {
        const p = murmur2Partition(key, n);
        assert.equal(p, (murmur2(Buffer.from(key)) & 0x7fffffff) % n);
        assert.equal(kafkajsDefault(args(key, n)), p, `${key} over ${n}`);
      }
    }
  });
});

describe('kafkajs partitioners', () => {
  test('keyed messages go where the partition function says, for string and Buffer keys', () => {
    for (const kind of ['murmur2', 'fnv1a'] as const) {
      const part = createPartitioner(kind)();
      const fn = partitionFunction(kind);
      for (let i = 0; i < 500; i++) {
        const key = randomUUID();
        assert.equal(part(args(key, 4)), fn(key, 4));
        assert.equal(part(args(Buffer.from(key), 4)), fn(key, 4));
      }
    }
  });

  test('an explicit partition wins; keyless messages go round-robin over partitions with a leader', () => {
    const part = createPartitioner('fnv1a')();
    assert.equal(part(args('abc', 4, 2)), 2);
    const seen = new Set<number>();
    const meta = metadata(4);
    meta[1]!.leader = -1;
    for (let i = 0; i < 12; i++) {
      seen.add(part({ topic: 't', partitionMetadata: meta, message: { key: null, value: null } }));
    }
    assert.deepEqual([...seen].sort(), [0, 2, 3]);
  });

  test('a key keeps its partition while its leader is down (all partitions count)', () => {
    const part = createPartitioner('fnv1a')();
    const meta = metadata(4);
    meta[3]!.leader = -1;
    assert.equal(part({ topic: 't', partitionMetadata: meta, message: { key: 'abc', value: null } }), 3);
  });

  test('rejects an unknown kind and a bad partition count', () => {
    assert.throws(() => createPartitioner('crc32' as 'fnv1a'), TypeError);
    assert.throws(() => saramaPartition('a', 0), RangeError);
    assert.throws(() => murmur2Partition('a', 1.5), RangeError);
  });
});

describe('distribution', () => {
  test('10,000 AgentIDs spread evenly over 4 and 12 partitions with both functions', () => {
    const keys = Array.from({ length: 10_000 }, () => randomUUID());
    for (const fn of [murmur2Partition, saramaPartition]) {
      for (const n of [4, 12]) {
        const counts = new Array<number>(n).fill(0);
        for (const k of keys) {
          const p = fn(k, n);
          assert.ok(Number.isInteger(p) && p >= 0 && p < n);
          counts[p]!++;
        }
        const expected = keys.length / n;
        // chi-square with n-1 degrees of freedom; 40 is far beyond the 0.999 quantile for 11 dof (31.3)
        const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
        assert.ok(chi2 < 40, `${fn.name} over ${n}: counts ${counts.join(',')} chi2 ${chi2.toFixed(1)}`);
      }
    }
  });

  test('the two functions place keys differently (the choice matters to consumers)', () => {
    const keys = Array.from({ length: 1000 }, () => randomUUID());
    const differ = keys.filter((k) => murmur2Partition(k, 4) !== saramaPartition(k, 4)).length;
    assert.ok(differ > 600, `${differ} of 1000 differ`);
  });
});
