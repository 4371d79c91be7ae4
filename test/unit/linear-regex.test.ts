/**
 * The linear-time `$regex` engine answers as JavaScript's RegExp on the language it accepts, in
 * work proportional to input length × pattern size, and refuses what is not regular.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  compileLinearRegex,
  MAX_STEPS_PER_TEST,
  RegexBudgetError,
  RegexError,
} from '../../manager/linear-regex.js';

const unlimited = () => ({ steps: Number.MAX_SAFE_INTEGER });

const PATTERNS = [
  '^10\\.0\\.1\\.',
  '^db-',
  'web|db',
  '^(a|b)*c$',
  'x{2,3}y',
  'x{2}',
  'x{2,}',
  '[^a-c]+$',
  '\\bfoo\\b',
  '\\Bo',
  '^\\d{1,3}(\\.\\d{1,3}){3}$',
  '\\s\\S\\w\\W',
  '(?:ab)+?c',
  '(?<g>a|)b',
  '[\\d\\-x]',
  'a.c',
  '^$',
  '',
  '(a*)*b',
  '(a|aa)+$',
  '[]a',
  '[^]',
  'a{,2}',
  '\\x41\\u0042',
  '[a\\]]+',
  '\\.\\*\\+\\?\\(\\)\\[\\{\\}\\|\\^\\$\\/',
];

test('same answers as RegExp on fixed patterns and random inputs', () => {
  for (const p of PATTERNS) {
    const ours = compileLinearRegex(p);
    const native = new RegExp(p);
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'abcxy01. -\n_fooA]B{},'), maxLength: 24 }), (s) => {
        assert.equal(ours.test(s, unlimited()), native.test(s), `/${p}/ on ${JSON.stringify(s)}`);
      }),
      { numRuns: 300 },
    );
  }
});

test('same answers as RegExp on random patterns of the supported language', () => {
  const atom = fc.oneof(
    fc.constantFrom('a', 'b', '.', '\\d', '\\w', '[ab]', '[^a]', '\\b', '^', '$'),
    fc.constantFrom('x', '-'),
  );
  const quant = fc.constantFrom('', '', '*', '+', '?', '{1,2}', '{2}', '*?');
  const piece = fc.tuple(atom, quant).map(([a, q]) => (a === '\\b' || a === '^' || a === '$' ? a : a + q));
  const pattern = fc
    .array(
      fc.oneof(
        piece,
        fc.array(piece, { minLength: 1, maxLength: 3 }).map((ps) => `(${ps.join('')})*`),
      ),
      {
        maxLength: 5,
      },
    )
    .chain((parts) => fc.constantFrom(parts.join(''), `${parts.join('')}|a`));
  fc.assert(
    fc.property(pattern, fc.string({ unit: fc.constantFrom(...'ab1x- '), maxLength: 12 }), (p, s) => {
      assert.equal(compileLinearRegex(p).test(s, unlimited()), new RegExp(p).test(s), `/${p}/ on ${s}`);
    }),
    { numRuns: 2000 },
  );
});

test('work is linear: the report’s pattern and classic ReDoS patterns', () => {
  for (const p of ['^.{16}(\\w|\\d|[0-9a-f]|-)*!$', '(a+)+$', '(a|aa)*b', '(x+x+)+y', '(\\w+\\s?)*$']) {
    const re = compileLinearRegex(p);
    for (const n of [100, 1000, 10_000]) {
      const budget = unlimited();
      const input = 'a'.repeat(n);
      re.test(input, budget);
      const spent = Number.MAX_SAFE_INTEGER - budget.steps;
      assert.ok(spent <= (n + 1) * re.size * 2, `/${p}/ on ${n} chars: ${spent} steps`);
    }
  }
});

test('a budget bounds the work: exhausted, it throws instead of running on', () => {
  const re = compileLinearRegex('(a|aa)*b');
  const budget = { steps: 10_000 };
  assert.throws(() => re.test('a'.repeat(10_000), budget), /budget of the request is spent/);
  assert.ok(budget.steps < 0 && budget.steps > -1000, `stopped soon after the budget: ${budget.steps}`);
  // One value too long for the pattern is refused before any work.
  const big = { steps: 1e9 };
  assert.throws(() => re.test('a'.repeat(MAX_STEPS_PER_TEST), big), RegexBudgetError);
  assert.equal(big.steps, 1e9);
});

test('what is not regular, or too large, is refused with the reason', () => {
  for (const [p, why] of [
    ['(a)\\1', /back-references/],
    ['(?<n>a)\\k<n>', /back-references/],
    ['a(?=b)', /lookaround/],
    ['(?<!a)b', /lookaround/],
    ['a{1001}', /repeat count/],
    ['(a{1000}){1000}', /states/],
    ['a**', /nothing to repeat/],
    ['(ab', /unterminated group/],
    ['ab)', /unmatched/],
    ['[ab', /unterminated/],
    ['\\p{L}', /unsupported escape/],
    ['[z-a]', /out of order/],
    ['a{3,2}', /out of order/],
  ] as const) {
    assert.throws(
      () => compileLinearRegex(p),
      (err: unknown) => err instanceof RegexError && why.test(err.message),
      p,
    );
  }
});
