/**
 * Readers of the production tree's shape for test/unit/architecture.test.ts, on the TypeScript
 * compiler API (the same parse the compiler does, not regular expressions): the runtime import
 * graph and its cycles, function body lengths, and where DynamoDB commands are built and sent.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export const ROOT = path.join(import.meta.dirname, '..', '..');

/** The production folders: what `npm run build` ships and the image runs. */
export const PRODUCTION_DIRS = ['gateway', 'discovery', 'manager', 'platform', 'cli', 'workers'];

/** Longest function, method or arrow body allowed in production code, in lines. */
export const MAX_FUNCTION_LINES = 120;

/** Repo-relative `.ts` files (no declarations) under `dirs`, sorted. */
export function sourceFiles(dirs: readonly string[]): string[] {
  const out: string[] = [];
  const visit = (rel: string) => {
    for (const name of readdirSync(path.join(ROOT, rel))) {
      const child = `${rel}/${name}`;
      if (statSync(path.join(ROOT, child)).isDirectory()) visit(child);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(child);
    }
  };
  for (const dir of dirs) visit(dir);
  return out.sort();
}

export function parse(file: string, text: string): ts.SourceFile {
  return ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
}

/**
 * Specifiers of the imports Node performs when it runs this file: static imports and re-exports
 * that survive compilation (`import type` / `export type` are erased; under verbatimModuleSyntax
 * `import { type A }` still loads its module) and `import('…')` with a literal.
 */
export function runtimeImports(source: ts.SourceFile): string[] {
  const out: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && !node.importClause?.isTypeOnly) {
      out.push((node.moduleSpecifier as ts.StringLiteral).text);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && !node.isTypeOnly) {
      out.push((node.moduleSpecifier as ts.StringLiteral).text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      out.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** `../x/y.js` imported by `gateway/a/b.ts` -> `gateway/x/y.ts`; undefined for packages. */
export function resolveImport(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  return path.posix.join(path.posix.dirname(from), specifier).replace(/\.js$/, '.ts');
}

/** file -> the repo files it loads at run time (only edges between files of `files`). */
export function importGraph(files: ReadonlyMap<string, ts.SourceFile>): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const [file, source] of files) {
    const targets = runtimeImports(source)
      .map((s) => resolveImport(file, s))
      .filter((t): t is string => t !== undefined && files.has(t));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/**
 * Every import cycle, one per strongly connected component (Tarjan), reported as a path that
 * starts and ends at the same file ('a.ts -> b.ts -> a.ts'), followed by the component's other
 * members when it holds more files than that path.
 */
export function importCycles(graph: ReadonlyMap<string, readonly string[]>): string[] {
  return stronglyConnected(graph).map((component) => {
    const cycle = cyclePath(graph, component);
    const others = [...component].filter((f) => !cycle.includes(f)).sort();
    return cycle.join(' -> ') + (others.length > 0 ? ` (in the same cycle: ${others.join(', ')})` : '');
  });
}

/** Components of more than one file, or one file importing itself. */
function stronglyConnected(graph: ReadonlyMap<string, readonly string[]>): Set<string>[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: Set<string>[] = [];
  const connect = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) connect(w);
      if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, low.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component = new Set<string>();
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.add(w);
    } while (w !== v);
    if (component.size > 1 || (graph.get(v) ?? []).includes(v)) components.push(component);
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);
  return components;
}

/**
 * The graph between folders `depth` levels deep (1: the top-level modules gateway, manager, …):
 * an edge when a file of one imports a file of the other, labelled with the first such import.
 */
export function folderGraph(graph: ReadonlyMap<string, readonly string[]>, depth: number) {
  const folderOf = (file: string) => file.split('/').slice(0, -1).slice(0, depth).join('/');
  const folders = new Map<string, string[]>();
  const example = new Map<string, string>();
  for (const [file, targets] of graph) {
    const from = folderOf(file);
    if (!folders.has(from)) folders.set(from, []);
    for (const target of targets) {
      const to = folderOf(target);
      if (to === from || example.has(`${from} -> ${to}`)) continue;
      folders.get(from)!.push(to);
      example.set(`${from} -> ${to}`, `${file} imports ${target}`);
    }
  }
  return { folders, example };
}

/** A shortest cycle through the component's first file: breadth-first until an edge leads back. */
function cyclePath(graph: ReadonlyMap<string, readonly string[]>, component: Set<string>): string[] {
  const start = [...component].sort()[0]!;
  const parent = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (w === start) {
        const trail = [v];
        while (trail[0] !== start) trail.unshift(parent.get(trail[0]!)!);
        return [...trail, start];
      }
      if (component.has(w) && !parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  throw new Error(`no cycle through ${start}`);
}

export interface LongFunction {
  /** file:line of the function's start. */
  where: string;
  name: string;
  lines: number;
}

/** Functions, methods, accessors, constructors and arrows whose body spans more than `max` lines. */
export function longFunctions(source: ts.SourceFile, max = MAX_FUNCTION_LINES): LongFunction[] {
  const out: LongFunction[] = [];
  const lineOf = (pos: number) => source.getLineAndCharacterOfPosition(pos).line + 1;
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const body = node.body as ts.Node;
      const lines = lineOf(body.getEnd()) - lineOf(body.getStart(source)) + 1;
      if (lines > max) {
        out.push({ where: `${source.fileName}:${lineOf(node.getStart(source))}`, name: nameOf(node), lines });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

function nameOf(node: ts.SignatureDeclaration): string {
  if (node.name && ts.isIdentifier(node.name)) return node.name.text;
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  if (parent && ts.isPropertyAssignment(parent) && ts.isIdentifier(parent.name)) return parent.name.text;
  return ts.isArrowFunction(node) ? '(arrow)' : '(anonymous)';
}

/** Files allowed to build and send DynamoDB commands: a `store/` folder or a `*-store.ts` file. */
export function isRepositoryFile(file: string): boolean {
  return file.split('/').slice(0, -1).includes('store') || file.endsWith('-store.ts');
}

const DYNAMO_PACKAGES = new Set(['@aws-sdk/client-dynamodb', '@aws-sdk/lib-dynamodb']);

/**
 * Outside repository files: value imports of DynamoDB command classes (`…Command` from the two
 * SDK packages), and `.send(` on a receiver whose type is a DynamoDB client (the checker decides,
 * so a client passed around under any name is still found, and a Kafka producer's send is not).
 */
export function dynamoOutsideRepositories(program: ts.Program, files: readonly string[]): string[] {
  const checker = program.getTypeChecker();
  const out: string[] = [];
  for (const file of files) {
    if (isRepositoryFile(file)) continue;
    const source = program.getSourceFile(path.join(ROOT, file));
    if (!source) throw new Error(`${file} is not in the program`);
    const where = (node: ts.Node) =>
      `${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
    const visit = (node: ts.Node) => {
      if (ts.isImportDeclaration(node)) {
        for (const name of dynamoCommandImports(node)) out.push(`${where(node)} imports ${name}`);
      } else if (
        ts.isCallExpression(node) &&
        ts.isPropertyAccessExpression(node.expression) &&
        node.expression.name.text === 'send' &&
        isDynamoClient(checker.getTypeAtLocation(node.expression.expression))
      ) {
        out.push(
          `${where(node)} calls ${node.expression.getText(source).replace(/\s+/g, '')}(…) on a DynamoDB client`,
        );
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return out;
}

function dynamoCommandImports(node: ts.ImportDeclaration): string[] {
  const from = (node.moduleSpecifier as ts.StringLiteral).text;
  const bindings = node.importClause?.namedBindings;
  if (!DYNAMO_PACKAGES.has(from) || node.importClause?.isTypeOnly) return [];
  if (bindings && ts.isNamespaceImport(bindings)) return [`* as ${bindings.name.text} (the whole SDK)`];
  if (!bindings) return [];
  return bindings.elements
    .filter((e) => !e.isTypeOnly && (e.propertyName ?? e.name).text.endsWith('Command'))
    .map((e) => (e.propertyName ?? e.name).text);
}

function isDynamoClient(type: ts.Type): boolean {
  const candidates = type.isUnionOrIntersection() ? type.types : [type];
  return candidates.some((t) =>
    (t.getSymbol()?.getDeclarations() ?? []).some((d) => {
      const declaredIn = d.getSourceFile().fileName;
      return (
        /@aws-sdk\/(client-dynamodb|lib-dynamodb)\//.test(declaredIn) && /Client\b/.test(t.getSymbol()!.name)
      );
    }),
  );
}

/** A program over `files` with the repo's compiler options; `virtual` adds or replaces files. */
export function createProgram(files: readonly string[], virtual: ReadonlyMap<string, string> = new Map()) {
  const config = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
  const host = ts.createCompilerHost({ ...options, noEmit: true });
  const abs = new Map([...virtual].map(([file, text]) => [path.join(ROOT, file), text]));
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.getSourceFile = (name, version, onError) => {
    const text = abs.get(name);
    return text !== undefined
      ? ts.createSourceFile(name, text, version)
      : getSourceFile(name, version, onError);
  };
  host.fileExists = (name) => abs.has(name) || fileExists(name);
  host.readFile = (name) => abs.get(name) ?? readFile(name);
  return ts.createProgram({
    rootNames: files.map((f) => path.join(ROOT, f)),
    options: { ...options, noEmit: true },
    host,
  });
}
