/**
 * The alarm on a failing spool disk watches a metric the gateway really exports, and
 * the CloudWatch agent sidecar publishes that metric (over HCL parsed with @cdktf/hcl2json).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { createMetrics } from '../../platform/obs/metrics.js';
import { ROOT } from '../helpers/gateway.js';

// biome-ignore lint/suspicious/noExplicitAny: parsed HCL is untyped JSON
type Hcl = Record<string, any>;
const { parse } = createRequire(import.meta.url)('@cdktf/hcl2json') as {
  parse(filename: string, contents: string): Promise<Hcl>;
};
const modules = path.join(ROOT, 'infra', 'terraform', 'modules');
const hcl = (file: string) => parse(file, readFileSync(file, 'utf8'));

test('a spool that cannot write is alarmed on, from a metric the gateway exports and the sidecar publishes', async () => {
  const obs = await hcl(path.join(modules, 'observability', 'main.tf'));
  const alarms = obs.locals.find((l: Hcl) => l.metric_alarms)?.metric_alarms as string;
  assert.match(alarms, /"spool-disk-failing"/, 'the alarm exists');
  const metric = /"spool-disk-failing"\s*=\s*\{[^}]*metric\s*=\s*"([^"]+)"/.exec(alarms)?.[1];
  assert.equal(metric, 'fleetgate_spool_blocked');
  const exported = (await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name);
  assert.ok(exported.includes(metric), `${metric} is a gateway metric`);
  const gateways = readFileSync(path.join(modules, 'gateways', 'main.tf'), 'utf8');
  assert.ok(gateways.includes(`"^${metric}$"`), `${metric} is in the sidecar's metric_selectors`);
});
