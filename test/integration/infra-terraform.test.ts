/**
 * infra/terraform checked against the code it deploys (issue 7), over HCL parsed with
 * @cdktf/hcl2json, since providers cannot be downloaded for `terraform validate` here:
 *
 * - every table of gateway/store/schema.ts is a Terraform table with the same keys, attribute
 *   types, indexes, projections and TTL attribute, and there is no other table;
 * - every Lambda handler a function names exists: the bundle is built, and invoked with an API
 *   Gateway v2 event against dynalite;
 * - IAM: DynamoDB actions and resources are never wildcards, name only the project's tables,
 *   and discovery is granted exactly the operations its registry store performs;
 * - the terraform-aws-modules conventions: every module has main/variables/outputs/versions,
 *   every variable a type and a description, every output a description;
 * - the environment the gateway task gets is the one of contract.md.
 *
 * `tofu fmt -check` and checkov run in `npm run check:infra` (infra/tools.mjs).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ENV_DOC } from '../../gateway/config/env.js';
import { TABLES, type TableDef, toCreateTableInput } from '../../gateway/store/schema.js';
import { buildLambda, handlerSetting, LAMBDAS } from '../../scripts/build-lambda.mjs';
import { TABLES_TF_JSON, tablesTfJson } from '../../scripts/gen-tables-tf.js';
import { startTestDynamo } from '../helpers/dynalite.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tfRoot = path.join(root, 'infra', 'terraform');
const rel = (p: string) => path.relative(root, p);
/** How hcl2json renders an HCL expression: `${expr}`. */
const expr = (e: string) => `\${${e}}`;

// biome-ignore lint/suspicious/noExplicitAny: parsed HCL is untyped JSON
type Hcl = Record<string, any>;

// Loaded without its type declarations: they pull in the DOM lib (`/// <reference lib="dom" />`),
// whose Crypto and fetch types would then clash with Node's everywhere in the type check.
const { parse } = createRequire(import.meta.url)('@cdktf/hcl2json') as {
  parse(filename: string, contents: string): Promise<Hcl>;
};

function tfFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (name.startsWith('.')) return [];
    if (statSync(p).isDirectory()) return tfFiles(p);
    return p.endsWith('.tf') ? [p] : [];
  });
}

const parsed = new Map<string, Hcl>();
async function hcl(file: string): Promise<Hcl> {
  let doc = parsed.get(file);
  if (!doc) {
    doc = await parse(path.basename(file), readFileSync(file, 'utf8'));
    parsed.set(file, doc);
  }
  return doc;
}

/** Every block of `kind` (resource, data) and `type` in every .tf file: [file, name, body]. */
async function blocks(kind: string, type: string): Promise<Array<[string, string, Hcl]>> {
  const out: Array<[string, string, Hcl]> = [];
  for (const file of tfFiles(tfRoot)) {
    const doc = await hcl(file);
    for (const [name, bodies] of Object.entries<Hcl[]>(doc[kind]?.[type] ?? {})) {
      for (const body of bodies) out.push([file, name, body]);
    }
  }
  return out;
}

const moduleDirs = () => [
  tfRoot,
  ...['modules', 'examples'].flatMap((d) =>
    readdirSync(path.join(tfRoot, d)).map((name) => path.join(tfRoot, d, name)),
  ),
];

test('modules/tables/schema.tf.json is what scripts/gen-tables-tf.ts writes from the schema module', () => {
  const have = JSON.parse(readFileSync(TABLES_TF_JSON, 'utf8')) as unknown;
  assert.deepEqual(have, tablesTfJson(), 'stale: run npm run gen:tables');
});

test('every table of gateway/store/schema.ts is in Terraform with its keys, indexes and TTL, and no other', async () => {
  const generated = JSON.parse(readFileSync(TABLES_TF_JSON, 'utf8')).locals.schema_tables as Hcl;
  assert.deepEqual(Object.keys(generated).sort(), Object.keys(TABLES).sort());
  for (const [key, def] of Object.entries(TABLES) as Array<[string, TableDef]>) {
    const want = toCreateTableInput(def, 'p-');
    const t = generated[key];
    assert.equal(`p-${t.suffix}`, want.TableName, key);
    const keys = (schema: typeof want.KeySchema) =>
      (schema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(',');
    assert.equal(
      keys(want.KeySchema),
      [`${t.hash_key}:HASH`, ...(t.range_key ? [`${t.range_key}:RANGE`] : [])].join(','),
      `${key} keys`,
    );
    assert.deepEqual(
      t.attributes,
      (want.AttributeDefinitions ?? []).map((a) => ({ name: a.AttributeName, type: a.AttributeType })),
      `${key} attributes`,
    );
    assert.deepEqual(
      t.global_secondary_indexes.map((ix: Hcl) => [
        ix.name,
        ix.hash_key,
        ix.range_key,
        ix.projection_type,
        ix.non_key_attributes,
      ]),
      (want.GlobalSecondaryIndexes ?? []).map((ix) => [
        ix.IndexName,
        ix.KeySchema?.find((k) => k.KeyType === 'HASH')?.AttributeName,
        ix.KeySchema?.find((k) => k.KeyType === 'RANGE')?.AttributeName ?? null,
        ix.Projection?.ProjectionType,
        ix.Projection?.NonKeyAttributes ?? [],
      ]),
      `${key} indexes`,
    );
    assert.equal(t.ttl_attribute, def.ttl ?? null, `${key} TTL attribute`);
    assert.equal(t.billing_mode, def.billing, `${key} billing`);
  }

  // The one aws_dynamodb_table of the configuration is driven by those definitions: nothing
  // names a table, a key or an index by hand.
  const tables = await blocks('resource', 'aws_dynamodb_table');
  assert.equal(tables.length, 1, 'exactly one aws_dynamodb_table resource');
  const [file, , t] = tables[0]!;
  assert.equal(rel(file), path.join('infra', 'terraform', 'modules', 'tables', 'main.tf'));
  assert.match(t.for_each, /local\.table_keys/);
  const main = await hcl(file);
  assert.match(main.locals[0].table_keys, /keys\(local\.schema_tables\)/);
  assert.match(t.name, /local\.schema_tables\[each\.key\]\.suffix/);
  assert.match(t.hash_key, /local\.schema_tables\[each\.key\]\.hash_key/);
  assert.match(t.range_key, /local\.schema_tables\[each\.key\]\.range_key/);
  assert.match(t.dynamic.attribute[0].for_each, /local\.schema_tables\[each\.key\]\.attributes/);
  assert.match(
    t.dynamic.global_secondary_index[0].for_each,
    /local\.schema_tables\[each\.key\]\.global_secondary_indexes/,
  );
  assert.match(t.dynamic.ttl[0].for_each, /local\.schema_tables\[each\.key\]\.ttl_attribute/);
  assert.equal(t.dynamic.ttl[0].content[0].enabled, true);
  assert.equal(t.server_side_encryption[0].enabled, true);
  assert.match(t.point_in_time_recovery[0].enabled, /var\.point_in_time_recovery/);
  const vars = (await hcl(path.join(tfRoot, 'modules', 'tables', 'variables.tf'))).variable;
  assert.equal(vars.billing_mode[0].default, 'PAY_PER_REQUEST', "the schema module's billing is the default");
  assert.equal(vars.point_in_time_recovery[0].default, true);
});

test('every Lambda handler a function names exists in the build output, and answers an API Gateway v2 event', async (t) => {
  const functions = await blocks('resource', 'aws_lambda_function');
  assert.ok(functions.length > 0);
  const builtBy = new Map(Object.entries(LAMBDAS).map(([name, fn]) => [handlerSetting(fn), name]));
  const out = mkdtempSync(path.join(os.tmpdir(), 'fg-lambda-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const db = await startTestDynamo();
  t.after(() => db.close());
  for (const [file, , fn] of functions) {
    // The handler is the module's variable; its default is what the root module deploys.
    const m = /^\$\{var\.(\w+)\}$/.exec(fn.handler);
    assert.ok(m, `${rel(file)}: handler comes from a variable`);
    const handler = (await hcl(path.join(path.dirname(file), 'variables.tf'))).variable[m[1]!][0].default;
    const name = builtBy.get(handler);
    assert.ok(name, `${rel(file)}: handler ${handler} is built by scripts/build-lambda.mjs`);
    const source = path.join(root, LAMBDAS[name]!.source);
    assert.ok(existsSync(source), `${rel(source)} exists`);
    assert.match(readFileSync(source, 'utf8'), new RegExp(`export const ${LAMBDAS[name]!.export}\\b`));
    assert.match(fn.runtime, /var\.runtime/);

    const built = await buildLambda(name, out);
    assert.equal(built.handler, handler);
    const [modulePath, exportName] = [
      handler.slice(0, handler.lastIndexOf('.')),
      handler.slice(handler.lastIndexOf('.') + 1),
    ];
    assert.equal(
      `${modulePath}.mjs`,
      built.entry,
      'the zip holds the handler module where Lambda looks for it',
    );
    assert.ok(existsSync(built.zip));

    // The bundle, configured only through the environment as the function is.
    process.env.FLEETGATE_DYNAMODB_ENDPOINT = db.dynamo.endpoint;
    process.env.FLEETGATE_TABLE_PREFIX = db.prefix;
    process.env.FLEETGATE_LOG_LEVEL = 'silent';
    const bundle = (await import(pathToFileURL(path.join(built.dir, built.entry)).href)) as Record<
      string,
      (event: unknown, context: unknown) => Promise<{ statusCode: number; body: string }>
    >;
    const invoke = bundle[exportName];
    assert.equal(typeof invoke, 'function', `${built.entry} exports ${exportName}`);
    const event = JSON.parse(
      readFileSync(path.join(root, 'test', 'fixtures', 'apigw', 'http-api-v2-detail.json'), 'utf8'),
    );
    const detail = await invoke!(event, {});
    assert.equal(detail.statusCode, 200);
    assert.equal(detail.body, '{"data":[],"msg":"ok"}');
    const ping = await invoke!({ ...event, rawPath: '/ping', rawQueryString: '' }, {});
    assert.equal(ping.body, '{"message":"pong"}');
  }
  // The examples deploy the zip npm run build:lambda writes.
  const examples = tfFiles(path.join(tfRoot, 'examples')).filter((f) => f.endsWith('main.tf'));
  assert.ok(examples.length >= 2);
  for (const file of examples) {
    const [mod] = (await hcl(file)).module.fleetgate as Hcl[];
    assert.match(mod?.discovery_package_path, /\/dist\/lambda\/discovery\.zip$/, rel(file));
  }
});

/** AWS SDK command (lib-dynamodb or client) -> the IAM action it needs. */
const SDK_TO_ACTION: Record<string, string> = {
  QueryCommand: 'dynamodb:Query',
  ScanCommand: 'dynamodb:Scan',
  GetCommand: 'dynamodb:GetItem',
  GetItemCommand: 'dynamodb:GetItem',
  PutCommand: 'dynamodb:PutItem',
  PutItemCommand: 'dynamodb:PutItem',
  UpdateCommand: 'dynamodb:UpdateItem',
  UpdateItemCommand: 'dynamodb:UpdateItem',
  DeleteCommand: 'dynamodb:DeleteItem',
  DeleteItemCommand: 'dynamodb:DeleteItem',
  BatchWriteCommand: 'dynamodb:BatchWriteItem',
  BatchWriteItemCommand: 'dynamodb:BatchWriteItem',
  BatchGetCommand: 'dynamodb:BatchGetItem',
  BatchGetItemCommand: 'dynamodb:BatchGetItem',
};

test('IAM: DynamoDB is granted action by action on the project tables only, never with a wildcard', async () => {
  const statements: Array<{ where: string; actions: string[]; resources: string[] }> = [];
  for (const [file, name, doc] of await blocks('data', 'aws_iam_policy_document')) {
    for (const s of doc.statement ?? []) {
      statements.push({
        where: `${rel(file)} ${name} ${s.sid ?? ''}`,
        actions: s.actions ?? [],
        resources: s.resources ?? [],
      });
    }
    assert.equal(
      doc.dynamic,
      undefined,
      `${rel(file)} ${name}: no generated statements (they could not be checked)`,
    );
  }
  // Every "dynamodb:..." string of the configuration is an action of a policy document above
  // (none hides in a jsonencode()d or heredoc policy the parser cannot check).
  const inText = tfFiles(tfRoot).reduce(
    (n, file) => n + (readFileSync(file, 'utf8').match(/"dynamodb:/gi) ?? []).length,
    0,
  );
  const inDocuments = statements.flatMap((s) => s.actions).filter((a) => /^dynamodb:/i.test(a)).length;
  assert.equal(inText, inDocuments, 'DynamoDB actions appear only in aws_iam_policy_document statements');
  const dynamo = statements.filter((s) => s.actions.some((a) => /^dynamodb:/i.test(a)));
  assert.ok(dynamo.length > 0, 'some role uses DynamoDB');
  const tableRef =
    /^\$\{(var\.registry_table_arn|var\.table_arns\["\w+"\]|var\.index_arns\["\w+"\]\["\w+"\])\}$/;
  for (const s of dynamo) {
    for (const a of s.actions) {
      assert.match(a, /^dynamodb:[A-Za-z]+$/, `${s.where}: ${a} is one action`);
      assert.ok(!a.includes('*'), `${s.where}: ${a}`);
    }
    assert.ok(
      s.actions.every((a) => a.startsWith('dynamodb:')),
      `${s.where}: DynamoDB statements hold only DynamoDB actions`,
    );
    for (const r of s.resources) {
      assert.ok(!r.includes('*'), `${s.where}: resource ${r} has a wildcard`);
      assert.match(r, tableRef, `${s.where}: resource ${r} is a table of the tables module`);
    }
  }

  // Discovery gets exactly what gateway/discovery/registry-store.ts sends, on the registry table.
  const storeSource = readFileSync(path.join(root, 'gateway', 'discovery', 'registry-store.ts'), 'utf8');
  const used = new Set(
    [...storeSource.matchAll(/new (\w+Command)\(/g)].map((m) => {
      const action = SDK_TO_ACTION[m[1]!];
      assert.ok(action, `registry-store.ts sends ${m[1]}: add it to SDK_TO_ACTION`);
      return action;
    }),
  );
  const discovery = dynamo.filter((s) => s.where.includes(path.join('modules', 'discovery')));
  assert.deepEqual(new Set(discovery.flatMap((s) => s.actions)), used);
  assert.deepEqual(
    discovery.flatMap((s) => s.resources),
    [expr('var.registry_table_arn')],
  );
  const rootDoc = await hcl(path.join(tfRoot, 'main.tf'));
  assert.equal(rootDoc.module.discovery[0].registry_table_arn, expr('module.tables.table_arns["registry"]'));
  assert.ok('registry' in TABLES);

  // Managed policies attached: only AWS's service-role policies for ECS and Lambda plumbing.
  for (const [file, name, att] of await blocks('resource', 'aws_iam_role_policy_attachment')) {
    assert.match(
      att.policy_arn,
      /:policy\/service-role\/(AmazonECSTaskExecutionRolePolicy|AWSLambdaVPCAccessExecutionRole|AmazonEC2ContainerServiceforEC2Role)\}?$/,
      `${rel(file)} ${name}`,
    );
  }
});

test('every module has main, variables, outputs and versions; every variable a type and a description; every output a description', async () => {
  for (const dir of moduleDirs()) {
    for (const f of ['main.tf', 'variables.tf', 'outputs.tf', 'versions.tf']) {
      if (f === 'variables.tf' && !existsSync(path.join(dir, f)) && dir.includes('examples')) continue;
      assert.ok(existsSync(path.join(dir, f)), `${rel(dir)}/${f}`);
    }
    const versions = await hcl(path.join(dir, 'versions.tf'));
    assert.ok(versions.terraform?.[0]?.required_version, `${rel(dir)}: required_version`);
    assert.ok(versions.terraform[0].required_providers?.[0]?.aws, `${rel(dir)}: aws provider constraint`);
  }
  let variables = 0;
  let outputs = 0;
  for (const file of tfFiles(tfRoot)) {
    const doc = await hcl(file);
    for (const [name, [v = {}]] of Object.entries<Hcl[]>(doc.variable ?? {})) {
      variables++;
      assert.ok(v.type, `${rel(file)}: variable ${name} has a type`);
      assert.ok(
        typeof v.description === 'string' && v.description.length > 10,
        `${rel(file)}: variable ${name} has a description`,
      );
      assert.equal(
        path.basename(file),
        'variables.tf',
        `${rel(file)}: variable ${name} belongs in variables.tf`,
      );
    }
    for (const [name, [o = {}]] of Object.entries<Hcl[]>(doc.output ?? {})) {
      outputs++;
      assert.ok(
        typeof o.description === 'string' && o.description.length > 10,
        `${rel(file)}: output ${name} has a description`,
      );
      assert.equal(path.basename(file), 'outputs.tf', `${rel(file)}: output ${name} belongs in outputs.tf`);
    }
  }
  assert.ok(variables > 50 && outputs > 20, `${variables} variables, ${outputs} outputs`);
});

test("the gateway task's environment is contract.md's, and its ports, drain and limits match the code", async () => {
  const known = new Set(ENV_DOC.map(([name]) => name));
  const gateways = readFileSync(path.join(tfRoot, 'modules', 'gateways', 'main.tf'), 'utf8');
  const named = new Set([...gateways.matchAll(/\b(FLEETGATE_[A-Z_]+)\b/g)].map((m) => m[1]!));
  assert.ok(named.size >= 10);
  for (const name of named)
    assert.ok(known.has(name), `${name} is a documented variable (gateway/config/env.ts ENV_DOC)`);
  for (const required of [
    'FLEETGATE_MAX_CONNECTIONS',
    'FLEETGATE_PKI_DIR',
    'FLEETGATE_AKSK',
    'FLEETGATE_KAFKA_BROKERS',
  ]) {
    assert.ok(named.has(required), `the gateway task sets ${required}`);
  }
  const doc = await hcl(path.join(tfRoot, 'modules', 'gateways', 'main.tf'));
  assert.equal(doc.locals[0].grpc_port, 6751);
  assert.equal(doc.locals[0].http_port, 6752);
  const tg = doc.resource.aws_lb_target_group.agents[0];
  assert.equal(tg.protocol, 'TCP', 'TCP passthrough: mTLS ends at the gateway');
  assert.equal(tg.health_check[0].path, '/readyz');
  assert.equal(doc.resource.aws_lb_listener.agents[0].protocol, 'TCP');
  // The drain: 20 s grace in gateway/cli/serve-command.ts, within the stop timeout.
  const serve = readFileSync(path.join(root, 'gateway', 'cli', 'serve-command.ts'), 'utf8');
  const grace = Number(/SHUTDOWN_GRACE_MS = ([\d_]+)/.exec(serve)?.[1]?.replace(/_/g, ''));
  const vars = (await hcl(path.join(tfRoot, 'modules', 'gateways', 'variables.tf'))).variable;
  assert.ok(
    vars.stop_timeout[0].default * 1000 >= grace + 20_000,
    'stop timeout covers the grace plus the sink flush',
  );
  // The sizing uses the gateway's own per-agent budget.
  const env = readFileSync(path.join(root, 'gateway', 'config', 'env.ts'), 'utf8');
  const sizing = readFileSync(path.join(tfRoot, 'sizing.tf'), 'utf8');
  assert.match(env, /BYTES_PER_AGENT_BUDGET = 96 \* 1024/);
  assert.match(sizing, /budget_per_agent_bytes = 96 \* 1024/);
});
