/**
 * infra/terraform checked against the code it deploys, over HCL parsed with
 * @cdktf/hcl2json, since providers cannot be downloaded for `terraform validate` here:
 *
 * - every table of platform/store/schema.ts is a Terraform table with the same keys, attribute
 *   types, indexes, projections and TTL attribute, and there is no other table;
 * - every Lambda handler a function names exists (discovery, manager API, dispatcher, each once):
 *   the bundle is built, reads its secrets from a local Secrets Manager stand-in at init, and
 *   answers API Gateway v2, ALB (discovery) and EventBridge (dispatcher) events against dynalite;
 * - IAM: DynamoDB actions and resources are never wildcards, name only the project's tables;
 *   discovery is granted exactly the operations its registry store performs, the manager API and
 *   the dispatcher exactly the actions and indexes their bundles use, within their own tables,
 *   and the gateway task role, table by table, exactly what the modules `fleetgate gateway` calls
 *   with its store send (agent status, limits, configs, task results; no registry);
 * - secrets reach the functions as Secrets Manager ARNs only; the 8088 ALB, the dispatcher's
 *   schedule and Kafka TLS are wired as docs/deploy.md says;
 * - the terraform-aws-modules conventions: every module has main/variables/outputs/versions,
 *   every variable a type and a description, every output a description;
 * - the environment the gateway task gets is the one of docs/environment.md.
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
import { DEFAULT_RESERVE_MS } from '../../manager/dispatcher-lambda.js';
import { ENV_DOC } from '../../platform/config/env.js';
import { SECRET_VARIABLES } from '../../platform/config/secrets-manager.js';
import { signRequest } from '../../platform/http/aksk.js';
import { TABLES, type TableDef, toCreateTableInput } from '../../platform/store/schema.js';
import { buildLambda, handlerSetting, LAMBDAS } from '../../scripts/build-lambda.mjs';
import { TABLES_TF_JSON, tablesTfJson } from '../../scripts/gen-tables-tf.js';
import { startTestDynamo } from '../helpers/dynalite.js';
import { startFakeSecretsManager } from '../helpers/fake-secrets-manager.js';

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

test('every table of platform/store/schema.ts is in Terraform with its keys, indexes and TTL, and no other', async () => {
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

/**
 * Every function of the configuration: a call of modules/function, with the handler and package
 * it deploys (the handler is the calling module's variable, whose default the root deploys).
 */
async function functionCalls(): Promise<
  Array<{ where: string; dir: string; call: Hcl; handler: string; packageVar: string }>
> {
  const out = [];
  for (const file of tfFiles(tfRoot)) {
    const doc = await hcl(file);
    for (const [name, [call = {}]] of Object.entries<Hcl[]>(doc.module ?? {})) {
      if (call.source !== '../function') continue;
      const m = /^\$\{var\.(\w+)\}$/.exec(call.handler);
      assert.ok(m, `${rel(file)} module ${name}: handler comes from a variable`);
      const handler = (await hcl(path.join(path.dirname(file), 'variables.tf'))).variable[m[1]!][0].default;
      const pkg = /^\$\{var\.(\w+)\}$/.exec(call.package_path);
      assert.ok(pkg, `${rel(file)} module ${name}: package_path comes from a variable`);
      out.push({
        where: `${rel(file)} module ${name}`,
        dir: path.dirname(file),
        call,
        handler,
        packageVar: pkg[1]!,
      });
    }
  }
  return out;
}

const builtBy = () => new Map(Object.entries(LAMBDAS).map(([name, fn]) => [handlerSetting(fn), name]));

test('every Lambda handler a function names exists in the build output; the bundles read their secrets from Secrets Manager and answer API Gateway v2, ALB and EventBridge events', async (t) => {
  // The one aws_lambda_function is the shared module's; the functions are calls of it.
  const resources = await blocks('resource', 'aws_lambda_function');
  assert.deepEqual(
    resources.map(([file]) => rel(file)),
    [path.join('infra', 'terraform', 'modules', 'function', 'main.tf')],
  );
  assert.equal(resources[0]![2].handler, expr('var.handler'));
  assert.match(resources[0]![2].runtime, /var\.runtime/);
  const calls = await functionCalls();
  const byName = builtBy();
  // Each project Lambda is deployed once, and nothing else is.
  assert.deepEqual(calls.map((c) => byName.get(c.handler)).sort(), Object.keys(LAMBDAS).sort());

  const out = mkdtempSync(path.join(os.tmpdir(), 'fg-lambda-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const db = await startTestDynamo();
  t.after(() => db.close());
  // The functions get ARNs; the bundles fetch the values (here from a local GetSecretValue).
  const AKSK_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleetgate/aksk-AbCdEf';
  const MANAGER_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:fleetgate/manager-GhIjKl';
  const AK = 'e2c9a3f4b5d6a7c8';
  const SK = 'Vq1x8Ym2Zn3Wk4Lp5Oj6Ih7Ug8Tf9Re0S';
  const sm = await startFakeSecretsManager({
    [AKSK_ARN]: `${AK}:${SK}`,
    [MANAGER_ARN]: 'Zq3v9X1kP0wR7tY2uI8oL4aS6dF5gH3jK',
  });
  t.after(() => sm.close());
  const saved = { ...process.env };
  t.after(() => {
    process.env = saved;
  });
  Object.assign(process.env, {
    FLEETGATE_DYNAMODB_ENDPOINT: db.dynamo.endpoint,
    FLEETGATE_TABLE_PREFIX: db.prefix,
    FLEETGATE_LOG_LEVEL: 'silent',
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.endpoint,
  });
  const apigw = (name: string) =>
    JSON.parse(readFileSync(path.join(root, 'test', 'fixtures', 'apigw', name), 'utf8'));
  const alb = (name: string) =>
    JSON.parse(readFileSync(path.join(root, 'test', 'fixtures', 'alb', name), 'utf8'));

  for (const fn of calls) {
    const name = byName.get(fn.handler);
    assert.ok(name, `${fn.where}: handler ${fn.handler} is built by scripts/build-lambda.mjs`);
    const source = path.join(root, LAMBDAS[name]!.source);
    assert.ok(existsSync(source), `${rel(source)} exists`);
    assert.match(readFileSync(source, 'utf8'), new RegExp(`export const ${LAMBDAS[name]!.export}\\b`));

    const built = await buildLambda(name, out);
    assert.equal(built.handler, fn.handler);
    const exportName = fn.handler.slice(fn.handler.lastIndexOf('.') + 1);
    assert.equal(
      `${fn.handler.slice(0, fn.handler.lastIndexOf('.'))}.mjs`,
      built.entry,
      'the zip holds the handler module where Lambda looks for it',
    );
    assert.ok(existsSync(built.zip));
    assert.ok(
      built.inputFiles.includes('platform/config/secrets-manager.ts'),
      `${name}: bundle reads its secrets`,
    );

    // The secrets the function is given (ARNs), as the environment of the deployed function.
    const secrets = fn.call.secrets as string;
    const env: Record<string, string> = { FLEETGATE_AKSK_SECRET_ARN: AKSK_ARN };
    if (/FLEETGATE_MANAGER_SECRET_ARN/.test(JSON.stringify(secrets)))
      env.FLEETGATE_MANAGER_SECRET_ARN = MANAGER_ARN;
    delete process.env.FLEETGATE_AKSK;
    delete process.env.FLEETGATE_MANAGER_SECRET;
    delete process.env.FLEETGATE_MANAGER_SECRET_ARN;
    delete process.env.FLEETGATE_ADMIN;
    Object.assign(process.env, env);
    const reads = sm.requests.length;
    const bundle = (await import(pathToFileURL(path.join(built.dir, built.entry)).href)) as Record<
      string,
      (
        event: unknown,
        context: unknown,
      ) => Promise<Record<string, unknown> & { statusCode: number; body: string }>
    >;
    // Read at cold start (module init), before any invocation.
    assert.equal(sm.requests.length - reads, Object.keys(env).length, `${name}: secrets read at init`);
    assert.equal(process.env.FLEETGATE_AKSK, `${AK}:${SK}`);
    const invoke = bundle[exportName];
    assert.equal(typeof invoke, 'function', `${built.entry} exports ${exportName}`);

    if (name === 'discovery') {
      const detail = await invoke!(apigw('http-api-v2-detail.json'), {});
      assert.equal(detail.statusCode, 200);
      assert.equal(detail.body, '{"data":[],"msg":"ok"}');
      const ping = await invoke!(
        { ...apigw('http-api-v2-detail.json'), rawPath: '/ping', rawQueryString: '' },
        {},
      );
      assert.equal(ping.body, '{"message":"pong"}');
      // A registration signed with the pair from Secrets Manager is accepted...
      const reg = apigw('http-api-v2-register.json');
      const signed = signRequest({
        method: 'POST',
        path: reg.rawPath,
        query: '',
        body: Buffer.from(reg.body),
        ak: AK,
        sk: SK,
      });
      const lower = Object.fromEntries(Object.entries(signed).map(([k, v]) => [k.toLowerCase(), v]));
      assert.equal((await invoke!({ ...reg, headers: { ...reg.headers, ...lower } }, {})).statusCode, 200);
      // ...and stock agents' plain-HTTP request through the 8088 balancer sees it.
      const viaAlb = await invoke!(alb('detail.json'), {});
      assert.equal(viaAlb.statusCode, 200);
      assert.equal(viaAlb.statusDescription, '200 OK');
      assert.match(viaAlb.body, /"ip":"10\.0\.0\.1","port":6751/);
      // The balancer's health check path.
      const health = await invoke!({ ...alb('detail.json'), path: '/ping', queryStringParameters: {} }, {});
      assert.deepEqual([health.statusCode, health.body], [200, '{"message":"pong"}']);
    } else if (name === 'manager') {
      // Without the manager secret the cold start fails; with it from Secrets Manager, sign-in works.
      process.env.FLEETGATE_ADMIN = 'lambda-admin:lambda-password-1';
      const login = await invoke!(apigw('manager-http-api-v2-login.json'), {});
      assert.equal(login.statusCode, 200, login.body);
      assert.match(JSON.parse(login.body).data.token, /^fgs1\./);
    } else if (name === 'dispatcher') {
      const event = JSON.parse(
        readFileSync(path.join(root, 'test', 'fixtures', 'eventbridge', 'scheduled-event.json'), 'utf8'),
      );
      const run = (await invoke!(event, {
        getRemainingTimeInMillis: () => 60_000,
        awsRequestId: 'r-1',
      })) as unknown as {
        stopped: string;
        ticks: number;
      };
      assert.equal(run.stopped, 'idle', JSON.stringify(run));
      assert.ok(run.ticks >= 1);
    }
  }

  // The examples deploy the zips npm run build:lambda writes.
  // (The load fleet deploys no function: it runs the simulator.)
  const examples = tfFiles(path.join(tfRoot, 'examples')).filter(
    (f) => f.endsWith('main.tf') && !f.includes(`${path.sep}load-fleet${path.sep}`),
  );
  assert.ok(examples.length >= 2);
  for (const file of examples) {
    const [mod] = (await hcl(file)).module.fleetgate as Hcl[];
    for (const name of Object.keys(LAMBDAS)) {
      assert.match(
        mod?.[`${name}_package_path`],
        new RegExp(`/dist/lambda/${name}\\.zip$`),
        `${rel(file)} ${name}`,
      );
    }
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

/**
 * What one source module sends to DynamoDB: each `new …Command(` with its IAM action, the table
 * expression it names (`TableName: x` or `RequestItems: { [x]: … }`, the first within the call)
 * and the `IndexName` it queries. An unknown command of a DynamoDB module fails, so a new
 * operation cannot slip past the IAM checks.
 */
function commandsSent(
  file: string,
  text: string,
): Array<{ command: string; action: string; table: string | undefined; index: string | undefined }> {
  const out = [];
  const starts = [...text.matchAll(/new (\w+Command)\(/g)];
  for (const [i, m] of starts.entries()) {
    const action = SDK_TO_ACTION[m[1]!];
    if (!action) {
      if (/Command$/.test(m[1]!) && file !== 'platform/store/dynamo-client.ts' && /dynamodb/i.test(text))
        assert.fail(`${file} sends ${m[1]}: add it to SDK_TO_ACTION`);
      continue;
    }
    const call = text.slice(m.index, Math.min(starts[i + 1]?.index ?? text.length, m.index + 600));
    const table = /TableName: ([\w.]+)|RequestItems: \{ \[([\w.]+)\]/.exec(call);
    out.push({
      command: m[1]!,
      action,
      table: table ? (table[1] ?? table[2]) : undefined,
      index: /IndexName: '(\w+)'/.exec(call)?.[1],
    });
  }
  // The shared BatchWriteItem helper (platform/store/batch-write.ts) sends for its caller: each
  // call `batchWrite(All)?(client, table, …)` is a BatchWriteItem on that table, counted here.
  if (file !== BATCH_WRITE_HELPER) {
    for (const m of text.matchAll(/\bbatchWrite(?:All)?\(\s*([\w.]+),\s*([\w.]+),/g))
      out.push({ command: 'batchWrite', action: 'dynamodb:BatchWriteItem', table: m[2], index: undefined });
  }
  return out;
}

/** Sends BatchWriteItem for its callers; commandsSent counts each call at the call site. */
const BATCH_WRITE_HELPER = 'platform/store/batch-write.ts';

/**
 * The DynamoDB grants of a policy document's statements, per table key (`var.table_arns[...]`,
 * the registry as `registry`) and index (`var.index_arns[...][...]`); indexes are only queried,
 * each belongs to the table it is named under, and the registry is only read.
 */
function dynamoGrants(
  who: string,
  stmts: Hcl[],
): { actions: Set<string>; tables: Map<string, Set<string>>; indexes: Set<string> } {
  const indexTable = new Map(
    (Object.entries(TABLES) as Array<[string, TableDef]>).flatMap(([key, def]) =>
      (def.indexes ?? []).map((ix) => [ix.name, key] as const),
    ),
  );
  const actions = new Set<string>();
  const tables = new Map<string, Set<string>>();
  const indexes = new Set<string>();
  for (const st of stmts) {
    const acts = (st.actions as string[]).filter((a) => a.startsWith('dynamodb:'));
    if (acts.length === 0) continue;
    for (const a of acts) actions.add(a);
    for (const r of st.resources as string[]) {
      const t = /var\.table_arns\["(\w+)"\]/.exec(r)?.[1];
      const ix = /var\.index_arns\["(\w+)"\]\["(\w+)"\]/.exec(r);
      const on = (table: string) => {
        const set = tables.get(table) ?? new Set<string>();
        for (const a of acts) set.add(a);
        tables.set(table, set);
      };
      if (t) on(t);
      else if (ix) {
        assert.equal(indexTable.get(ix[2]!), ix[1], `${who}: index ${ix[2]} belongs to ${ix[1]}`);
        assert.deepEqual(st.actions, ['dynamodb:Query'], `${who}: indexes are only queried`);
        indexes.add(ix[2]!);
      } else if (r === expr('var.registry_table_arn')) {
        on('registry');
        assert.deepEqual(st.actions, ['dynamodb:Query'], `${who}: the registry is only read`);
      } else assert.fail(`${who}: resource ${r}`);
    }
  }
  return { actions, tables, indexes };
}

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

  // Discovery gets exactly what discovery/registry-store.ts sends, on the registry table.
  const storeSource = readFileSync(path.join(root, 'gateway', 'discovery', 'registry-store.ts'), 'utf8');
  const used = new Set(commandsSent('discovery/registry-store.ts', storeSource).map((c) => c.action));
  assert.ok(used.size > 0);
  const discovery = dynamo.filter((s) => s.where.includes(path.join('modules', 'discovery')));
  assert.deepEqual(new Set(discovery.flatMap((s) => s.actions)), used);
  assert.deepEqual(
    discovery.flatMap((s) => s.resources),
    [expr('var.registry_table_arn')],
  );
  const rootDoc = await hcl(path.join(tfRoot, 'main.tf'));
  assert.equal(rootDoc.module.discovery[0].registry_table_arn, expr('module.tables.table_arns["registry"]'));
  assert.ok('registry' in TABLES);

  // The manager API and the dispatcher: what each bundle sends, granted; nothing else granted.
  // Action by action over the bundled modules (the per-table split is the statements' comments'),
  // index by index over the IndexNames the bundled modules query, and tables within each
  // function's own set.
  assert.equal(rootDoc.module.manager[0].table_arns, expr('module.tables.table_arns'));
  assert.equal(rootDoc.module.manager[0].index_arns, expr('module.tables.index_arns'));
  const managerTf = await hcl(path.join(tfRoot, 'modules', 'manager', 'main.tf'));
  const docs = managerTf.data.aws_iam_policy_document as Record<string, Hcl[]>;
  const calls = (await functionCalls()).filter((c) => c.dir.endsWith(path.join('modules', 'manager')));
  const out = mkdtempSync(path.join(os.tmpdir(), 'fg-iam-'));
  try {
    const allowed: Record<string, string[]> = {
      manager: [
        'users',
        'apikeys',
        'audit',
        'agents',
        'tags',
        'configs',
        'registry',
        'tasks',
        'subtasks',
        'chunks',
        'connections',
      ],
      dispatcher: ['tasks', 'subtasks', 'chunks', 'agents', 'tags', 'configs'],
    };
    // Sent by a bundled module the function never calls: reasons, so the list stays short.
    const bundledNotCalled: Record<string, Record<string, string>> = {
      manager: {},
      dispatcher: {
        'dynamodb:PutItem': "tags.ts's tag counters (PutItem on configs), bundled with its tag reader",
        'dynamodb:DeleteItem': "tags.ts's tag counters (DeleteItem on configs), bundled with its tag reader",
      },
    };
    for (const fn of calls) {
      const name = builtBy().get(fn.handler)!;
      assert.ok(name in allowed, `${fn.where}: ${fn.handler}`);
      const docName = /^\$\{data\.aws_iam_policy_document\.(\w+)\.json\}$/.exec(fn.call.policy_json)?.[1];
      assert.ok(docName && docs[docName], `${fn.where}: policy from a policy document of modules/manager`);
      const stmts = docs[docName]![0]!.statement as Hcl[];
      const grants = dynamoGrants(name, stmts);
      const granted = grants.actions;

      const built = await buildLambda(name, out);
      const sources = built.inputFiles
        .filter((f) => /^(gateway|workers)\/.*\.ts$/.test(f))
        .map((f) => [f, readFileSync(path.join(root, f), 'utf8')] as const);
      const sent = new Set<string>();
      const indexes = new Set<string>();
      for (const [f, text] of sources) {
        for (const c of commandsSent(f, text)) sent.add(c.action);
        for (const m of text.matchAll(/IndexName: '(\w+)'/g)) indexes.add(m[1]!);
      }
      const exempt = bundledNotCalled[name]!;
      assert.deepEqual(
        [...granted].filter((a) => !sent.has(a)),
        [],
        `${name}: every granted action is sent by the bundle`,
      );
      assert.deepEqual(
        [...sent].filter((a) => !granted.has(a) && !(a in exempt)).sort(),
        [],
        `${name}: every action the bundle sends is granted`,
      );
      for (const a of Object.keys(exempt))
        assert.ok(sent.has(a) && !granted.has(a), `${name}: exemption ${a} is current`);

      const tables = new Set(grants.tables.keys());
      const grantedIndexes = grants.indexes;
      assert.deepEqual(
        [...tables].filter((t) => !allowed[name]!.includes(t)),
        [],
        `${name}: only its tables`,
      );
      assert.deepEqual(
        [...grantedIndexes].sort(),
        [...indexes].sort(),
        `${name}: exactly the indexes it queries`,
      );
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }

  // Managed policies attached: only AWS's service-role policies for ECS and Lambda plumbing.
  for (const [file, name, att] of await blocks('resource', 'aws_iam_role_policy_attachment')) {
    assert.match(
      att.policy_arn,
      /:policy\/service-role\/(AmazonECSTaskExecutionRolePolicy|AWSLambdaVPCAccessExecutionRole|AmazonEC2ContainerServiceforEC2Role)\}?$/,
      `${rel(file)} ${name}`,
    );
  }
});

/**
 * The gateway's DynamoDB path on ECS: `fleetgate gateway` with AWS_REGION and neither discovery
 * nor the manager in the process (cli/serve-command.ts). Per module that sends for it:
 * the factory serve-command.ts hands the store client (`via`), the function of the module that
 * path runs (`entry`), the table each table expression of the module names, what the module
 * sends that the gateway never calls (`table:action` -> reason), and what it imports from other
 * modules that send (names that send nothing themselves).
 */
const GATEWAY_STORE_MODULES: Record<
  string,
  {
    via: string;
    entry: string;
    tables: Record<string, string>;
    notCalled?: Record<string, string>;
    importsNotSending?: Record<string, string[]>;
  }
> = {
  'manager/agent-status-writer.ts': {
    via: 'createHeartbeatWriter',
    entry: 'createHeartbeatWriter',
    tables: { agentsTable: 'agents', tagsTable: 'tags', configs: 'configs' },
    importsNotSending: { 'platform/store/fleet-items.ts': ['configsTable', 'counterShard', 'FLEET_SCOPE'] },
  },
  'manager/configs.ts': {
    via: 'createStoreConfigSource',
    entry: 'createStoreConfigSource',
    tables: { table: 'configs', tagsTable: 'tags' },
    notCalled: { 'configs:dynamodb:BatchWriteItem': "ConfigStore.replace: the manager API's config writes" },
    // FLEET_SCOPE.agentNames is written only by ConfigStore.replace (the BatchWrite above).
    importsNotSending: { 'platform/store/fleet-items.ts': ['FLEET_SCOPE'] },
  },
  'manager/store/connection-history-store.ts': {
    via: 'createConnectionRecorder',
    entry: 'createConnectionRecorder',
    tables: { table: 'connections', "tableName(store.prefix, 'connections')": 'connections' },
    notCalled: { 'connections:dynamodb:Query': "connectionHistoryOf: the manager API's read" },
  },
  // result-sink.ts deliverDirect -> createTaskService(contextFrom(...)).applyResults.
  'manager/tasks/results.ts': {
    via: 'contextFrom',
    entry: 'applyResults',
    tables: { 'ctx.tables.subtasks': 'subtasks', 'ctx.tables.chunks': 'chunks' },
    // headId is a pure key function; model.ts's queryHeads (a Query) is not reached from here.
    importsNotSending: { 'manager/tasks/model.ts': ['headId'] },
  },
};

test('IAM: the gateway task role is granted exactly what the gateway sends to DynamoDB, table by table', async () => {
  // What the gateway role does with its store: the three factories, nothing else gets the client.
  const serve = readFileSync(path.join(root, 'gateway', 'cli', 'serve-command.ts'), 'utf8');
  assert.equal([...serve.matchAll(/opened\??\.client/g)].length, 1, 'one store client of the gateway role');
  assert.deepEqual(
    [...serve.matchAll(/(\w+)\(\{\s*client: storeClient\b/g)].map((m) => m[1]).sort(),
    Object.values(GATEWAY_STORE_MODULES)
      .map((m) => m.via)
      .sort(),
    'serve-command.ts hands its store client to exactly these factories',
  );
  assert.match(serve, /deliverDirect\(\s*createTaskService\(\s*contextFrom\(\{\s*client: storeClient/);
  const sink = readFileSync(path.join(root, 'gateway', 'manager', 'tasks', 'result-sink.ts'), 'utf8');
  assert.match(sink, /deliverDirect\(service: Pick<TaskService, 'applyResults'>\)/, 'only applyResults');
  const service = readFileSync(path.join(root, 'gateway', 'manager', 'tasks', 'service.ts'), 'utf8');
  assert.match(service, /applyResults: \(items\) => applyResults\(ctx, /, 'which is results.ts');
  // No registry: the gateway registers over the discovery API (HTTPS); a registry store is only
  // opened when discovery runs in the same process.
  assert.equal([...serve.matchAll(/createRegistryStore\(/g)].length, 1);
  const registry = serve.indexOf('createRegistryStore(');
  assert.ok(
    serve.lastIndexOf('if (withDiscovery) {', registry) > serve.lastIndexOf('\n  }\n', registry),
    'the registry store is opened only with discovery in the process',
  );

  // What those modules send, per table, and the indexes they query.
  const sent = new Map<string, Set<string>>();
  const indexes = new Set<string>();
  const exempt = new Map<string, string>();
  for (const [file, m] of Object.entries(GATEWAY_STORE_MODULES)) {
    const text = readFileSync(path.join(root, file), 'utf8');
    assert.match(text, new RegExp(`export (async )?function ${m.entry}\\b`), `${file}: ${m.entry}`);
    // Nothing it imports sends for it, unless listed above (then the names it imports send nothing).
    for (const im of text.matchAll(/^import (type )?\{([^}]*)\} from '(\.[^']+)\.js';/gm)) {
      if (im[1]) continue;
      const target = path.join(path.dirname(file), `${im[3]}.ts`);
      if (target === BATCH_WRITE_HELPER) continue; // its sends are counted at the call sites
      const targetText = readFileSync(path.join(root, target), 'utf8');
      if (commandsSent(target, targetText).length === 0) continue;
      const names = im[2]!
        .split(',')
        .map((n) => n.trim())
        .filter((n) => n !== '' && !n.startsWith('type '));
      assert.deepEqual(
        names.filter((n) => !m.importsNotSending?.[target]?.includes(n)),
        [],
        `${file} imports from ${target}, which sends to DynamoDB: list what it imports (and what that sends)`,
      );
    }
    for (const c of commandsSent(file, text)) {
      const table = c.table === undefined ? undefined : m.tables[c.table];
      assert.ok(table, `${file}: ${c.command} on ${c.table}: name its table in GATEWAY_STORE_MODULES`);
      if (c.index !== undefined) {
        assert.equal(c.action, 'dynamodb:Query', `${file}: ${c.index}`);
        indexes.add(`${table}.${c.index}`);
        continue;
      }
      const key = `${table}:${c.action}`;
      if (m.notCalled?.[key]) {
        exempt.set(key, m.notCalled[key]!);
        continue;
      }
      const set = sent.get(table) ?? new Set<string>();
      set.add(c.action);
      sent.set(table, set);
    }
    for (const key of Object.keys(m.notCalled ?? {}))
      assert.ok(exempt.has(key), `${file}: exemption ${key} is current`);
  }
  // Sanity: the writes the review named are found.
  assert.ok(sent.get('agents')?.has('dynamodb:BatchWriteItem'));
  assert.ok(sent.get('configs')?.has('dynamodb:UpdateItem'), 'the fleet#counter ADD');
  assert.ok(indexes.has('subtasks.byToken'));

  const gw = await hcl(path.join(tfRoot, 'modules', 'gateways', 'main.tf'));
  const stmts = gw.data.aws_iam_policy_document.task[0].statement as Hcl[];
  assert.equal(gw.resource.aws_iam_role_policy.task[0].role, expr('aws_iam_role.task[0].id'));
  assert.equal(
    gw.resource.aws_ecs_task_definition.this[0].task_role_arn,
    expr('aws_iam_role.task[0].arn'),
    "the policy is the task role's",
  );
  const grants = dynamoGrants('gateway task', stmts);
  const asObject = (m: Map<string, Set<string>>) =>
    Object.fromEntries(
      [...m].map(([t, a]) => [t, [...a].sort()]).sort(([a], [b]) => String(a).localeCompare(String(b))),
    );
  assert.deepEqual(
    asObject(grants.tables),
    asObject(sent),
    'the gateway task role: on each table exactly the actions the gateway sends there, no other table',
  );
  const indexTable = new Map(
    (Object.entries(TABLES) as Array<[string, TableDef]>).flatMap(([key, def]) =>
      (def.indexes ?? []).map((ix) => [ix.name, key] as const),
    ),
  );
  assert.deepEqual(
    [...grants.indexes].map((ix) => `${indexTable.get(ix)}.${ix}`).sort(),
    [...indexes].sort(),
    'exactly the indexes the gateway queries',
  );
  assert.ok(!grants.tables.has('registry'), 'no registry table');

  const rootDoc = await hcl(path.join(tfRoot, 'main.tf'));
  assert.equal(rootDoc.module.gateways[0].table_arns, expr('module.tables.table_arns'));
  assert.equal(rootDoc.module.gateways[0].index_arns, expr('module.tables.index_arns'));
  assert.equal(rootDoc.module.gateways[0].table_prefix, expr('var.table_prefix'));
  assert.equal(rootDoc.module.tables[0].table_prefix, expr('var.table_prefix'));
  // The gateway opens AWS's DynamoDB (AWS_REGION) and never creates tables there.
  assert.match(gw.locals[0].environment, /AWS_REGION\s*=\s*data\.aws_region\.current\.id/);
  assert.match(serve, /openStore\(config, \{ logger, ensure: false \}\)/);
  assert.match(
    serve,
    /config\.dynamodbEndpoint !== undefined \? \{ ensurePrefix: config\.tablePrefix \} : \{\}/,
  );
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

test("the gateway task's environment is docs/environment.md's, and its ports, drain and limits match the code", async () => {
  const known = new Set(ENV_DOC.map(([name]) => name));
  const gateways = readFileSync(path.join(tfRoot, 'modules', 'gateways', 'main.tf'), 'utf8');
  const named = new Set([...gateways.matchAll(/\b(FLEETGATE_[A-Z_]+)\b/g)].map((m) => m[1]!));
  assert.ok(named.size >= 10);
  for (const name of named)
    assert.ok(known.has(name), `${name} is a documented variable (platform/config/env.ts ENV_DOC)`);
  for (const required of [
    'FLEETGATE_MAX_CONNECTIONS',
    'FLEETGATE_PKI_DIR',
    'FLEETGATE_AKSK',
    'FLEETGATE_KAFKA_BROKERS',
    'FLEETGATE_KAFKA_TLS',
    'FLEETGATE_SD_ADDRS',
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
  // The drain: 20 s grace in cli/serve-command.ts, within the stop timeout.
  const serve = readFileSync(path.join(root, 'gateway', 'cli', 'serve-command.ts'), 'utf8');
  const grace = Number(/SHUTDOWN_GRACE_MS = ([\d_]+)/.exec(serve)?.[1]?.replace(/_/g, ''));
  const vars = (await hcl(path.join(tfRoot, 'modules', 'gateways', 'variables.tf'))).variable;
  assert.ok(
    vars.stop_timeout[0].default * 1000 >= grace + 20_000,
    'stop timeout covers the grace plus the sink flush',
  );
  // The connection limit is set explicitly from the capacity model (sizing.tf; the examples'
  // terraform test checks its value), never left to the gateway's memory-based default.
  assert.match(doc.locals[0].environment, /FLEETGATE_MAX_CONNECTIONS\s*=\s*tostring\(var\.max_connections\)/);
});

test('secrets: the functions get Secrets Manager ARNs, never values; the gateways get them from ECS', async () => {
  // No variable that carries a secret value is assigned anywhere in the configuration.
  for (const file of tfFiles(tfRoot)) {
    const text = readFileSync(file, 'utf8');
    assert.doesNotMatch(text, /\bFLEETGATE_(AKSK|MANAGER_SECRET)\s*=/, `${rel(file)} sets a secret value`);
    assert.doesNotMatch(
      text,
      /resource\s+"(random_password|tls_private_key|aws_secretsmanager_secret_version)"/,
      rel(file),
    );
  }
  // Each secret a function is given is one of the variables the bundles resolve.
  const fnMain = await hcl(path.join(tfRoot, 'modules', 'function', 'main.tf'));
  assert.match(fnMain.locals[0].environment, /var\.secrets/);
  assert.deepEqual(fnMain.data.aws_iam_policy_document.secrets[0].statement[0].actions, [
    'secretsmanager:GetSecretValue',
  ]);
  assert.equal(
    fnMain.data.aws_iam_policy_document.secrets[0].statement[0].resources,
    expr('sort(values(var.secrets))'),
  );
  for (const fn of await functionCalls()) {
    for (const m of JSON.stringify(fn.call.secrets).matchAll(/\b(FLEETGATE_\w+)\s*=/g)) {
      assert.ok(
        m[1]! in SECRET_VARIABLES,
        `${fn.where}: ${m[1]} is resolved by platform/config/secrets-manager.ts`,
      );
    }
  }
  const rootDoc = await hcl(path.join(tfRoot, 'main.tf'));
  assert.equal(rootDoc.module.discovery[0].aksk_secret_arn, expr('module.secrets.aksk_secret_arn'));
  assert.equal(rootDoc.module.manager[0].aksk_secret_arn, expr('module.secrets.aksk_secret_arn'));
  assert.equal(rootDoc.module.manager[0].manager_secret_arn, expr('module.secrets.manager_secret_arn'));
  // The gateway task: FLEETGATE_AKSK from the secret (ECS `secrets`, valueFrom the ARN).
  const gw = await hcl(path.join(tfRoot, 'modules', 'gateways', 'main.tf'));
  assert.match(gw.locals[0].secrets, /name = "FLEETGATE_AKSK", valueFrom = var\.aksk_secret_arn/);
  // Secrets Manager is reached through a VPC interface endpoint by default.
  const net = (await hcl(path.join(tfRoot, 'modules', 'network', 'variables.tf'))).variable;
  assert.deepEqual(net.interface_endpoints[0].default, ['secretsmanager']);
});

test('stock agents: an ALB listens for plain HTTP on 8088 and forwards to the discovery function', async () => {
  const doc = await hcl(path.join(tfRoot, 'modules', 'discovery', 'main.tf'));
  assert.equal(doc.locals[0].http_port, 8088);
  const listener = doc.resource.aws_lb_listener.http[0];
  assert.equal(listener.port, expr('local.http_port'));
  assert.equal(listener.protocol, 'HTTP');
  // Only the agents' paths reach the function; the rest is the balancer's 404.
  assert.equal(listener.default_action[0].type, 'fixed-response');
  const rule = doc.resource.aws_lb_listener_rule.agents[0];
  assert.equal(rule.action[0].target_group_arn, expr('aws_lb_target_group.function[0].arn'));
  assert.deepEqual(rule.condition[1].path_pattern[0].values, ['/registry/detail', '/ping']);
  const tg = doc.resource.aws_lb_target_group.function[0];
  assert.equal(tg.target_type, 'lambda');
  // The adapter answers in the mode the target group sends; the health check is Elkeid's /ping.
  assert.equal(tg.health_check[0].path, '/ping');
  assert.equal(doc.resource.aws_lb.http[0].load_balancer_type, 'application');
  const perm = doc.resource.aws_lambda_permission.alb[0];
  assert.equal(perm.principal, 'elasticloadbalancing.amazonaws.com');
  assert.equal(perm.source_arn, expr('aws_lb_target_group.function[0].arn'));
  assert.equal(
    doc.resource.aws_lb_target_group_attachment.function[0].target_id,
    expr('module.function.function_arn'),
  );
  // The gateways register with the HTTPS API in both modes (the root tests/options.tftest.hcl plans it).
  const rootDoc = await hcl(path.join(tfRoot, 'main.tf'));
  assert.match(rootDoc.locals[0].gateway_discovery_addrs, /module\.discovery\.api_endpoint/);
  assert.equal(rootDoc.module.gateways[0].discovery_addrs, expr('local.gateway_discovery_addrs'));
});

test('the dispatcher runs every minute with reserved concurrency; the manager has its API', async () => {
  const doc = await hcl(path.join(tfRoot, 'modules', 'manager', 'main.tf'));
  const vars = (await hcl(path.join(tfRoot, 'modules', 'manager', 'variables.tf'))).variable;
  assert.equal(vars.dispatcher_schedule[0].default, 'rate(1 minute)');
  assert.equal(
    doc.resource.aws_cloudwatch_event_rule.dispatcher[0].schedule_expression,
    expr('var.dispatcher_schedule'),
  );
  assert.equal(
    doc.resource.aws_cloudwatch_event_target.dispatcher[0].arn,
    expr('module.dispatcher.function_arn'),
  );
  assert.equal(doc.resource.aws_lambda_permission.schedule[0].principal, 'events.amazonaws.com');
  assert.equal(doc.module.dispatcher[0].reserved_concurrency, expr('var.dispatcher_reserved_concurrency'));
  assert.ok(vars.dispatcher_reserved_concurrency[0].default >= 1);
  // A run starts no tick in its last DEFAULT_RESERVE_MS (one gateway call's timeout plus a
  // margin): the timeout leaves at least 30 s of ticks beyond it, and no allowed value leaves none.
  assert.ok(
    vars.dispatcher_timeout[0].default * 1000 - DEFAULT_RESERVE_MS >= 30_000,
    `dispatcher_timeout ${vars.dispatcher_timeout[0].default} s leaves room beyond the ${DEFAULT_RESERVE_MS} ms reserve`,
  );
  const least = Number(
    /var\.dispatcher_timeout >= (\d+)/.exec(vars.dispatcher_timeout[0].validation[0].condition)?.[1],
  );
  assert.ok(least * 1000 >= DEFAULT_RESERVE_MS + 10_000, `dispatcher_timeout's validation allows ${least} s`);
  assert.match(doc.module.dispatcher[0].timeout, /var\.dispatcher_timeout/);
  // The manager API is behind its own balancer (private by default), not a public HTTP API.
  assert.equal(doc.module.api[0].create_http_api, false);
  assert.equal(doc.resource.aws_lb_target_group_attachment.api[0].target_id, expr('module.api.function_arn'));
  assert.equal(doc.module.dispatcher[0].create_http_api, undefined, 'the dispatcher has no API');
  // Its failures are alarmed on: a metric filter over its log group.
  const obs = await hcl(path.join(tfRoot, 'modules', 'observability', 'main.tf'));
  const filter = obs.resource.aws_cloudwatch_log_metric_filter.dispatch_failures[0];
  assert.equal(filter.log_group_name, expr('var.dispatcher_log_group_name'));
  assert.match(filter.pattern, /command batch failed/);
  const dispatcher = readFileSync(path.join(root, 'gateway', 'manager', 'tasks', 'dispatcher.ts'), 'utf8');
  assert.match(dispatcher, /'command batch failed'/, 'the filter matches what the dispatcher logs');
  const rootDoc = await hcl(path.join(tfRoot, 'main.tf'));
  assert.equal(
    rootDoc.module.observability[0].dispatcher_log_group_name,
    expr('module.manager.dispatcher_log_group_name'),
  );
});

test('Kafka: the gateways speak TLS to the brokers, which accept TLS only by default', async () => {
  const kafkaVars = (await hcl(path.join(tfRoot, 'modules', 'kafka', 'variables.tf'))).variable;
  assert.equal(kafkaVars.client_broker_encryption[0].default, 'TLS');
  const kafka = await hcl(path.join(tfRoot, 'modules', 'kafka', 'main.tf'));
  assert.equal(
    kafka.resource.aws_msk_cluster.this[0].encryption_info[0].encryption_in_transit[0].client_broker,
    expr('var.client_broker_encryption'),
  );
  assert.match(kafka.locals[0].client_ports, /\[9094\]/);
  const rootVars = (await hcl(path.join(tfRoot, 'variables.tf'))).variable;
  assert.equal(rootVars.kafka_tls[0].default, true);
  const rootDoc = await hcl(path.join(tfRoot, 'main.tf'));
  assert.match(rootDoc.locals[0].kafka_brokers, /module\.kafka\.bootstrap_brokers_tls/);
  const gw = readFileSync(path.join(tfRoot, 'modules', 'gateways', 'main.tf'), 'utf8');
  assert.match(gw, /var\.kafka_tls \? \{ FLEETGATE_KAFKA_TLS = "1" \}/);
});
