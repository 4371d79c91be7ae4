/**
 * infra/terraform checked by what it plans, against what the code does. The root module is
 * planned by `terraform test` (infra/terraform/tests/planned.tftest.hcl: the real AWS provider,
 * offline, with the identifiers AWS assigns at creation overridden), and the planned values are
 * held against the running code:
 *
 * - every table of platform/store/schema.ts is planned with its keys, attribute types, indexes,
 *   projections, TTL and billing, encrypted, with point-in-time recovery, and no other table;
 * - every project Lambda is planned once, with a handler the built bundle exports; each bundle,
 *   given the planned environment (secrets as Secrets Manager ARNs, read from a local
 *   GetSecretValue at cold start), answers API Gateway v2, ALB and EventBridge events against
 *   dynalite, and every DynamoDB call it makes (seen on the wire) is granted by its planned role;
 * - IAM: no DynamoDB wildcard; each role is granted no action its bundle never sends, within its
 *   own tables, exactly the indexes it queries; the gateway task role, table by table, exactly
 *   what a real `fleetgate gateway` process sends through a connect / config / task result /
 *   load-control / disconnect cycle;
 * - the gateway task's environment is docs/environment.md's, its connection limit the sizing's;
 *   the 8088 balancer, the dispatcher's schedule, its failure alarm (matched against what the
 *   dispatcher really logs) and Kafka TLS are planned as docs/deploy.md says;
 * - the terraform-aws-modules conventions (parsed HCL): every module has main/variables/outputs/
 *   versions, every variable a type and a description, every output a description.
 *
 * `terraform fmt -check`, validate, the mocked plans of the examples and checkov run in
 * `npm run check:infra` (infra/tools.mjs).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULT_RESERVE_MS } from '../../manager/dispatcher-lambda.js';
import { ENV_DOC } from '../../platform/config/env.js';
import { SECRET_VARIABLES } from '../../platform/config/secrets-manager.js';
import { signRequest } from '../../platform/http/aksk.js';
import { TABLES, type TableDef, tableName, toCreateTableInput } from '../../platform/store/schema.js';
import { buildLambda, handlerSetting, LAMBDAS } from '../../scripts/build-lambda.mjs';
import { TABLES_TF_JSON, tablesTfJson } from '../../scripts/gen-tables-tf.js';
import { dispatcherFailureLog } from '../helpers/dispatcher-failure-log.js';
import { startTestDynamo } from '../helpers/dynalite.js';
import { type DynamoCall, startDynamoRecorder } from '../helpers/dynamo-recorder.js';
import { startFakeSecretsManager } from '../helpers/fake-secrets-manager.js';
import { gatewayStoreCycle } from '../helpers/gateway-store-cycle.js';
import { matchesJsonFilter } from '../helpers/log-filter.js';
import {
  dynamoGrants,
  type Plan,
  type Planned,
  plansOf,
  statementsOf,
  tableArnsOf,
  type Values,
} from '../helpers/terraform-plan.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tfRoot = path.join(root, 'infra', 'terraform');
const rel = (p: string) => path.relative(root, p);

let plan: Plan;
/** The same with gateway_processes = 2 on 2 vCPUs. */
let twoProcesses: Plan;
before(() => {
  const runs = plansOf('planned.tftest.hcl');
  const run = runs.get('internal_agents');
  assert.ok(run, `the plan of run internal_agents: ${[...runs.keys()].join(', ')}`);
  plan = run;
  const two = runs.get('two_gateway_processes');
  assert.ok(two, `the plan of run two_gateway_processes: ${[...runs.keys()].join(', ')}`);
  twoProcesses = two;
});

/** How Terraform spells the example's own directory in a path. */
const PATH_ROOT = ['$', '{path.root}'].join('');

/** The table prefix the plan uses (the root's default). */
const PREFIX = 'fleetgate-';

test('modules/tables/schema.tf.json is what scripts/gen-tables-tf.ts writes from the schema module', () => {
  const have = JSON.parse(readFileSync(TABLES_TF_JSON, 'utf8')) as unknown;
  assert.deepEqual(have, tablesTfJson(), 'stale: run npm run gen:tables');
});

test('every table of platform/store/schema.ts is planned with its keys, indexes, TTL and billing, and no other', () => {
  const planned = plan.ofType('aws_dynamodb_table');
  assert.deepEqual(planned.map((t) => t.index).sort(), Object.keys(TABLES).sort());
  for (const [key, def] of Object.entries(TABLES) as Array<[string, TableDef]>) {
    const want = toCreateTableInput(def, PREFIX);
    const t = plan.at(`module.tables.aws_dynamodb_table.this["${key}"]`).after;
    assert.equal(t.name, want.TableName, key);
    const hash = want.KeySchema?.find((k) => k.KeyType === 'HASH')?.AttributeName;
    const range = want.KeySchema?.find((k) => k.KeyType === 'RANGE')?.AttributeName ?? null;
    assert.deepEqual([t.hash_key, t.range_key], [hash, range], `${key} keys`);
    const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
    assert.deepEqual(
      (t.attribute as Values[]).map((a) => ({ name: a.name, type: a.type })).sort(byName),
      (want.AttributeDefinitions ?? [])
        .map((a) => ({ name: a.AttributeName!, type: a.AttributeType }))
        .sort(byName),
      `${key} attributes`,
    );
    assert.deepEqual(
      (t.global_secondary_index as Values[])
        .map((ix) => ({
          name: ix.name,
          hash: ix.hash_key,
          range: ix.range_key ?? null,
          projection: ix.projection_type,
          include: [...(ix.non_key_attributes ?? [])].sort(),
        }))
        .sort(byName),
      (want.GlobalSecondaryIndexes ?? [])
        .map((ix) => ({
          name: ix.IndexName!,
          hash: ix.KeySchema?.find((k) => k.KeyType === 'HASH')?.AttributeName,
          range: ix.KeySchema?.find((k) => k.KeyType === 'RANGE')?.AttributeName ?? null,
          projection: ix.Projection?.ProjectionType,
          include: [...(ix.Projection?.NonKeyAttributes ?? [])].sort(),
        }))
        .sort(byName),
      `${key} indexes`,
    );
    const ttl = ((t.ttl ?? []) as Values[]).filter((x) => x.enabled);
    assert.deepEqual(
      ttl.map((x) => x.attribute_name),
      def.ttl ? [def.ttl] : [],
      `${key} TTL attribute`,
    );
    assert.equal(t.billing_mode, def.billing, `${key} billing`);
    assert.equal(t.server_side_encryption[0].enabled, true, `${key} encrypted`);
    assert.equal(t.point_in_time_recovery[0].enabled, true, `${key} point-in-time recovery`);
  }
});

/** The planned functions: handler -> the function's planned values. */
function plannedFunctions(): Map<string, Planned> {
  const fns = plan.ofType('aws_lambda_function');
  const byHandler = new Map(fns.map((f) => [String(f.after.handler), f]));
  assert.equal(byHandler.size, fns.length, 'one function per handler');
  return byHandler;
}

/** The module path of a planned resource (`module.manager.module.api`). */
const moduleOf = (r: Planned) => r.address.slice(0, r.address.lastIndexOf('.aws_'));

/** The DynamoDB grants of a planned function's role. */
function functionGrants(fn: Planned) {
  const policy = plan.at(`${moduleOf(fn)}.aws_iam_role_policy.this["function"]`).after.policy;
  return dynamoGrants(fn.address, statementsOf(policy), tableArnsOf(plan));
}

/** The table key (platform/store/schema.ts) of a table name under `prefix`. */
function tableKey(table: string, prefix: string): string {
  const key = Object.keys(TABLES).find((k) => tableName(prefix, k as keyof typeof TABLES) === table);
  assert.ok(key, `${table} is a table of the schema`);
  return key;
}

/** Fails unless every recorded call is granted on its table (or, for an index query, its index). */
function assertCallsGranted(
  who: string,
  calls: DynamoCall[],
  prefix: string,
  grants: ReturnType<typeof functionGrants>,
) {
  for (const c of calls) {
    for (const table of c.tables) {
      const key = tableKey(table, prefix);
      if (c.index !== undefined)
        assert.ok(grants.indexes.has(`${key}.${c.index}`), `${who}: Query on ${key}.${c.index} not granted`);
      else assert.ok(grants.tables.get(key)?.has(c.action), `${who}: ${c.action} on ${key} not granted`);
    }
  }
}

test('each function is planned once with a handler its bundle exports; given the planned environment, each bundle answers its events, and every DynamoDB call it makes is granted', async (t) => {
  const fns = plannedFunctions();
  const handlers = Object.fromEntries(
    Object.entries(LAMBDAS).map(([name, fn]) => [handlerSetting(fn), name]),
  );
  assert.deepEqual(
    [...fns.keys()].sort(),
    Object.keys(handlers).sort(),
    'each project Lambda once, nothing else',
  );

  const out = mkdtempSync(path.join(os.tmpdir(), 'fg-lambda-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const db = await startTestDynamo();
  t.after(() => db.close());
  const wire = await startDynamoRecorder(db.dynamo.endpoint);
  t.after(() => wire.close());
  const AK = 'e2c9a3f4b5d6a7c8';
  const SK = 'Vq1x8Ym2Zn3Wk4Lp5Oj6Ih7Ug8Tf9Re0S';
  // The secrets at the ARNs the plan gives the functions.
  const secretArn = (name: string) =>
    String(plan.at(`module.secrets.aws_secretsmanager_secret.this["${name}"]`).after.arn);
  const sm = await startFakeSecretsManager({
    [secretArn('aksk')]: `${AK}:${SK}`,
    [secretArn('manager')]: 'Zq3v9X1kP0wR7tY2uI8oL4aS6dF5gH3jK',
  });
  t.after(() => sm.close());
  const saved = { ...process.env };
  t.after(() => {
    process.env = saved;
  });
  const fixture = (dir: string, name: string) =>
    JSON.parse(readFileSync(path.join(root, 'test', 'fixtures', dir, name), 'utf8'));

  for (const [handler, fn] of fns) {
    const name = handlers[handler]!;
    const built = await buildLambda(name, out);
    assert.equal(built.handler, handler);
    assert.equal(`${handler.slice(0, handler.lastIndexOf('.'))}.mjs`, built.entry, 'where Lambda looks');
    assert.equal(
      path.basename(String(fn.after.filename)),
      `${name}.zip`,
      `${name}: the zip build:lambda writes`,
    );

    // The planned environment, verbatim but for the store (dynalite, through the recorder).
    const planned = fn.after.environment[0].variables as Record<string, string>;
    for (const secret of ['FLEETGATE_AKSK', 'FLEETGATE_MANAGER_SECRET', 'FLEETGATE_ADMIN'])
      assert.equal(planned[secret], undefined, `${name}: ${secret} is never a value in the configuration`);
    const secretVars = Object.keys(planned).filter((v) => v.endsWith('_SECRET_ARN'));
    assert.ok(secretVars.length > 0);
    for (const v of secretVars) assert.ok(v in SECRET_VARIABLES, `${name}: ${v} is resolved at cold start`);
    // Its role may read exactly those secrets.
    const secretsPolicy = statementsOf(
      plan.at(`${moduleOf(fn)}.aws_iam_role_policy.this["secrets"]`).after.policy,
    );
    assert.deepEqual(
      secretsPolicy.flatMap((s) => s.resources).sort(),
      secretVars.map((v) => planned[v]).sort(),
      `${name}: reads its own secrets`,
    );
    for (const k of [
      'FLEETGATE_AKSK',
      'FLEETGATE_MANAGER_SECRET',
      'FLEETGATE_MANAGER_SECRET_ARN',
      'FLEETGATE_ADMIN',
    ])
      delete process.env[k];
    Object.assign(process.env, planned, {
      FLEETGATE_DYNAMODB_ENDPOINT: wire.endpoint,
      FLEETGATE_TABLE_PREFIX: db.prefix,
      FLEETGATE_LOG_LEVEL: 'silent',
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.endpoint,
    });
    if (name === 'manager') process.env.FLEETGATE_ADMIN = 'lambda-admin:lambda-password-1';
    const reads = sm.requests.length;
    const calls = wire.calls.length;
    const bundle = (await import(pathToFileURL(path.join(built.dir, built.entry)).href)) as Record<
      string,
      (event: unknown, context: unknown) => Promise<Values>
    >;
    assert.equal(sm.requests.length - reads, secretVars.length, `${name}: secrets read at init`);
    assert.equal(process.env.FLEETGATE_AKSK, `${AK}:${SK}`);
    const invoke = bundle[handler.slice(handler.lastIndexOf('.') + 1)]!;
    assert.equal(typeof invoke, 'function');
    await invokeAsDeployed(name, invoke, fixture, { AK, SK });
    const made = wire.calls.slice(calls);
    assert.ok(made.length > 0, `${name}: the invocations used the store`);
    assertCallsGranted(name, made, db.prefix, functionGrants(fn));
  }

  // The examples deploy the zips `npm run build:lambda` writes (the load fleet deploys none).
  const { parse } = createRequire(import.meta.url)('@cdktf/hcl2json') as {
    parse(filename: string, contents: string): Promise<Values>;
  };
  for (const example of ['complete', 'million-agents']) {
    const dir = path.join(tfRoot, 'examples', example);
    const doc = await parse('main.tf', readFileSync(path.join(dir, 'main.tf'), 'utf8'));
    const mod = doc.module.fleetgate[0] as Values;
    for (const name of Object.keys(LAMBDAS)) {
      const p = String(mod[`${name}_package_path`]).replace(PATH_ROOT, dir);
      assert.equal(path.resolve(p), path.join(root, 'dist', 'lambda', `${name}.zip`), `${example} ${name}`);
    }
  }
});

/** The events each function gets in a deployment, and what it must answer. */
async function invokeAsDeployed(
  name: string,
  invoke: (event: unknown, context: unknown) => Promise<Values>,
  fixture: (dir: string, name: string) => Values,
  pair: { AK: string; SK: string },
): Promise<void> {
  if (name === 'discovery') {
    const reg = fixture('apigw', 'http-api-v2-register.json');
    const signed = signRequest({
      method: 'POST',
      path: reg.rawPath,
      query: '',
      body: Buffer.from(reg.body),
      ak: pair.AK,
      sk: pair.SK,
    });
    const lower = Object.fromEntries(Object.entries(signed).map(([k, v]) => [k.toLowerCase(), v]));
    // A registration signed with the pair from Secrets Manager is accepted...
    assert.equal((await invoke({ ...reg, headers: { ...reg.headers, ...lower } }, {})).statusCode, 200);
    // ...and stock agents' plain-HTTP request through the 8088 balancer sees it.
    const viaAlb = await invoke(fixture('alb', 'detail.json'), {});
    assert.equal(viaAlb.statusCode, 200);
    assert.equal(viaAlb.statusDescription, '200 OK');
    assert.match(viaAlb.body, /"ip":"10\.0\.0\.1","port":6751/);
    const health = await invoke(
      { ...fixture('alb', 'detail.json'), path: '/ping', queryStringParameters: {} },
      {},
    );
    assert.deepEqual([health.statusCode, health.body], [200, '{"message":"pong"}']);
  } else if (name === 'manager') {
    // Sign-in works with the manager secret from Secrets Manager, through the API's balancer.
    const login = await invoke(fixture('apigw', 'manager-http-api-v2-login.json'), {});
    assert.equal(login.statusCode, 200, login.body);
    assert.match(JSON.parse(login.body).data.token, /^fgs1\./);
  } else {
    const run = await invoke(fixture('eventbridge', 'scheduled-event.json'), {
      getRemainingTimeInMillis: () => 60_000,
      awsRequestId: 'r-1',
    });
    assert.equal(run.stopped, 'idle', JSON.stringify(run));
    assert.ok(run.ticks >= 1);
  }
}

/** DynamoDB SDK command -> the IAM action it needs. */
const SDK_TO_ACTION: Record<string, string> = {
  Query: 'dynamodb:Query',
  Scan: 'dynamodb:Scan',
  Get: 'dynamodb:GetItem',
  GetItem: 'dynamodb:GetItem',
  Put: 'dynamodb:PutItem',
  PutItem: 'dynamodb:PutItem',
  Update: 'dynamodb:UpdateItem',
  UpdateItem: 'dynamodb:UpdateItem',
  Delete: 'dynamodb:DeleteItem',
  DeleteItem: 'dynamodb:DeleteItem',
  BatchWrite: 'dynamodb:BatchWriteItem',
  BatchWriteItem: 'dynamodb:BatchWriteItem',
  BatchGet: 'dynamodb:BatchGetItem',
  BatchGetItem: 'dynamodb:BatchGetItem',
};

/**
 * What a bundle can send at all: the DynamoDB commands its project sources construct and the
 * indexes they name (esbuild's list of bundled inputs; wherever the code lives). The least
 * privilege side of the grants: nothing is granted that no bundled code can ask for.
 */
function bundleCanSend(inputFiles: string[]): { actions: Set<string>; indexes: Set<string> } {
  const actions = new Set<string>();
  const indexes = new Set<string>();
  for (const f of inputFiles.filter((x) => x.endsWith('.ts') && !x.includes('node_modules'))) {
    const text = readFileSync(path.join(root, f), 'utf8');
    if (!/@aws-sdk\/(lib|client)-dynamodb/.test(text)) continue;
    for (const m of text.matchAll(/new (\w+?)(?:Item)?Command\(/g)) {
      const action = SDK_TO_ACTION[m[1]!];
      if (action) actions.add(action);
    }
    for (const m of text.matchAll(/IndexName: '(\w+)'/g)) indexes.add(m[1]!);
  }
  return { actions, indexes };
}

test('IAM: DynamoDB granted action by action on the stack tables only; no function is granted what its bundle cannot send', async (t) => {
  // No wildcard and no foreign resource anywhere (dynamoGrants fails on either).
  const tableArns = tableArnsOf(plan);
  const policies = plan.ofType('aws_iam_role_policy');
  let dynamoRoles = 0;
  for (const p of policies) {
    // The flow logs' role names its log group by the created group's ARN (known after apply).
    if (p.address === 'module.network.aws_iam_role_policy.flow[0]') continue;
    const stmts = statementsOf(p.after.policy);
    const g = dynamoGrants(p.address, stmts, tableArns);
    if (g.tables.size + g.indexes.size > 0) dynamoRoles++;
    for (const s of stmts)
      assert.ok(!s.actions.some((a) => /^dynamodb:.*\*/.test(a)), `${p.address}: ${s.actions}`);
  }
  assert.equal(dynamoRoles, 4, 'discovery, manager API, dispatcher and the gateway task use DynamoDB');
  // Managed policies attached: only AWS's service-role policies for ECS and Lambda plumbing.
  for (const att of plan.ofType('aws_iam_role_policy_attachment')) {
    assert.match(
      String(att.after.policy_arn),
      /:policy\/service-role\/(AmazonECSTaskExecutionRolePolicy|AWSLambdaVPCAccessExecutionRole|AmazonEC2ContainerServiceforEC2Role)$/,
      att.address,
    );
  }

  const allowed: Record<string, string[]> = {
    discovery: ['registry'],
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
  const out = mkdtempSync(path.join(os.tmpdir(), 'fg-iam-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const handlers = Object.fromEntries(
    Object.entries(LAMBDAS).map(([name, fn]) => [handlerSetting(fn), name]),
  );
  for (const [handler, fn] of plannedFunctions()) {
    const name = handlers[handler]!;
    const grants = functionGrants(fn);
    const can = bundleCanSend((await buildLambda(name, out)).inputFiles);
    const granted = new Set([...grants.tables.values()].flatMap((s) => [...s]));
    assert.deepEqual(
      [...granted].filter((a) => !can.actions.has(a)),
      [],
      `${name}: granted but never sent`,
    );
    assert.deepEqual(
      [...grants.tables.keys()].filter((k) => !allowed[name]!.includes(k)),
      [],
      `${name}: only its tables`,
    );
    assert.deepEqual(
      [...grants.indexes].map((ix) => ix.split('.')[1]).filter((ix) => !can.indexes.has(ix!)),
      [],
      `${name}: granted indexes it never queries`,
    );
  }
});

test('IAM: the gateway task role is granted, table by table, exactly what a gateway process sends', async (t) => {
  const policy = plan.at('module.gateways.aws_iam_role_policy.task[0]').after.policy;
  const grants = dynamoGrants('gateway task', statementsOf(policy), tableArnsOf(plan));
  const { calls, prefix } = await gatewayStoreCycle(t);
  const sent = new Map<string, Set<string>>();
  const queried = new Set<string>();
  for (const c of calls) {
    for (const table of c.tables) {
      const key = tableKey(table, prefix);
      if (c.index !== undefined) {
        queried.add(`${key}.${c.index}`);
        continue;
      }
      const set = sent.get(key) ?? new Set<string>();
      set.add(c.action);
      sent.set(key, set);
    }
  }
  const asObject = (m: Map<string, Set<string>>) =>
    Object.fromEntries(
      [...m].map(([k, v]) => [k, [...v].sort()]).sort(([a], [b]) => String(a).localeCompare(String(b))),
    );
  assert.deepEqual(
    asObject(grants.tables),
    asObject(sent),
    'on each table exactly the actions the gateway sends',
  );
  assert.deepEqual(
    [...grants.indexes].sort(),
    [...queried].sort(),
    'exactly the indexes the gateway queries',
  );
  assert.ok(!grants.tables.has('registry'), 'no registry: the gateways register over the discovery API');
});

test('every module has main, variables, outputs and versions; every variable a type and a description; every output a description', async () => {
  const { parse } = createRequire(import.meta.url)('@cdktf/hcl2json') as {
    parse(filename: string, contents: string): Promise<Values>;
  };
  const tfFiles = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const p = path.join(dir, name);
      if (name.startsWith('.')) return [];
      if (statSync(p).isDirectory()) return tfFiles(p);
      return p.endsWith('.tf') ? [p] : [];
    });
  const moduleDirs = [
    tfRoot,
    ...['modules', 'examples'].flatMap((d) =>
      readdirSync(path.join(tfRoot, d)).map((name) => path.join(tfRoot, d, name)),
    ),
  ];
  for (const dir of moduleDirs) {
    for (const f of ['main.tf', 'variables.tf', 'outputs.tf', 'versions.tf'])
      assert.ok(existsSync(path.join(dir, f)), `${rel(dir)}/${f}`);
    const versions = await parse('versions.tf', readFileSync(path.join(dir, 'versions.tf'), 'utf8'));
    assert.ok(versions.terraform?.[0]?.required_version, `${rel(dir)}: required_version`);
    assert.ok(versions.terraform[0].required_providers?.[0]?.aws, `${rel(dir)}: aws provider constraint`);
  }
  let variables = 0;
  let outputs = 0;
  for (const file of tfFiles(tfRoot)) {
    const doc = await parse(path.basename(file), readFileSync(file, 'utf8'));
    for (const [name, [v = {}]] of Object.entries<Values[]>(doc.variable ?? {})) {
      variables++;
      assert.ok(v.type, `${rel(file)}: variable ${name} has a type`);
      assert.ok(
        typeof v.description === 'string' && v.description.length > 10,
        `${rel(file)}: ${name} description`,
      );
      assert.equal(
        path.basename(file),
        'variables.tf',
        `${rel(file)}: variable ${name} belongs in variables.tf`,
      );
    }
    for (const [name, [o = {}]] of Object.entries<Values[]>(doc.output ?? {})) {
      outputs++;
      assert.ok(
        typeof o.description === 'string' && o.description.length > 10,
        `${rel(file)}: output ${name}`,
      );
      assert.equal(path.basename(file), 'outputs.tf', `${rel(file)}: output ${name} belongs in outputs.tf`);
    }
  }
  assert.ok(variables > 50 && outputs > 20, `${variables} variables, ${outputs} outputs`);
});

/** A container (default the gateway's) of the planned task definition. */
function gatewayContainer(of: Plan = plan, name = 'gateway'): Values {
  const td = of.ofType('aws_ecs_task_definition');
  assert.equal(td.length, 1);
  const defs = JSON.parse(String(td[0]!.after.container_definitions)) as Values[];
  const gw = defs.find((c) => c.name === name);
  assert.ok(gw, defs.map((c) => c.name).join(', '));
  return gw;
}

const envOf = (container: Values): Values =>
  Object.fromEntries((container.environment as Values[]).map((e) => [e.name, e.value]));

test('gateway_processes = 2: FLEETGATE_PROCESSES, the task limit and vCPUs shared, a control port and a scrape each, per-process targets', () => {
  assert.equal(envOf(gatewayContainer()).FLEETGATE_PROCESSES, '1', 'one process by default');
  const sizing = twoProcesses.output('sizing') as Values;
  const env = envOf(gatewayContainer(twoProcesses));
  assert.equal(env.FLEETGATE_PROCESSES, '2');
  // FLEETGATE_MAX_CONNECTIONS is per process: the task's limit (the sizing's) split in two.
  assert.equal(env.FLEETGATE_MAX_CONNECTIONS, String(Math.ceil(sizing.gateway_max_connections / 2)));
  // 2 vCPUs: each process's main thread on its own; no core left for a worker.
  assert.equal(env.FLEETGATE_WORKERS, '0');
  assert.equal(sizing.gateway_workers, 0);
  // The manager reaches each process's control API (6752 + i).
  const control = twoProcesses
    .ofType('aws_vpc_security_group_ingress_rule')
    .filter((r) => r.address.includes('tasks_control'));
  assert.ok(control.length > 0);
  for (const r of control) assert.deepEqual([r.after.from_port, r.after.to_port], [6752, 6753]);
  // The sidecar scrapes both; the metrics then hold a datapoint per process.
  const prometheus = envOf(gatewayContainer(twoProcesses, 'metrics')).PROMETHEUS_CONFIG_CONTENT ?? '';
  assert.match(prometheus, /localhost:6752[\s\S]*localhost:6753/);
  const target = (p: Plan) =>
    p.at('module.gateways.aws_appautoscaling_policy.connections[0]').after
      .target_tracking_scaling_policy_configuration[0].target_value;
  assert.equal(target(twoProcesses), Math.ceil(sizing.planned_agents_per_gateway / 2));
  assert.equal(target(plan), (plan.output('sizing') as Values).planned_agents_per_gateway);
  const low = twoProcesses.at('module.observability.aws_cloudwatch_metric_alarm.connections_low[0]').after;
  assert.match(
    (low.metric_query as Values[]).find((q) => q.id === 'connected')!.expression,
    /perGateway \* 2 \* gateways/,
  );
});

test("the gateway task's environment is docs/environment.md's; its ports, limit, secrets and Kafka TLS are planned", () => {
  const gw = gatewayContainer();
  const env = envOf(gw);
  const known = new Set(ENV_DOC.map(([name]) => name));
  for (const name of Object.keys(env).filter((n) => n.startsWith('FLEETGATE_')))
    assert.ok(known.has(name), `${name} is a documented variable (platform/config/env.ts ENV_DOC)`);
  for (const required of [
    'FLEETGATE_MAX_CONNECTIONS',
    'FLEETGATE_PKI_DIR',
    'FLEETGATE_KAFKA_BROKERS',
    'FLEETGATE_SD_ADDRS',
  ])
    assert.ok(required in env, `the gateway task sets ${required}`);
  // The connection limit is the sizing's (the capacity model), never the memory-based default.
  const sizing = plan.output('sizing') as Values;
  assert.equal(env.FLEETGATE_MAX_CONNECTIONS, String(sizing.gateway_max_connections));
  // Kafka: TLS to the brokers' TLS listener, which is all MSK accepts by default.
  const msk = plan.ofType('aws_msk_cluster')[0]!.after;
  assert.equal(msk.encryption_info[0].encryption_in_transit[0].client_broker, 'TLS');
  assert.equal(env.FLEETGATE_KAFKA_TLS, '1');
  assert.match(env.FLEETGATE_KAFKA_BROKERS, /^([\w.-]+:9094,?)+$/);
  // Registers with discovery's HTTPS API (both modes; tests/options.tftest.hcl plans the other).
  assert.equal(env.FLEETGATE_SD_ADDRS, 'https://abcdef1234.execute-api.eu-west-1.amazonaws.com');
  // The AK/SK pair from Secrets Manager through ECS, never a value.
  assert.equal(env.FLEETGATE_AKSK, undefined);
  const secrets = Object.fromEntries((gw.secrets as Values[]).map((s) => [s.name, s.valueFrom]));
  assert.equal(
    secrets.FLEETGATE_AKSK,
    plan.at('module.secrets.aws_secretsmanager_secret.this["aksk"]').after.arn,
  );
  // No secret value is created by Terraform at all.
  for (const type of ['aws_secretsmanager_secret_version', 'random_password', 'tls_private_key'])
    assert.deepEqual(plan.ofType(type), [], type);
  // Secrets Manager is reached through an interface endpoint in the VPC.
  assert.ok(
    plan
      .ofType('aws_vpc_endpoint')
      .some((e) => e.after.service_name === 'com.amazonaws.eu-west-1.secretsmanager'),
  );
  // Ports: mTLS gRPC passed through the NLB as TCP to 6751; the control/health port 6752.
  assert.deepEqual((gw.portMappings as Values[]).map((p) => p.containerPort).sort(), [6751, 6752]);
  const tg = plan.at('module.gateways.aws_lb_target_group.agents[0]').after;
  assert.deepEqual([tg.protocol, tg.port, tg.health_check[0].path], ['TCP', 6751, '/readyz']);
  assert.equal(plan.at('module.gateways.aws_lb_listener.agents[0]').after.protocol, 'TCP');
  // SIGTERM to SIGKILL covers the 20 s drain grace plus the sink flush.
  assert.ok(gw.stopTimeout >= 40, `stopTimeout ${gw.stopTimeout}`);
});

test('stock agents: an internal ALB listens for plain HTTP on 8088 and forwards only their paths to discovery', () => {
  const listener = plan.at('module.discovery.module.balancer.aws_lb_listener.this[0]').after;
  assert.deepEqual([listener.port, listener.protocol], [8088, 'HTTP']);
  assert.equal(listener.default_action[0].type, 'fixed-response', 'anything else: the balancer answers 404');
  assert.equal(listener.default_action[0].fixed_response[0].status_code, '404');
  const rule = plan.at('module.discovery.module.balancer.aws_lb_listener_rule.this[0]').after;
  const conditions = rule.condition as Values[];
  assert.deepEqual(
    conditions.flatMap((c) => c.http_request_method.flatMap((m: Values) => m.values)),
    ['GET'],
  );
  assert.deepEqual(conditions.flatMap((c) => c.path_pattern.flatMap((p: Values) => p.values)).sort(), [
    '/ping',
    '/registry/detail',
  ]);
  assert.equal(rule.action[0].type, 'forward');
  const tg = plan.at('module.discovery.module.balancer.aws_lb_target_group.this[0]').after;
  assert.deepEqual([tg.target_type, tg.health_check[0].path], ['lambda', '/ping']);
  const lb = plan.at('module.discovery.module.balancer.aws_lb.this[0]').after;
  assert.deepEqual([lb.load_balancer_type, lb.internal], ['application', true]);
  const perm = plan.at('module.discovery.module.balancer.aws_lambda_permission.this[0]').after;
  assert.deepEqual(
    [perm.principal, perm.function_name],
    ['elasticloadbalancing.amazonaws.com', 'fleetgate-discovery'],
  );
});

test('the dispatcher runs every minute with reserved concurrency and room beyond its reserve; its failures are alarmed on', async () => {
  const rule = plan.at('module.manager.aws_cloudwatch_event_rule.dispatcher[0]').after;
  assert.equal(rule.schedule_expression, 'rate(1 minute)');
  assert.equal(
    plan.at('module.manager.aws_lambda_permission.schedule[0]').after.principal,
    'events.amazonaws.com',
  );
  const fn = plan.at('module.manager.module.dispatcher.aws_lambda_function.this[0]').after;
  assert.ok(fn.reserved_concurrent_executions >= 1);
  // A run starts no tick in its last DEFAULT_RESERVE_MS: the timeout leaves 30 s of ticks beyond it.
  assert.ok(fn.timeout * 1000 - DEFAULT_RESERVE_MS >= 30_000, `timeout ${fn.timeout} s`);
  // The manager API is behind its own balancer (internal by default), not a public HTTP API.
  assert.equal(plan.at('module.manager.module.balancer.aws_lb.this[0]').after.internal, true);
  const apis = plan.ofType('aws_apigatewayv2_api').map((a) => a.address);
  assert.deepEqual(
    apis,
    ['module.discovery.module.function.aws_apigatewayv2_api.this[0]'],
    'only discovery has an HTTP API',
  );
  // The alarm's metric filter counts the line the dispatcher logs when a command batch fails.
  const filter = plan.at('module.observability.aws_cloudwatch_log_metric_filter.dispatch_failures[0]').after;
  assert.equal(filter.log_group_name, `/aws/lambda/${fn.function_name}`);
  const { failure, routine } = await dispatcherFailureLog();
  assert.ok(
    failure.some((line) => matchesJsonFilter(filter.pattern, line)),
    `the filter counts a failed command batch: ${JSON.stringify(failure)}`,
  );
  assert.ok(routine.length > 0);
  for (const line of routine)
    assert.ok(!matchesJsonFilter(filter.pattern, line), `not ${JSON.stringify(line)}`);
});
