/**
 * The `$regex` of manager filters, matched in linear time. Any user with the viewer role sends
 * these, and they run in the manager's process: a backtracking engine (JavaScript's RegExp) can
 * take exponential time on a pattern as small as `^.{16}(\w|\d|[0-9a-f]|-)*!$`, freezing every
 * request and every agent stream of the process. So patterns are compiled here to a Thompson NFA
 * and run as a Pike VM (one pass over the input, each NFA state at most once per position): the
 * work is at most (input length + 1) × program size, and every step is counted against the
 * caller's budget, so one request's total work is bounded too.
 *
 * The language is the regular subset of JavaScript's syntax (RE2's semantics): literals, `.`,
 * classes `[a-z\d]` and `[^…]`, `\d \w \s \D \W \S`, `\b \B`, `^ $` (input start/end), groups
 * `(…)`, `(?:…)`, `(?<name>…)`, alternation, and `* + ? {n} {n,} {n,m}` (greedy or lazy: the
 * same for a yes/no match). Back-references and lookaround are not regular and are refused.
 * Matching is by UTF-16 code unit without flags, as `new RegExp(pattern).test(s)`.
 */

export class RegexError extends Error {}

/** Thrown when a request's matching would exceed its step budget (or one test its bound). */
export class RegexBudgetError extends Error {}

/** Steps of work one request may spend; shared by every regex of that request. */
export interface RegexBudget {
  steps: number;
}

type Pred = (c: number) => boolean;

type Inst =
  | { op: 'char'; pred: Pred; next: number }
  | { op: 'split'; a: number; b: number }
  | { op: 'jmp'; next: number }
  | { op: 'assert'; kind: 'bol' | 'eol' | 'wordb' | 'nwordb'; next: number }
  | { op: 'match' };

type Ast =
  | { t: 'pred'; pred: Pred }
  | { t: 'assert'; kind: 'bol' | 'eol' | 'wordb' | 'nwordb' }
  | { t: 'seq'; items: Ast[] }
  | { t: 'alt'; options: Ast[] }
  | { t: 'rep'; item: Ast; min: number; max: number };

/** Program size bound: `a{1000}` and friends are refused rather than compiled. */
const MAX_PROGRAM = 4000;
const MAX_COUNT = 1000;
const MAX_DEPTH = 32;

const isDigit: Pred = (c) => c >= 48 && c <= 57;
const isWord: Pred = (c) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const SPACES = new Set([9, 10, 11, 12, 13, 32, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff]);
const isSpace: Pred = (c) => SPACES.has(c) || (c >= 0x2000 && c <= 0x200a);
const isLineEnd: Pred = (c) => c === 10 || c === 13 || c === 0x2028 || c === 0x2029;
const not =
  (p: Pred): Pred =>
  (c) =>
    !p(c);

const CLASS_ESCAPES: Record<string, Pred> = {
  d: isDigit,
  D: not(isDigit),
  w: isWord,
  W: not(isWord),
  s: isSpace,
  S: not(isSpace),
};
const CONTROL_ESCAPES: Record<string, number> = { n: 10, r: 13, t: 9, f: 12, v: 11, '0': 0 };

class Parser {
  pos = 0;
  depth = 0;
  constructor(readonly src: string) {}

  fail(what: string): never {
    throw new RegexError(`${what} at offset ${this.pos}`);
  }

  parseAlt(): Ast {
    const options = [this.parseSeq()];
    while (this.src[this.pos] === '|') {
      this.pos++;
      options.push(this.parseSeq());
    }
    return options.length === 1 ? options[0]! : { t: 'alt', options };
  }

  parseSeq(): Ast {
    const items: Ast[] = [];
    while (this.pos < this.src.length && this.src[this.pos] !== '|' && this.src[this.pos] !== ')') {
      const atom = this.parseAtom();
      items.push(this.parseQuantifier(atom));
    }
    return { t: 'seq', items };
  }

  parseQuantifier(atom: Ast): Ast {
    const c = this.src[this.pos];
    let min: number;
    let max: number;
    if (c === '*') [min, max] = [0, Infinity];
    else if (c === '+') [min, max] = [1, Infinity];
    else if (c === '?') [min, max] = [0, 1];
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos));
      if (!m) return atom; // a `{` that is no quantifier is a literal, as in JavaScript
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      if (min > MAX_COUNT || (max !== Infinity && max > MAX_COUNT))
        this.fail(`repeat count above ${MAX_COUNT}`);
      if (max < min) this.fail('repeat count out of order');
      this.pos += m[0].length - 1;
    } else return atom;
    this.pos++;
    if (this.src[this.pos] === '?') this.pos++; // lazy: same answer for a yes/no match
    if (atom.t === 'assert') this.fail('nothing to repeat');
    const q = this.src[this.pos];
    if (q === '*' || q === '+' || q === '?') this.fail('nothing to repeat');
    return { t: 'rep', item: atom, min, max };
  }

  parseAtom(): Ast {
    const c = this.src[this.pos++]!;
    switch (c) {
      case '.':
        return { t: 'pred', pred: not(isLineEnd) };
      case '^':
        return { t: 'assert', kind: 'bol' };
      case '$':
        return { t: 'assert', kind: 'eol' };
      case '[':
        return { t: 'pred', pred: this.parseClass() };
      case '(':
        return this.parseGroup();
      case '\\':
        return this.parseEscape();
      case '*':
      case '+':
      case '?':
        return this.fail('nothing to repeat');
      default: {
        const code = c.charCodeAt(0);
        return { t: 'pred', pred: (x) => x === code };
      }
    }
  }

  parseGroup(): Ast {
    if (this.src.startsWith('?:', this.pos)) this.pos += 2;
    else if (this.src.startsWith('?<', this.pos) && /^\?<[A-Za-z_$][\w$]*>/.test(this.src.slice(this.pos))) {
      this.pos = this.src.indexOf('>', this.pos) + 1;
    } else if (this.src[this.pos] === '?')
      this.fail('lookaround is not supported (not a regular expression)');
    if (++this.depth > MAX_DEPTH) this.fail(`groups nested deeper than ${MAX_DEPTH}`);
    const inner = this.parseAlt();
    this.depth--;
    if (this.src[this.pos] !== ')') this.fail('unterminated group');
    this.pos++;
    return inner;
  }

  parseEscape(): Ast {
    const c = this.src[this.pos++];
    if (c === undefined) this.fail('trailing backslash');
    if (c === 'b') return { t: 'assert', kind: 'wordb' };
    if (c === 'B') return { t: 'assert', kind: 'nwordb' };
    if (/[1-9]/.test(c) || c === 'k')
      this.fail('back-references are not supported (not a regular expression)');
    const code = this.escapedCode(c);
    if (typeof code === 'function') return { t: 'pred', pred: code };
    return { t: 'pred', pred: (x) => x === code };
  }

  /** After a backslash (inside or outside a class): a class predicate or one code unit. */
  escapedCode(c: string): Pred | number {
    const cls = CLASS_ESCAPES[c];
    if (cls) return cls;
    if (c in CONTROL_ESCAPES) return CONTROL_ESCAPES[c]!;
    if (c === 'x' || c === 'u') {
      const len = c === 'x' ? 2 : 4;
      const hex = this.src.slice(this.pos, this.pos + len);
      if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) this.fail(`bad \\${c} escape`);
      this.pos += len;
      return Number.parseInt(hex, 16);
    }
    if (/[A-Za-z0-9]/.test(c)) this.fail(`unsupported escape \\${c}`);
    return c.charCodeAt(0);
  }

  parseClass(): Pred {
    const negate = this.src[this.pos] === '^';
    if (negate) this.pos++;
    const parts: Pred[] = [];
    for (;;) {
      if (this.pos >= this.src.length) this.fail('unterminated character class');
      if (this.src[this.pos] === ']') {
        this.pos++;
        break;
      }
      const lo = this.classAtom();
      if (this.src[this.pos] === '-' && this.src[this.pos + 1] !== ']' && this.pos + 1 < this.src.length) {
        this.pos++;
        const hi = this.classAtom();
        if (typeof lo !== 'number' || typeof hi !== 'number') this.fail('class range of a class escape');
        if (hi < lo) this.fail('class range out of order');
        parts.push((x) => x >= lo && x <= hi);
      } else if (typeof lo === 'number') parts.push((x) => x === lo);
      else parts.push(lo);
    }
    const any: Pred = (x) => parts.some((p) => p(x));
    return negate ? not(any) : any;
  }

  classAtom(): Pred | number {
    const c = this.src[this.pos++]!;
    if (c !== '\\') return c.charCodeAt(0);
    const e = this.src[this.pos++];
    if (e === undefined) this.fail('trailing backslash');
    if (e === 'b') return 8; // backspace inside a class, as in JavaScript
    if (/[1-9]/.test(e)) this.fail('back-references are not supported');
    return this.escapedCode(e);
  }
}

/** Emits the program of an AST; jump targets are absolute indexes. */
function compile(ast: Ast, prog: Inst[]): void {
  if (prog.length > MAX_PROGRAM) throw new RegexError(`pattern compiles to more than ${MAX_PROGRAM} states`);
  switch (ast.t) {
    case 'pred':
      prog.push({ op: 'char', pred: ast.pred, next: prog.length + 1 });
      return;
    case 'assert':
      prog.push({ op: 'assert', kind: ast.kind, next: prog.length + 1 });
      return;
    case 'seq':
      for (const item of ast.items) compile(item, prog);
      return;
    case 'alt': {
      const jumps: Array<{ op: 'jmp'; next: number }> = [];
      ast.options.forEach((option, i) => {
        if (i < ast.options.length - 1) {
          const split: Inst = { op: 'split', a: prog.length + 1, b: 0 };
          prog.push(split);
          compile(option, prog);
          const jmp = { op: 'jmp' as const, next: 0 };
          jumps.push(jmp);
          prog.push(jmp);
          split.b = prog.length;
        } else compile(option, prog);
      });
      for (const j of jumps) j.next = prog.length;
      return;
    }
    case 'rep':
      compileRepeat(ast, prog);
  }
}

function compileRepeat(ast: Extract<Ast, { t: 'rep' }>, prog: Inst[]): void {
  for (let i = 0; i < ast.min; i++) compile(ast.item, prog);
  if (ast.max === Infinity) {
    const split: Inst = { op: 'split', a: prog.length + 1, b: 0 };
    const loop = prog.length;
    prog.push(split);
    compile(ast.item, prog);
    prog.push({ op: 'jmp', next: loop });
    split.b = prog.length;
    return;
  }
  const splits: Array<Extract<Inst, { op: 'split' }>> = [];
  for (let i = ast.min; i < ast.max; i++) {
    const split: Extract<Inst, { op: 'split' }> = { op: 'split', a: prog.length + 1, b: 0 };
    splits.push(split);
    prog.push(split);
    compile(ast.item, prog);
  }
  for (const s of splits) s.b = prog.length;
}

export interface LinearRegex {
  readonly source: string;
  /** Program size: the most steps one input position can cost. */
  readonly size: number;
  /** Unanchored search, as RegExp.prototype.test; spends steps from `budget`. */
  test(input: string, budget: RegexBudget): boolean;
}

/** Compiles `source`, or throws RegexError saying what is not supported. */
export function compileLinearRegex(source: string): LinearRegex {
  const parser = new Parser(source);
  const ast = parser.parseAlt();
  if (parser.pos < source.length) parser.fail('unmatched )');
  const prog: Inst[] = [];
  compile(ast, prog);
  prog.push({ op: 'match' });
  if (prog.length > MAX_PROGRAM) throw new RegexError(`pattern compiles to more than ${MAX_PROGRAM} states`);
  return { source, size: prog.length, test: (input, budget) => run(prog, input, budget) };
}

function assertHolds(kind: 'bol' | 'eol' | 'wordb' | 'nwordb', input: string, pos: number): boolean {
  if (kind === 'bol') return pos === 0;
  if (kind === 'eol') return pos === input.length;
  const before = pos > 0 && isWord(input.charCodeAt(pos - 1));
  const after = pos < input.length && isWord(input.charCodeAt(pos));
  return (before !== after) === (kind === 'wordb');
}

/**
 * Most steps one test may take (one value against one pattern): beyond it the test is refused
 * before it starts, so no single call holds the event loop for long (tens of ms at most).
 */
export const MAX_STEPS_PER_TEST = 1_000_000;

/** The Pike VM: the threads alive at each position, each program state at most once. */
function run(prog: Inst[], input: string, budget: RegexBudget): boolean {
  if ((input.length + 1) * prog.length * 2 > MAX_STEPS_PER_TEST) {
    throw new RegexBudgetError(
      `a value of ${input.length} characters is too long for a pattern of ${prog.length} states`,
    );
  }
  const mark = new Int32Array(prog.length).fill(-1);
  let current: number[] = [];
  let next: number[] = [];
  const stack: number[] = [];
  let steps = 0;
  // Follows jumps, splits and assertions from `pc` at `pos`; adds the states that consume or match.
  const add = (list: number[], start: number, pos: number) => {
    stack.push(start);
    while (stack.length > 0) {
      const pc = stack.pop()!;
      if (mark[pc] === pos) continue;
      mark[pc] = pos;
      steps++;
      const inst = prog[pc]!;
      if (inst.op === 'jmp') stack.push(inst.next);
      else if (inst.op === 'split') stack.push(inst.b, inst.a);
      else if (inst.op === 'assert') {
        if (assertHolds(inst.kind, input, pos)) stack.push(inst.next);
      } else list.push(pc);
    }
  };
  try {
    for (let pos = 0; pos <= input.length; pos++) {
      add(current, 0, pos); // a match may start anywhere
      const code = pos < input.length ? input.charCodeAt(pos) : -1;
      for (const pc of current) {
        const inst = prog[pc]!;
        if (inst.op === 'match') return true;
        steps++;
        if (inst.op === 'char' && code >= 0 && inst.pred(code)) add(next, inst.next, pos + 1);
      }
      [current, next] = [next, current];
      next.length = 0;
      if (steps > budget.steps) throw new RegexBudgetError('the regex work budget of the request is spent');
    }
    return false;
  } finally {
    budget.steps -= steps;
  }
}
