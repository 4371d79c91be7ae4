/**
 * docs/openapi.yaml is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator), it
 * documents exactly the routes the manager serves, and every documented operation, sent with its
 * documented example to a running manager, answers with its first documented 2xx status.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';
import { parse } from 'yaml';
import { createHeartbeatWriter } from '../../manager/agent-status-writer.js';
import { silentLogger } from '../../platform/obs/logger.js';
import { FakeRegistry, FakeSession, startTestManager } from '../helpers/manager-harness.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '../..');
const text = readFileSync(path.join(root, 'docs/openapi.yaml'), 'utf8');
// biome-ignore lint/suspicious/noExplicitAny: walking a parsed YAML document
type Any = any;
const doc = parse(text) as Any;
const METHODS = ['get', 'put', 'post', 'delete'] as const;
const HEALTH = new Set(['/ping', '/healthz', '/readyz', '/metrics']);

function resolve(node: Any): Any {
  if (node && typeof node.$ref === 'string') {
    const parts = node.$ref.replace(/^#\//, '').split('/');
    let v: Any = doc;
    for (const p of parts) v = v[p];
    return resolve(v);
  }
  return node;
}

function operations(): Array<{ method: string; path: string; op: Any; params: Any[] }> {
  const out = [];
  for (const [p, item] of Object.entries(doc.paths as Record<string, Any>)) {
    for (const m of METHODS) {
      if (!item[m]) continue;
      const params = [...(item.parameters ?? []), ...(item[m].parameters ?? [])].map(resolve);
      out.push({ method: m.toUpperCase(), path: p, op: item[m], params });
    }
  }
  return out;
}

test('docs/openapi.yaml is valid OpenAPI 3.1', async () => {
  const result = await new Validator().validate(doc);
  assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
  assert.equal(doc.openapi, '3.1.0');
});

test('every documented operation exists and answers its documented status; every route is documented', async (t) => {
  const m = await startTestManager(t, { api: { rateLimit: { ratePerSecond: 1000, burst: 1000 } } });
  const served = new Set(m.role.api.routes.map((r) => `${r.method} ${r.path}`));
  const documented = new Set(
    operations()
      .filter((o) => !HEALTH.has(o.path))
      .map((o) => `${o.method} ${o.path.replace(/\{(\w+)\}/g, ':$1')}`),
  );
  assert.deepEqual(
    [...served].filter((r) => !documented.has(r)),
    [],
    'served but not documented',
  );
  assert.deepEqual(
    [...documented].filter((r) => !served.has(r)),
    [],
    'documented but not served',
  );

  // The world the examples talk about: agent doc-agent-1 connected to a gateway, an API key.
  const reg = new FakeRegistry();
  const writer = createHeartbeatWriter({
    client: m.db.client,
    tablePrefix: m.db.prefix,
    gatewayId: '10.0.0.5:6751',
    sessions: reg,
    logger: silentLogger(),
  });
  reg.add(new FakeSession('doc-agent-1')).heartbeat();
  writer.sweep();
  await writer.settle();
  await writer.publishAggregate();
  m.defer(() => writer.close());
  const key = await m.role.api.apiKeys.create({
    name: 'docs',
    owner: 'root',
    ownerAccount: (await m.role.api.users.get('root'))?.accountId,
    role: 'viewer',
  });

  const results: string[] = [];
  // Ids the examples refer to, from the answers of the operations before them (document order).
  const ids: Record<string, string> = {};
  const fill = (v: string) => v.replace(/\{\{(task_id|job_id)\}\}/g, (all, k: string) => ids[k] ?? all);
  for (const o of operations()) {
    let p = o.path;
    const query = new URLSearchParams();
    for (const param of o.params) {
      if (param.example === undefined) continue;
      const value = fill(String(param.example).replace('{{apikey}}', key.record.keyId));
      if (param.in === 'path') p = p.replace(`{${param.name}}`, encodeURIComponent(value));
      if (param.in === 'query') query.set(param.name, value);
    }
    assert.doesNotMatch(p, /\{/, `${o.method} ${o.path}: a path parameter has no example`);
    const example = o.op.requestBody
      ? resolve(o.op.requestBody).content['application/json'].example
      : undefined;
    const body = example === undefined ? undefined : JSON.parse(fill(JSON.stringify(example)));
    assert.ok(
      !o.op.requestBody || body !== undefined,
      `${o.method} ${o.path}: the request body has no example`,
    );
    const security: Any[] = o.op.security ?? doc.security;
    const opts: Parameters<typeof m.call>[2] = body === undefined ? {} : { body };
    if (security.length > 0) {
      if ('aksk' in security[0]) opts.sign = true;
      else opts.token = m.token('root');
    }
    const qs = query.toString();
    const r = await m.call(o.method, qs ? `${p}?${qs}` : p, opts);
    const taskId = r.json?.data?.task_id ?? r.json?.task_id;
    if (typeof taskId === 'string') ids.task_id = taskId;
    if (typeof r.json?.data?.jobID === 'string') ids.job_id = r.json.data.jobID;
    const want = Number(Object.keys(o.op.responses).find((c) => /^2\d\d$/.test(c)));
    if (r.status !== want)
      results.push(`${o.method} ${o.path}: HTTP ${r.status}, documented ${want}: ${r.text.slice(0, 200)}`);
    if (o.path.startsWith('/api/v1') && r.status === 200) {
      const code = r.json?.code;
      // No gateway serves doc-agent-1 in this world: a quick task answers "agentID not found".
      const notFoundOk =
        o.path === '/api/v1/agent/getStatus/{id}' || o.path === '/api/v1/agent/quickTask/task';
      if (code !== 0 && !(notFoundOk && code === 6)) {
        results.push(`${o.method} ${o.path}: envelope code ${code}: ${r.text.slice(0, 200)}`);
      }
    }
  }
  assert.deepEqual(results, []);
});
