/** Elkeid's filter JSON over agent documents, and Elkeid's config merge (§4.3, §4.5). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ConfigMsg, mergeConfig, parseConfigList } from '../../manager/configs.js';
import { FilterError, matches, parseFilter } from '../../manager/filter.js';

const doc = {
  agent_id: 'a1',
  hostname: 'web-01',
  last_heartbeat_time: 1_700_000_000,
  version: '1.9.1.4',
  tags: ['prod', 'web'],
  intranet_ipv4: ['10.0.0.5', '10.0.1.5'],
  status: 'running',
  plugins: [{ name: 'driver', pversion: '1.0.0.1' }],
};

const f = (key: string, operator: string, value: unknown, extra: object = {}) =>
  parseFilter({
    filter: [{ key, rules: [{ operator, value }], condition: '$and' }],
    condition: '$and',
    ...extra,
  });

test('each operator, on scalars and arrays (MongoDB semantics)', () => {
  const cases: Array<[string, string, unknown, boolean]> = [
    ['hostname', '$eq', 'web-01', true],
    ['hostname', '$ne', 'web-01', false],
    ['tags', '$eq', 'web', true],
    ['tags', '$ne', 'db', true],
    ['tags', '$ne', 'web', false],
    ['tags', '$in', ['db', 'prod'], true],
    ['tags', '$nin', ['db', 'prod'], false],
    ['tags', '$nin', ['db'], true],
    ['last_heartbeat_time', '$gt', 1_699_999_999, true],
    ['last_heartbeat_time', '$gte', 1_700_000_000, true],
    ['last_heartbeat_time', '$lt', 1_700_000_000, false],
    ['last_heartbeat_time', '$lte', 1_700_000_000, true],
    ['last_heartbeat_time', '$gt', '1', false],
    ['intranet_ipv4', '$regex', '^10\\.0\\.1\\.', true],
    ['hostname', '$regex', '^db-', false],
    ['plugins.name', '$eq', 'driver', true],
    ['missing', '$eq', null, true],
    ['missing', '$ne', null, false],
    ['missing', '$nin', ['x'], true],
  ];
  for (const [key, op, value, want] of cases) {
    assert.equal(matches(f(key, op, value), doc), want, `${key} ${op} ${JSON.stringify(value)}`);
  }
  const d = new Date(1_700_000_000 * 1000);
  const local = (x: Date) =>
    `${x.getFullYear()}-${String(x.getMonth() + 1).padStart(2, '0')}-${String(x.getDate()).padStart(2, '0')} ` +
    `${String(x.getHours()).padStart(2, '0')}:${String(x.getMinutes()).padStart(2, '0')}`;
  const start = local(new Date(d.getTime() - 120_000));
  const end = local(new Date(d.getTime() + 120_000));
  assert.equal(matches(f('last_heartbeat_time', '$time', { start, end }), doc), true);
  assert.equal(matches(f('last_heartbeat_time', '$time', { start: end, end: '' }), doc), false);
});

test('conditions $and, $or, $nor at both levels; empty filter matches all', () => {
  const two = (cond: string, inner = '$and') =>
    parseFilter({
      filter: [
        { key: 'hostname', rules: [{ operator: '$eq', value: 'web-01' }], condition: inner },
        {
          key: 'version',
          rules: [
            { operator: '$eq', value: '0' },
            { operator: '$regex', value: '^1\\.9' },
          ],
          condition: inner,
        },
      ],
      condition: cond,
    });
  assert.equal(matches(two('$and'), doc), false);
  assert.equal(matches(two('$and', '$or'), doc), true);
  assert.equal(matches(two('$or'), doc), true);
  assert.equal(matches(two('$nor'), doc), false);
  assert.equal(matches(parseFilter({}), doc), true);
  assert.equal(matches(parseFilter(undefined), doc), true);
});

test('bad filters are refused with a reason; non-regular patterns included', () => {
  assert.throws(() => f('x', '$where', 1), FilterError);
  assert.throws(() => f('x', '$in', 'notarray'), FilterError);
  assert.throws(() => f('x', '$regex', '(a)\\1'), /back-references/);
  assert.throws(() => f('x', '$regex', '(?=a)b'), /lookaround/);
  assert.throws(() => f('x', '$regex', 'a{2000}'), /repeat count/);
  assert.throws(() => f('x', '$regex', 'a'.repeat(200)), /longer than/);
  assert.throws(() => f('x', '$time', { start: 'yesterday' }), FilterError);
  assert.throws(() => parseFilter({ filter: [], condition: '$xor' }), /condition/);
  assert.throws(() => parseFilter([]), FilterError);
});

test('catastrophic-backtracking patterns run in linear time; the per-request budget refuses the rest', () => {
  // The report's pattern: exponential for a backtracking engine, a few thousand steps here.
  const filter = f('agent_id', '$regex', '^.{16}(\\w|\\d|[0-9a-f]|-)*!$');
  const id = '0123456789abcdef'.repeat(3);
  const before = filter.budget.steps;
  assert.equal(matches(filter, { agent_id: id }), false);
  const spent = before - filter.budget.steps;
  assert.ok(spent <= (id.length + 1) * 200, `linear: ${spent} steps for ${id.length} characters`);
  // One request's budget is shared by every document it examines: past it, a FilterError.
  filter.budget.steps = spent * 3;
  assert.throws(() => {
    for (let i = 0; i < 10; i++) matches(filter, { agent_id: id });
  }, /too expensive/);
});

test('config merge as Elkeid updateConfig: remove, overwrite non-empty fields, append', () => {
  const sha = (c: string) => c.repeat(64);
  const base: ConfigMsg[] = parseConfigList(
    [
      {
        name: 'driver',
        version: '1.0',
        sha256: sha('a'),
        download_url: ['https://x/d'],
        type: 'tar.gz',
        detail: 'd',
      },
      { name: 'collector', version: '1.0', sha256: sha('b'), download_url: ['https://x/c'] },
    ],
    { full: true },
  );
  const delta = parseConfigList(
    [
      { name: 'driver', version: '2.0', sha256: sha('c') },
      { name: 'collector' },
      { name: 'scanner', version: '3', sha256: sha('d'), download_url: ['http://y/s'] },
    ],
    { full: false },
  );
  const merged = mergeConfig(base, delta);
  assert.deepEqual(
    merged.map((c) => [c.name, c.version, c.sha256[0], c.download_url[0], c.type, c.detail]),
    [
      ['driver', '2.0', 'c', 'https://x/d', 'tar.gz', 'd'],
      ['scanner', '3', 'd', 'http://y/s', '', ''],
    ],
  );
  assert.equal(base[0]!.version, '1.0', 'inputs untouched');
  assert.throws(
    () => parseConfigList([{ name: '../evil', version: '1' }], { full: false }),
    /name must match/,
  );
  assert.throws(
    () =>
      parseConfigList([{ name: 'p', version: '1', sha256: sha('a'), download_url: ['file:///etc/passwd'] }], {
        full: true,
      }),
    /http/,
  );
  assert.throws(() => parseConfigList([{ name: 'p', version: '1' }], { full: true }), /required/);
  assert.throws(() => parseConfigList([{ name: 'p' }, { name: 'p' }], { full: false }), /twice/);
});
