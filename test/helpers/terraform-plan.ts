/**
 * What Terraform plans for infra/terraform, read from `terraform test -json -verbose` of a test
 * file of the root module (infra/tools.mjs plannedRuns): resources by address with their planned
 * values, outputs, and the IAM policies the roles get, parsed into grants per table.
 */
import { plannedRuns, type TerraformPlan } from '../../infra/tools.mjs';

// biome-ignore lint/suspicious/noExplicitAny: planned values are untyped JSON
export type Values = Record<string, any>;

export interface Planned {
  address: string;
  type: string;
  /** The key of a for_each / count instance, when there is one. */
  index: string | number | undefined;
  after: Values;
}

export interface Plan {
  resources: Planned[];
  /** Every planned resource of a type (managed resources only). */
  ofType(type: string): Planned[];
  /** The one resource at `address`; fails when there is none. */
  at(address: string): Planned;
  output(name: string): unknown;
}

export function planOf(raw: TerraformPlan): Plan {
  const resources = raw.resource_changes
    .filter((r) => r.mode === 'managed' && r.change.after !== null)
    .map((r) => ({ address: r.address, type: r.type, index: r.index, after: r.change.after as Values }));
  return {
    resources,
    ofType: (type) => resources.filter((r) => r.type === type),
    at(address) {
      const r = resources.find((x) => x.address === address);
      if (!r) throw new Error(`nothing planned at ${address}`);
      return r;
    },
    output: (name) => raw.output_changes[name]?.after,
  };
}

/** The runs of infra/terraform/tests/<file> (run name -> plan). */
export function plansOf(file: string): Map<string, Plan> {
  return new Map([...plannedRuns(file)].map(([run, raw]) => [run, planOf(raw)]));
}

export interface Statement {
  sid: string | undefined;
  actions: string[];
  resources: string[];
}

const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [String(v)]);

/** The Allow statements of a planned policy document (a JSON string). */
export function statementsOf(policy: unknown): Statement[] {
  if (typeof policy !== 'string') throw new Error(`policy not known at plan time: ${String(policy)}`);
  const doc = JSON.parse(policy) as { Statement: Values[] };
  return doc.Statement.filter((s) => s.Effect === 'Allow').map((s) => ({
    sid: s.Sid,
    actions: list(s.Action),
    resources: list(s.Resource),
  }));
}

/** DynamoDB grants of some statements: table key -> actions, and the indexes ("table.index") queried. */
export interface DynamoGrants {
  tables: Map<string, Set<string>>;
  indexes: Set<string>;
}

/**
 * The DynamoDB part of statements, against the planned tables (ARN -> table key). A DynamoDB
 * resource that is not one of those tables or their indexes fails, as does a wildcard.
 */
export function dynamoGrants(who: string, stmts: Statement[], tableArns: Map<string, string>): DynamoGrants {
  const tables = new Map<string, Set<string>>();
  const indexes = new Set<string>();
  for (const s of stmts) {
    const actions = s.actions.filter((a) => a.startsWith('dynamodb:'));
    if (actions.length === 0) continue;
    if (actions.length !== s.actions.length)
      throw new Error(`${who} ${s.sid}: DynamoDB mixed with other actions`);
    for (const a of actions)
      if (!/^dynamodb:[A-Za-z]+$/.test(a)) throw new Error(`${who} ${s.sid}: action ${a}`);
    for (const r of s.resources) {
      const [table, ix] = r.split('/index/');
      const key = tableArns.get(table ?? '');
      if (!key || r.includes('*'))
        throw new Error(`${who} ${s.sid}: resource ${r} is not a table of the stack`);
      if (ix !== undefined) {
        if (actions.some((a) => a !== 'dynamodb:Query'))
          throw new Error(`${who} ${s.sid}: ${r} is only queried`);
        indexes.add(`${key}.${ix}`);
        continue;
      }
      const set = tables.get(key) ?? new Set<string>();
      for (const a of actions) set.add(a);
      tables.set(key, set);
    }
  }
  return { tables, indexes };
}

/** Table ARN -> table key (platform/store/schema.ts), from the planned tables. */
export function tableArnsOf(plan: Plan): Map<string, string> {
  return new Map(plan.ofType('aws_dynamodb_table').map((t) => [String(t.after.arn), String(t.index)]));
}
