/**
 * CloudWatch Logs JSON filter patterns, the subset the stack's metric filters use:
 * `{ ($.a = "text") || ($.b >= 50) && ... }` with =, !=, <, <=, >, >= on strings (= and !=) and
 * numbers, `||`, `&&` and parentheses. Evaluated on a parsed log line, as CloudWatch evaluates
 * it on each event, so a test can show that what the code logs is what an alarm counts.
 */
type Line = Record<string, unknown>;

const TOKEN = /\s*(\|\||&&|\(|\)|\$\.[\w.]+|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|!=|<=|>=|=|<|>)/y;

function tokens(pattern: string): string[] {
  const body = /^\s*\{(.*)\}\s*$/s.exec(pattern)?.[1];
  if (body === undefined) throw new Error(`not a JSON filter pattern: ${pattern}`);
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < body.trimEnd().length) {
    const m = TOKEN.exec(body);
    if (!m) throw new Error(`unsupported filter pattern at ${TOKEN.lastIndex}: ${pattern}`);
    out.push(m[1]!);
  }
  return out;
}

function field(line: Line, selector: string): unknown {
  return selector
    .slice(2)
    .split('.')
    .reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Line)[k] : undefined), line);
}

function compare(value: unknown, op: string, literal: string): boolean {
  if (literal.startsWith('"')) {
    const text = JSON.parse(literal) as string;
    if (op === '=') return value === text;
    if (op === '!=') return value !== text;
    throw new Error(`operator ${op} on a string`);
  }
  if (typeof value !== 'number') return false;
  const n = Number(literal);
  return {
    '=': value === n,
    '!=': value !== n,
    '<': value < n,
    '<=': value <= n,
    '>': value > n,
    '>=': value >= n,
  }[op]!;
}

/** Whether `pattern` (a JSON filter pattern) matches the log line. */
export function matchesJsonFilter(pattern: string, line: Line): boolean {
  const t = tokens(pattern);
  let i = 0;
  const primary = (): boolean => {
    if (t[i] === '(') {
      i++;
      const v = or();
      if (t[i++] !== ')') throw new Error(`unbalanced parentheses: ${pattern}`);
      return v;
    }
    const [sel, op, lit] = [t[i++]!, t[i++]!, t[i++]!];
    if (!sel.startsWith('$.')) throw new Error(`expected a selector: ${pattern}`);
    return compare(field(line, sel), op, lit);
  };
  const and = (): boolean => {
    let v = primary();
    while (t[i] === '&&') {
      i++;
      v = primary() && v;
    }
    return v;
  };
  const or = (): boolean => {
    let v = and();
    while (t[i] === '||') {
      i++;
      v = and() || v;
    }
    return v;
  };
  const v = or();
  if (i !== t.length) throw new Error(`trailing tokens in ${pattern}`);
  return v;
}
