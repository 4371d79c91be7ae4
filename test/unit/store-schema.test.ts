import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type KeyAttribute,
  TABLE_KEYS,
  TABLES,
  type TableDef,
  tableName,
  toCreateTableInput,
} from '../../platform/store/schema.js';

const defs = Object.entries(TABLES) as Array<[string, TableDef]>;

test('the project tables are all defined (manager and Terraform build on them)', () => {
  assert.deepEqual(
    [...TABLE_KEYS].sort(),
    [
      'agents',
      'apikeys',
      'audit',
      'chunks',
      'configs',
      'connections',
      'registry',
      'subtasks',
      'tags',
      'tasks',
      'users',
    ].sort(),
  );
});

test('every table has a typed partition key, on-demand billing and an access note', () => {
  for (const [key, def] of defs) {
    assert.match(def.pk.name, /^[a-zA-Z][a-zA-Z0-9]*$/, `${key} pk`);
    assert.ok(['S', 'N', 'B'].includes(def.pk.type), `${key} pk type`);
    if (def.sk) assert.ok(['S', 'N', 'B'].includes(def.sk.type), `${key} sk type`);
    assert.equal(def.billing, 'PAY_PER_REQUEST', key);
    assert.ok(def.access.length > 10, `${key} access note`);
    assert.match(def.suffix, /^[a-z][a-z0-9-]*$/, `${key} suffix`);
  }
});

test('names, index names and TTL attributes are consistent', () => {
  const suffixes = defs.map(([, d]) => d.suffix);
  assert.equal(new Set(suffixes).size, suffixes.length, 'table name suffixes are unique');
  const names = defs.map(([k]) => tableName('fleetgate-', k as keyof typeof TABLES));
  assert.equal(new Set(names).size, names.length);
  for (const n of names) {
    assert.ok(n.length >= 3 && n.length <= 255, n);
    assert.match(n, /^[a-zA-Z0-9_.-]+$/, n);
  }
  for (const [key, def] of defs) {
    const ix = def.indexes.map((i) => i.name);
    assert.equal(new Set(ix).size, ix.length, `${key} index names unique`);
    if (def.ttl !== undefined) {
      const keyNames = [def.pk.name, def.sk?.name].filter(Boolean);
      assert.ok(!keyNames.includes(def.ttl), `${key}: the TTL attribute is not a key`);
    }
  }
  assert.equal(TABLES.registry.ttl, 'expiresAt');
  assert.equal(TABLES.audit.ttl, 'expiresAt');
});

test('the keys every table is declared with', () => {
  const k = (a: KeyAttribute | undefined) => a?.name;
  assert.deepEqual([k(TABLES.registry.pk), k(TABLES.registry.sk)], ['name', 'instance']);
  assert.deepEqual([k(TABLES.tags.pk), k(TABLES.tags.sk)], ['tag', 'agentId']);
  assert.deepEqual([k(TABLES.configs.pk), k(TABLES.configs.sk)], ['scope', 'name']);
  assert.deepEqual([k(TABLES.subtasks.pk), k(TABLES.subtasks.sk)], ['taskId', 'agentId']);
  assert.deepEqual([k(TABLES.chunks.pk), k(TABLES.chunks.sk)], ['taskId', 'chunkId']);
  assert.deepEqual([k(TABLES.audit.pk), k(TABLES.audit.sk)], ['day', 'tsId']);
  assert.equal(k(TABLES.agents.pk), 'agentId');
  assert.equal(TABLES.agents.indexes[0]?.pk.name, 'gateway');
  assert.equal(TABLES.tags.indexes[0]?.pk.name, 'agentId');
  assert.equal(TABLES.subtasks.indexes[0]?.pk.name, 'token');
  for (const key of ['tasks', 'users', 'apikeys'] as const)
    assert.equal((TABLES[key] as TableDef).sk, undefined, key);
});

test('toCreateTableInput declares each key attribute once and maps indexes', () => {
  for (const [key, def] of defs) {
    const input = toCreateTableInput(def, 'p-');
    assert.equal(input.TableName, `p-${def.suffix}`);
    assert.equal(input.BillingMode, 'PAY_PER_REQUEST');
    const declared = (input.AttributeDefinitions ?? []).map((a) => a.AttributeName);
    assert.equal(new Set(declared).size, declared.length, `${key}: no attribute declared twice`);
    const used = new Set<string>();
    for (const ks of [
      input.KeySchema ?? [],
      ...(input.GlobalSecondaryIndexes ?? []).map((g) => g.KeySchema ?? []),
    ]) {
      assert.equal(ks[0]?.KeyType, 'HASH');
      if (ks[1]) assert.equal(ks[1].KeyType, 'RANGE');
      for (const e of ks) used.add(e.AttributeName!);
    }
    assert.deepEqual(new Set(declared), used, `${key}: exactly the key attributes are declared`);
    assert.equal(input.GlobalSecondaryIndexes?.length ?? 0, def.indexes.length);
  }
  const subtasks = toCreateTableInput(TABLES.subtasks, '');
  assert.deepEqual(subtasks.GlobalSecondaryIndexes?.[0], {
    IndexName: 'byToken',
    KeySchema: [{ AttributeName: 'token', KeyType: 'HASH' }],
    Projection: { ProjectionType: 'KEYS_ONLY' },
  });
});
